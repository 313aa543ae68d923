//! Integration tests of the cifar crate, in one binary so that burn is linked once.

mod augment;
mod augment_ops;
mod bmp;
mod cifar100;
mod common;
mod crop;
mod data;
mod download;
mod erasing;
mod folder;
mod loader;
mod mixing;
mod records;
mod synthetic;
