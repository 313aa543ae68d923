//! The pictures of a run, for people rather than programs: `curves.png` in every run folder,
//! redrawn after each epoch ([`curves`]), and the confusion heat map of `cnnzoo eval --confusion`
//! ([`confusion`]), drawn on a `canvas`, and the image grid of `cnnzoo augment` ([`grid`]). Not plotters: it turns on num-traits' default
//! features, which burn also uses, and that would rebuild the whole burn stack.
pub(crate) mod canvas;
pub mod confusion;
pub mod curves;
pub mod grid;
mod png;

use cnnzoo_models::ReferenceTop1;

/// The reference's validation and test top-1 for `model`, from its zoo entry.
pub fn reference_top1(model: &str) -> Option<ReferenceTop1> {
    cnnzoo_models::lookup(model).ok()?.reference
}

/// The reference's test top-1, for a model trained on CIFAR-10's ten classes.
pub fn reference_test_top1(model: &str, classes: usize) -> Option<f64> {
    reference_top1(model)
        .filter(|_| classes == 10)
        .map(|reference| reference.test)
}

/// `272,378`: a count as a person reads it.
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    /// Width, height and RGB pixels of a PNG, which must decode.
    pub(crate) fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
        let image = cnnzoo_cifar::decode_image(png).expect("a valid PNG");
        (image.width, image.height, image.pixels)
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::group_thousands(272_378), "272,378");
        assert_eq!(super::group_thousands(61_100_840), "61,100,840");
        assert_eq!(super::group_thousands(999), "999");
    }
}
