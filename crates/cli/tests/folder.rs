//! A folder of the user's own images end to end on the CPU, made from the mini archive's real
//! images: `root/{train,val,test}/<class>/` with PNG and JPEG files of two sizes and one file
//! that is not an image. Training refuses the bad file by name, then with `skip_bad_images`
//! trains from the cache the refused run built (no second decode), learns above chance, and
//! records the classes; `eval` and `predict` read the checkpoint back and print class names, and
//! a folder of other classes is refused with the difference.
mod common;

use std::path::Path;

use cnnzoo_cifar::{CifarKind, CifarSet, FetchOptions, IMAGE_SIDE};
use common::{assert_clean_failure, cnnzoo_line, mini_data, small_resnet_config, text};
use zune_core::bit_depth::BitDepth;
use zune_core::colorspace::ColorSpace;
use zune_core::options::EncoderOptions;

/// The classes of the test folder: their CIFAR-10 labels and folder names.
const CLASSES: [(u8, &str); 3] = [(0, "airplane"), (6, "frog"), (9, "truck")];
const TRAIN_PER_CLASS: usize = 300;
const EVAL_PER_CLASS: usize = 45;

/// Image `index` of `set` as interleaved RGB rows, each pixel repeated `scale` times across
/// and down.
fn rgb(set: &CifarSet, index: usize, scale: usize) -> Vec<u8> {
    let image = set.image(index).unwrap();
    let side = IMAGE_SIDE * scale;
    let plane = IMAGE_SIDE * IMAGE_SIDE;
    let mut out = Vec::with_capacity(side * side * 3);
    for y in 0..side {
        for x in 0..side {
            let source = (y / scale) * IMAGE_SIDE + x / scale;
            out.extend((0..3).map(|c| image[c * plane + source]));
        }
    }
    out
}

/// Writes image `index` of `set` to `path` as a PNG or (quality 95) JPEG by the extension.
fn write_image(set: &CifarSet, index: usize, scale: usize, path: &Path) {
    let side = IMAGE_SIDE * scale;
    let pixels = rgb(set, index, scale);
    let mut bytes = Vec::new();
    if path.extension().unwrap() == "png" {
        let options = EncoderOptions::new(side, side, ColorSpace::RGB, BitDepth::Eight);
        zune_png::PngEncoder::new(&pixels, options)
            .encode(&mut bytes)
            .unwrap();
    } else {
        let encoder = jpeg_encoder::Encoder::new(&mut bytes, 95);
        let side = side as u16;
        encoder
            .encode(&pixels, side, side, jpeg_encoder::ColorType::Rgb)
            .unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// `count` images of each class of `classes` from `set` (from its `skip`-th of the class on)
/// into `dir/<class>/`: every other one a JPEG, every third twice the size.
fn write_split(dir: &Path, set: &CifarSet, classes: &[(u8, &str)], skip: usize, count: usize) {
    for &(label, name) in classes {
        let class_dir = dir.join(name);
        std::fs::create_dir_all(&class_dir).unwrap();
        let indices = (0..set.len()).filter(|&i| set.labels[i] == label);
        for (n, index) in indices.skip(skip).take(count).enumerate() {
            let extension = if n % 2 == 0 { "png" } else { "jpg" };
            let scale = if n % 3 == 0 { 2 } else { 1 };
            let path = class_dir.join(format!("{n:04}.{extension}"));
            write_image(set, index, scale, &path);
        }
    }
}

fn mini() -> cnnzoo_cifar::CifarData {
    let quiet = FetchOptions {
        url: None,
        verbose: false,
    };
    cnnzoo_cifar::load(CifarKind::Cifar10, &mini_data(), &quiet).unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Trains the small ResNet for `epochs` on the folder `photos` with `extra` config lines.
fn train(dir: &Path, epochs: usize, extra: &str) -> std::process::Output {
    let config = small_resnet_config(
        epochs,
        3,
        &format!("data.dataset = \"folder\"\ndata.root = \"photos\"\n{extra}"),
    );
    std::fs::write(dir.join("folder.toml"), config).unwrap();
    cnnzoo_line("train --config folder.toml --output run", dir)
}

#[test]
fn a_folder_of_images_trains_evaluates_and_predicts_by_class_name() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let data = mini();
    write_split(
        &photos.join("train"),
        &data.train,
        &CLASSES,
        0,
        TRAIN_PER_CLASS,
    );
    write_split(&photos.join("val"), &data.test, &CLASSES, 0, EVAL_PER_CLASS);
    write_split(
        &photos.join("test"),
        &data.test,
        &CLASSES,
        EVAL_PER_CLASS,
        EVAL_PER_CLASS,
    );
    let broken = photos.join("train/frog/broken.jpg");
    std::fs::write(&broken, b"\xFF\xD8\xFF this is not a JPEG").unwrap();
    std::fs::write(photos.join("train/frog/notes.txt"), "ignored: not an image").unwrap();

    // The bad file is refused by name, after every image was decoded once into the cache.
    let refused = train(dir.path(), 2, "data.image_size = 32");
    assert_clean_failure(&refused, &["broken.jpg", "skip_bad_images = true"]);
    let log = text(&refused);
    for decoded in [
        format!("decoded {} train images", 3 * TRAIN_PER_CLASS + 1),
        format!("decoded {} val images", 3 * EVAL_PER_CLASS),
        format!("decoded {} test images", 3 * EVAL_PER_CLASS),
    ] {
        assert!(log.contains(&decoded), "{log}");
    }
    assert!(!dir.path().join("run/best.bpk").exists());

    // Skipping it: the images come from the cache, and nothing is decoded again.
    let out = train(
        dir.path(),
        2,
        "data.image_size = 32\ndata.skip_bad_images = true",
    );
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(!log.contains("decoding"), "{log}");
    assert!(!log.contains("images into the cache"), "{log}");
    assert!(
        log.contains(&format!(
            "read {} train images from the cache",
            3 * TRAIN_PER_CLASS
        )),
        "{log}"
    );
    assert!(log.contains("skipped 1 image file(s)"), "{log}");
    assert!(log.contains("broken.jpg"), "{log}");

    let run = dir.path().join("run");
    let results = json(&run.join("results.json"));
    let names: Vec<&str> = CLASSES.iter().map(|(_, name)| *name).collect();
    assert_eq!(results["classes"], serde_json::json!(names));
    assert_eq!(results["test_images"], 3 * EVAL_PER_CLASS);
    // Chance is 33.3%; 135 validation images put a model that learned nothing below 42% in
    // all but about one run in a hundred.
    let val_top1 = results["val_top1"].as_f64().unwrap();
    assert!(val_top1 > 42.0, "{results}");

    let meta = json(&run.join("best.bpk.json"));
    let dataset = &meta["dataset"];
    assert_eq!(dataset["name"], "folder");
    assert_eq!(dataset["input_size"], 32);
    assert_eq!(dataset["crop_pct"], 0.875);
    assert_eq!(dataset["skip_bad_images"], true);
    assert_eq!(
        dataset["root"].as_str().unwrap(),
        photos.canonicalize().unwrap().to_str().unwrap()
    );
    // The statistics are the folder's own, not CIFAR-10's.
    let mean: Vec<f64> = serde_json::from_value(dataset["mean"].clone()).unwrap();
    assert!((mean[0] - 0.4914).abs() > 1e-3, "{dataset}");
    assert!(mean.iter().all(|m| (0.2..0.8).contains(m)), "{dataset}");

    // eval finds the folder from the checkpoint, and gives back the run's test accuracy.
    let out = cnnzoo_line("eval --checkpoint run --device cpu --json", dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["n"], 3 * EVAL_PER_CLASS);
    assert_eq!(report["top1"], results["test_top1"]);
    let eval_val = "eval --checkpoint run --device cpu --split val";
    let out = cnnzoo_line(eval_val, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for name in &names {
        assert!(table.contains(name), "{table}");
    }

    // predict names the class of an image.
    let image = photos.join("test/frog/0001.jpg");
    let line = format!(
        "predict --checkpoint run --device cpu --json {}",
        image.display()
    );
    let out = cnnzoo_line(&line, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let predicted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = &predicted["predictions"][0]["top"];
    let class = top[0]["class"].as_str().unwrap();
    assert!(names.contains(&class), "{predicted}");
    assert_eq!(
        top[0]["index"],
        names.iter().position(|n| *n == class).unwrap()
    );

    // A folder of other classes is refused with the difference.
    let other = dir.path().join("other");
    write_split(
        &other.join("train"),
        &data.train,
        &[(0, "airplane"), (3, "cat"), (6, "frog")],
        0,
        4,
    );
    let out = cnnzoo_line(
        &format!("{eval_val} --data-dir {}", other.display()),
        dir.path(),
    );
    assert_clean_failure(
        &out,
        &[
            "the checkpoint was trained on 3 classes",
            "missing from the data: truck",
            "not in the checkpoint: cat",
        ],
    );
}

#[test]
fn one_folder_without_test_images_is_split_and_trains_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    write_split(&photos, &mini().train, &CLASSES[..2], 0, 100);
    let out = train(dir.path(), 1, "");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no test images"), "{stdout}");
    let results = json(&dir.path().join("run/results.json"));
    assert!(results["test_top1"].is_null(), "{results}");
    assert!(results["val_top1"].is_number(), "{results}");
    // The model's own input size (32 for the CIFAR ResNet) when the config gives none.
    let meta = json(&dir.path().join("run/best.bpk.json"));
    assert_eq!(meta["dataset"]["input_size"], 32);
    // Half of the 200 images, as small_resnet_config's val_fraction 0.5 says.
    assert!(stdout.contains("valid    100/100"), "{stdout}");
}
