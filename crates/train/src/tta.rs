//! Test-time augmentation for `cnnzoo eval --tta`: the logits of each image averaged with
//! those of its variants. CIFAR networks train on random left-right mirrors, so the mirror of a
//! test image is as much the image as the image itself; averaging the logits (not the
//! probabilities, as torchvision's and timm's references do) usually gains a few tenths of a
//! point of top-1.
use burn::tensor::Tensor;
use cnnzoo_models::Model;
use serde::Serialize;

/// What `--tta` names. The variants have no doc comments: clap would show them as a list and
/// turn the whole `eval --help` page into its long layout.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tta {
    // Each image as it is.
    #[default]
    None,
    // The mean of the logits of each image and of its left-right mirror.
    Flip,
}

impl Tta {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Flip => "flip",
        }
    }

    /// The logits of a batch of normalised images (`[batch, channels, height, width]`).
    pub fn logits(self, model: &Model, images: Tensor<4>) -> Tensor<2> {
        match self {
            Self::None => model.forward(images),
            Self::Flip => {
                // Axis 3 is the width: the mirror swaps left and right.
                let mirrored = images.clone().flip([3]);
                (model.forward(images) + model.forward(mirrored)).div_scalar(2.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, TensorData};
    use cnnzoo_models::lookup;
    use serde_json::json;

    use super::*;

    /// `images` with each row of pixels reversed, by index: the mirror, worked out without
    /// the `flip` it checks.
    fn mirrored_by_hand(images: &Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = images.dims();
        let values = images.clone().into_data().try_to_vec::<f32>().unwrap();
        let mirrored: Vec<f32> = values
            .chunks(w)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        Tensor::from_data(TensorData::new(mirrored, [n, c, h, w]), &images.device())
    }

    fn values(tensor: Tensor<2>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn flip_averages_the_logits_of_the_image_and_its_mirror() {
        let device = Device::flex();
        device.seed(3);
        let overrides = json!({"num_blocks": [1, 1, 1], "channels": [8, 16, 32]});
        let model = lookup("resnet")
            .unwrap()
            .config_with(10, overrides.as_object().unwrap())
            .unwrap()
            .init(&device);
        let images = Tensor::<4>::random([3, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);

        let plain = values(Tta::None.logits(&model, images.clone()));
        let mirror = values(model.forward(mirrored_by_hand(&images)));
        let flip = values(Tta::Flip.logits(&model, images));
        let largest_change = plain
            .iter()
            .zip(&mirror)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            largest_change > 1e-3,
            "the mirror must change the logits for the test to mean anything ({largest_change})"
        );
        for ((a, b), f) in plain.iter().zip(&mirror).zip(&flip) {
            assert!(
                (f - (a + b) / 2.0).abs() < 1e-5,
                "{f} is not the mean of {a} and {b}"
            );
        }
    }
}
