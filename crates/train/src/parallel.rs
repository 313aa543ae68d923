//! Training on several devices at once, through burn-train's execution strategies (no all-reduce
//! of cnnzoo's own).
//!
//! What a user can rely on:
//! - `batch_size` is the global batch: each of N devices takes `batch_size / N` images a step
//!   (an error when N does not divide it), so the learning rate means what it means on one device.
//! - Each device works through its own share of the training set, reshuffled within that share
//!   every epoch; every share has the same number of batches.
//! - On CUDA with NCCL, distributed data parallel (`ddp`): burn all-reduces the gradients as their
//!   mean. Elsewhere burn's multi-device strategy (`multi`): the gradients of the devices are sent to
//!   the first device and summed, so cnnzoo scales each device's loss by 1/N, which makes the
//!   sum the gradient of the mean loss over the global batch: one device's update on that batch.
//! - Batch-norm statistics are computed per device, on `batch_size / N` images, as in PyTorch DDP
//!   without SyncBatchNorm.
//! - Validation, checkpoints and reports are those of a one-device run, on the first device.
use anyhow::{Result, bail};
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::{ExecutionStrategy, MultiDeviceOptim};
use serde::{Deserialize, Serialize};

use crate::cuda;
use crate::device::{self, SelectedDevice};

/// `parallel`: how several devices share a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Parallel {
    /// `ddp` on CUDA devices where NCCL loads, else `multi`.
    #[default]
    Auto,
    /// Distributed data parallel: an NCCL all-reduce of the gradients (CUDA only).
    Ddp,
    /// burn's multi-device strategy: gradients summed on the first device (every backend).
    Multi,
}

impl Parallel {
    pub fn is_auto(&self) -> bool {
        *self == Self::Auto
    }
}

/// The devices a run trains on, and how they share each step.
pub struct Placement {
    pub devices: Vec<SelectedDevice>,
    /// `None` on one device.
    pub parallel: Option<Parallel>,
}

impl Placement {
    /// One device: what `device` names.
    pub fn single(selected: SelectedDevice) -> Self {
        Self {
            devices: vec![selected],
            parallel: None,
        }
    }

    /// The device that validates, evaluates and holds the weights between steps.
    pub fn main(&self) -> &SelectedDevice {
        &self.devices[0]
    }

    pub fn count(&self) -> usize {
        self.devices.len()
    }

    /// Images each device takes per step; an error when the devices do not divide the batch.
    pub fn per_device_batch(&self, batch_size: usize) -> Result<usize> {
        let n = self.count();
        if !batch_size.is_multiple_of(n) {
            bail!(
                "batch_size {batch_size} does not divide evenly across {n} devices: batch_size is the global batch, split across the devices; choose a multiple of {n} (e.g. {})",
                (batch_size / n).max(1) * n
            );
        }
        Ok(batch_size / n)
    }

    /// The factor each device's loss is multiplied by before its backward pass: burn's multi
    /// strategy sums the devices' gradients, DDP averages them.
    pub fn loss_scale(&self) -> f32 {
        match self.parallel {
            Some(Parallel::Multi) => 1.0 / self.count() as f32,
            _ => 1.0,
        }
    }

    /// burn-train's execution strategy for these devices.
    pub fn execution_strategy(&self) -> ExecutionStrategy {
        let devices: Vec<Device> = self.devices.iter().map(|d| d.device.clone()).collect();
        match self.parallel {
            None => ExecutionStrategy::single(devices[0].clone()),
            Some(Parallel::Ddp) => ExecutionStrategy::ddp(
                devices,
                DistributedConfig {
                    all_reduce_op: ReduceOperation::Mean,
                },
            ),
            Some(_) => ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice),
        }
    }

    /// The line `train` prints and `results.json` keeps.
    pub fn description(&self) -> String {
        match self.parallel {
            None => self.main().description.clone(),
            Some(parallel) => {
                let how = match parallel {
                    Parallel::Ddp => "distributed data parallel, NCCL all-reduce",
                    _ => "data parallel, burn multi-device, gradients summed on the first",
                };
                let names: Vec<&str> = self
                    .devices
                    .iter()
                    .map(|d| d.description.as_str())
                    .collect();
                format!("{} devices ({how}): {}", self.count(), names.join("; "))
            }
        }
    }
}

/// The devices `devices` names (`cpu,cpu`, `cuda:0,cuda:1`, or a count `N`: the first N of
/// the kind `device` names), or `device` alone when `devices` is unset.
pub fn place(device: &str, devices: Option<&str>, parallel: Parallel) -> Result<Placement> {
    let names = match devices {
        None => return Ok(Placement::single(device::select(device)?)),
        Some(spec) => device_names(device, spec)?,
    };
    if names.len() == 1 {
        return Ok(Placement::single(device::select(&names[0])?));
    }
    if names.iter().any(|name| wgpu_kind(name)) {
        bail!(
            "several wgpu devices ({}) are not supported: cnnzoo drives one wgpu adapter; several GPUs train on CUDA (--features cuda, --devices cuda:0,cuda:1), and --devices cpu,cpu checks the multi-device path on the CPU",
            names.join(",")
        );
    }
    let devices = names
        .iter()
        .map(|name| device::select(name))
        .collect::<Result<Vec<_>>>()?;
    let cuda = names
        .iter()
        .map(|name| device::cuda_index(name))
        .collect::<Result<Vec<_>>>()?;
    let all_cuda = cuda.iter().all(Option::is_some);
    let parallel = match parallel {
        Parallel::Ddp if !all_cuda => bail!(
            "parallel = \"ddp\" needs CUDA devices (it all-reduces through NCCL), but the devices are {}; use parallel = \"multi\" (or leave it at \"auto\"), which works on every device",
            names.join(",")
        ),
        Parallel::Ddp => {
            if let Err(looked) = cuda::nccl_available() {
                bail!(
                    "parallel = \"ddp\" needs NCCL, but none of {looked} could be loaded (searched LD_LIBRARY_PATH and the system's library cache); install NCCL (libnccl2) or use parallel = \"multi\""
                );
            }
            Parallel::Ddp
        }
        Parallel::Auto if all_cuda && cuda::nccl_available().is_ok() => Parallel::Ddp,
        Parallel::Auto if all_cuda => {
            eprintln!(
                "note: NCCL (libnccl.so.2) not found: the GPUs train with burn's multi-device strategy instead of DDP"
            );
            Parallel::Multi
        }
        Parallel::Auto | Parallel::Multi => Parallel::Multi,
    };
    Ok(Placement {
        devices,
        parallel: Some(parallel),
    })
}

/// The names in a `devices` value: a comma-separated list, or a count of `device`'s kind.
fn device_names(device: &str, spec: &str) -> Result<Vec<String>> {
    let spec = spec.trim();
    let Ok(count) = spec.parse::<usize>() else {
        let names: Vec<String> = spec.split(',').map(|s| s.trim().to_string()).collect();
        if names.iter().any(String::is_empty) {
            bail!(
                "devices = \"{spec}\": an empty name in the list; write e.g. cpu,cpu or cuda:0,cuda:1"
            );
        }
        if names.iter().any(|name| name == "auto") {
            bail!(
                "devices = \"{spec}\": 'auto' picks one device; name the devices (cpu,cpu or cuda:0,cuda:1)"
            );
        }
        return Ok(names);
    };
    if count == 0 {
        bail!("devices = 0: train on at least one device");
    }
    if device::cuda_index(device)?.is_some() {
        return Ok((0..count).map(|i| format!("cuda:{i}")).collect());
    }
    if device == "auto" {
        bail!(
            "devices = {count} counts devices of the kind `device` names, but device is 'auto': set --device cuda (or cpu)"
        );
    }
    Ok(vec![device.to_string(); count])
}

fn wgpu_kind(name: &str) -> bool {
    matches!(name, "wgpu" | "vulkan" | "metal" | "dx12")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(result: Result<Placement>) -> String {
        match result {
            Ok(placement) => panic!("accepted: {}", placement.description()),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_count_names_that_many_devices_of_the_kind() {
        assert_eq!(
            device_names("cuda", "3").unwrap(),
            ["cuda:0", "cuda:1", "cuda:2"]
        );
        assert_eq!(device_names("cpu", "2").unwrap(), ["cpu", "cpu"]);
        assert_eq!(device_names("cpu", " cpu , cpu ").unwrap(), ["cpu", "cpu"]);
        assert!(
            device_names("auto", "2")
                .unwrap_err()
                .to_string()
                .contains("--device cuda")
        );
        assert!(device_names("cpu", "0").is_err());
        assert!(
            device_names("cpu", "cpu,,cpu")
                .unwrap_err()
                .to_string()
                .contains("empty name")
        );
    }

    #[test]
    fn two_cpus_train_with_the_multi_strategy_and_half_the_loss() {
        let placement = place("auto", Some("cpu,cpu"), Parallel::Auto).unwrap();
        assert_eq!(placement.count(), 2);
        assert_eq!(placement.parallel, Some(Parallel::Multi));
        assert_eq!(placement.loss_scale(), 0.5);
        assert_eq!(placement.per_device_batch(128).unwrap(), 64);
        let message = placement.per_device_batch(127).unwrap_err().to_string();
        assert!(
            message.contains("batch_size 127") && message.contains("multiple of 2"),
            "{message}"
        );
        assert!(
            placement
                .description()
                .starts_with("2 devices (data parallel")
        );

        let one = place("cpu", None, Parallel::Auto).unwrap();
        assert_eq!((one.count(), one.loss_scale()), (1, 1.0));
        assert_eq!(one.per_device_batch(127).unwrap(), 127);
    }

    #[test]
    fn ddp_is_refused_up_front_where_there_is_no_nccl() {
        let message = error(place("cpu", Some("cpu,cpu"), Parallel::Ddp));
        assert!(
            message.contains("needs CUDA devices") && message.contains("\"multi\""),
            "{message}"
        );
    }

    #[test]
    fn several_wgpu_devices_and_unknown_names_are_refused_by_name() {
        let message = error(place("cpu", Some("vulkan,vulkan"), Parallel::Auto));
        assert!(message.contains("vulkan,vulkan"), "{message}");
        let message = error(place("cpu", Some("cpu,tpu"), Parallel::Auto));
        assert!(message.contains("unknown device 'tpu'"), "{message}");
        let message = error(place("cpu", Some("cuda:x,cuda:1"), Parallel::Auto));
        assert!(message.contains("cuda:x"), "{message}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_in_a_build_without_it_names_the_feature() {
        let message = error(place("cuda", None, Parallel::Auto));
        assert!(message.contains("--features cuda"), "{message}");
        let message = error(place("cuda", Some("2"), Parallel::Multi));
        assert!(message.contains("--features cuda"), "{message}");
    }
}
