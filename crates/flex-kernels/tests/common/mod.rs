//! What the kernel tests share: seeded devices and random inputs.
// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]
use std::sync::Mutex;

use burn::prelude::*;
use burn::tensor::Distribution;
use cnnzoo_flex_kernels::isa::{self, Isa};

/// The flex device (under autodiff when `autodiff`), seeded so that every run draws the same
/// tensors.
pub fn seeded_flex(seed: u64, autodiff: bool) -> Device {
    let device = if autodiff {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    device.seed(seed);
    device
}

/// A tensor of standard normal values.
pub fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Runs `test` at every instruction-set level this processor has, forcing each in turn (one
/// test at a time, since the level is the process's), and names each level it lacks as skipped
/// on stderr (`cargo test -- --nocapture` shows it). The level runs are announced on stderr
/// too, so a failure's captured output says which level failed.
pub fn at_every_isa(mut test: impl FnMut()) {
    static FORCING: Mutex<()> = Mutex::new(());
    /// Gives the level back to the process's choice, even when `test` panics.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            isa::force(None).expect("the chosen level is always available");
        }
    }
    let _one_at_a_time = FORCING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _restore = Restore;
    for level in Isa::ALL {
        if level > Isa::detected() {
            eprintln!(
                "skipped: {level} (this processor has {} at most)",
                Isa::detected()
            );
            continue;
        }
        isa::force(Some(level)).expect("a level the processor has");
        eprintln!("at {level}");
        test();
    }
}
