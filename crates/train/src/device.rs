//! Choosing where to compute. With wgpu compiled in, asking wgpu for a device on a machine without
//! a GPU adapter blocks forever, so adapters are probed first, on a thread with a time limit.
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use burn::tensor::Device;
use burn::tensor::wgpu::{WgpuBackend, wgpu};
use cnnzoo_flex_kernels::isa;

#[cfg(feature = "cuda")]
use crate::cuda;
use crate::gpu_cache;

const PROBE_TIME_LIMIT: Duration = Duration::from_secs(20);

pub const DEVICE_NAMES: &[&str] = &[
    "auto", "cpu", "ndarray", "wgpu", "vulkan", "metal", "dx12", "cuda", "cuda:N",
];

/// A device chosen by name, with a line describing it for the user.
pub struct SelectedDevice {
    pub device: Device,
    pub description: String,
}

/// `auto` takes the first GPU wgpu finds and falls back to the CPU with a notice on stderr.
pub fn select(name: &str) -> Result<SelectedDevice> {
    if let Some(index) = cuda_index(name)? {
        return cuda(index);
    }
    let api = match name {
        "cpu" => return cpu(),
        #[allow(deprecated)]
        "ndarray" => {
            return Ok(SelectedDevice {
                device: Device::ndarray(),
                description: "CPU (burn ndarray backend)".into(),
            });
        }
        "auto" | "wgpu" => WgpuBackend::Auto,
        "vulkan" => WgpuBackend::Vulkan,
        "metal" => WgpuBackend::Metal,
        "dx12" => WgpuBackend::Dx12,
        other => bail!(
            "unknown device '{other}'; choose one of: {}",
            DEVICE_NAMES.join(", ")
        ),
    };
    // A software rasteriser (Mesa's llvmpipe) is far slower than burn's CPU backend: `auto` skips
    // it, an explicit GPU name accepts it (CI exercises the wgpu path that way).
    match first_adapter(backends_for(api), name != "auto") {
        Some(adapter) => {
            gpu_cache::persist_autotune();
            let device = Device::wgpu_options()
                .graphics_api(api)
                .init()
                .map_err(|e| anyhow!("cannot start the GPU device {adapter}: {e}"))?;
            Ok(SelectedDevice {
                device,
                description: format!("GPU {adapter} (wgpu)"),
            })
        }
        None if name == "auto" => {
            eprintln!("note: no GPU adapter found by wgpu; using the CPU");
            cpu()
        }
        None => bail!(
            "device '{name}' asked for, but wgpu found no {} adapter on this machine; use --device cpu, or install the GPU's driver (Vulkan, Metal or DX12)",
            if name == "wgpu" { "GPU" } else { name }
        ),
    }
}

/// burn's flex backend with cnnzoo's kernels at the level `CNNZOO_ISA` allows (a value that
/// names no level, or one this processor lacks, is an error here, before any work).
fn cpu() -> Result<SelectedDevice> {
    let isa = isa::from_env().map_err(|e| anyhow!(e))?;
    Ok(SelectedDevice {
        device: Device::flex(),
        description: format!("CPU (burn flex backend, {isa} kernels)"),
    })
}

/// `cuda` is GPU 0, `cuda:N` GPU N; `None` for every other name.
pub fn cuda_index(name: &str) -> Result<Option<usize>> {
    let Some(rest) = name.strip_prefix("cuda") else {
        return Ok(None);
    };
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Ok(Some(0)),
        Some(index) => index.parse().map(Some).map_err(|_| {
            anyhow!("device '{name}': after 'cuda:' comes a GPU number (cuda:0, cuda:1, ...)")
        }),
        None => bail!(
            "unknown device '{name}'; choose one of: {}",
            DEVICE_NAMES.join(", ")
        ),
    }
}

/// GPU `index` through burn's CUDA backend, once [`cuda::probe`] found what it needs.
#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<SelectedDevice> {
    let machine = cuda::probe()?;
    if index >= machine.gpus {
        bail!(
            "device 'cuda:{index}' asked for, but the driver reports {} GPU(s): cuda:0 to cuda:{}",
            machine.gpus,
            machine.gpus - 1
        );
    }
    gpu_cache::persist_autotune();
    Ok(SelectedDevice {
        device: Device::cuda(index),
        description: format!(
            "GPU cuda:{index} (burn CUDA backend, {})",
            machine.toolkit.display()
        ),
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<SelectedDevice> {
    bail!(
        "this cnnzoo was built without CUDA; build it with: cargo build --release -p cnnzoo --features cuda (the build needs no CUDA toolkit; running needs the NVIDIA driver and toolkit; see docs/gpu.md)"
    )
}

fn backends_for(api: WgpuBackend) -> wgpu::Backends {
    match api {
        WgpuBackend::Vulkan => wgpu::Backends::VULKAN,
        WgpuBackend::Metal => wgpu::Backends::METAL,
        WgpuBackend::Dx12 => wgpu::Backends::DX12,
        _ => wgpu::Backends::PRIMARY,
    }
}

/// Name and API of the first adapter, or `None` when there is none or the probe does not answer
/// in time.
fn first_adapter(backends: wgpu::Backends, allow_software: bool) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        let adapters = futures_lite::future::block_on(instance.enumerate_adapters(backends));
        let first = adapters
            .iter()
            .map(|a| a.get_info())
            .find(|info| allow_software || info.device_type != wgpu::DeviceType::Cpu)
            .map(|info| format!("{} ({:?})", info.name, info.backend));
        let _ = tx.send(first);
    });
    rx.recv_timeout(PROBE_TIME_LIMIT).ok().flatten()
}
