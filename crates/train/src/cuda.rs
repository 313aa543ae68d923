//! What `--device cuda` needs before burn is asked for a CUDA device: cudarc loads the driver
//! (`libcuda`), the runtime compiler (`libnvrtc`) and, for DDP, `libnccl` when first used and
//! panics when one is missing, and cubecl-cuda panics when it finds no CUDA headers to compile
//! its kernels with. These probes look first, so a missing piece is an error that names it.
//!
//! The NCCL probe is in every build, as [`crate::parallel`] decides on DDP with it; the others
//! only with the `cuda` feature, the one build that asks for a CUDA device.
#[cfg(feature = "cuda")]
use std::ffi::c_int;
use std::ffi::{CStr, CString, c_char, c_void};
#[cfg(feature = "cuda")]
use std::path::PathBuf;

#[cfg(feature = "cuda")]
use anyhow::{Result, bail};

/// The driver, as cudarc looks for it.
#[cfg(feature = "cuda")]
pub const DRIVER: &[&str] = &["libcuda.so", "libcuda.so.1"];
/// The runtime compiler, newest first, as cudarc (built for CUDA 13.0) looks for it.
#[cfg(feature = "cuda")]
pub const NVRTC: &[&str] = &[
    "libnvrtc.so",
    "libnvrtc.so.13",
    "libnvrtc.so.12",
    "libnvrtc.so.11",
];
/// NVIDIA's collective library, which burn's DDP all-reduce runs on.
pub const NCCL: &[&str] = &["libnccl.so", "libnccl.so.2"];

/// What a machine offers for CUDA training.
#[cfg(feature = "cuda")]
#[derive(Clone, Debug)]
pub struct CudaMachine {
    /// GPUs the driver reports.
    pub gpus: usize,
    /// The folder whose `include/` cubecl-cuda compiles kernels against.
    pub toolkit: PathBuf,
}

/// The driver, its GPU count, the runtime compiler and the headers; the first missing one is
/// the error.
#[cfg(feature = "cuda")]
pub fn probe() -> Result<CudaMachine> {
    let driver = open_first(DRIVER).map_err(|looked| {
        anyhow::anyhow!(
            "no NVIDIA driver: none of {looked} could be loaded (searched LD_LIBRARY_PATH and the system's library cache); install the NVIDIA driver, or use --device cpu or wgpu"
        )
    })?;
    let gpus = gpu_count(driver)?;
    if open_first(NVRTC).is_err() {
        bail!(
            "the CUDA runtime compiler is missing: none of {} could be loaded (searched LD_LIBRARY_PATH and the system's library cache); install the CUDA toolkit (or its nvrtc package) and add its lib64 folder to LD_LIBRARY_PATH",
            NVRTC.join(", ")
        );
    }
    let Some(toolkit) = toolkit_dir() else {
        bail!(
            "no CUDA headers: CUDA_PATH is not set and none of /usr/local/cuda, /opt/cuda, /usr (with /usr/bin/nvcc) holds an include/cuda.h; burn compiles its CUDA kernels against them: install the CUDA toolkit or set CUDA_PATH to it"
        );
    };
    Ok(CudaMachine { gpus, toolkit })
}

/// Whether NCCL can be loaded, or the names that were tried.
pub fn nccl_available() -> std::result::Result<(), String> {
    open_first(NCCL).map(|_| ())
}

/// The folder cubecl-cuda compiles its kernels against (its own search), if it holds the
/// headers.
#[cfg(feature = "cuda")]
fn toolkit_dir() -> Option<PathBuf> {
    cubecl_cuda::install::cuda_path().filter(|dir| dir.join("include/cuda.h").exists())
}

#[cfg(feature = "cuda")]
type CuInit = unsafe extern "C" fn(flags: u32) -> c_int;
#[cfg(feature = "cuda")]
type CuDeviceGetCount = unsafe extern "C" fn(count: *mut c_int) -> c_int;

/// `cuInit` then `cuDeviceGetCount`, through the loaded driver.
#[cfg(feature = "cuda")]
fn gpu_count(driver: Library) -> Result<usize> {
    let (Some(init), Some(count)) = (driver.symbol(c"cuInit"), driver.symbol(c"cuDeviceGetCount"))
    else {
        bail!("the NVIDIA driver library lacks cuInit or cuDeviceGetCount: reinstall the driver");
    };
    // Safety: the two symbols are the driver API's entry points of these signatures.
    let (init, device_count) = unsafe {
        (
            std::mem::transmute::<*mut c_void, CuInit>(init),
            std::mem::transmute::<*mut c_void, CuDeviceGetCount>(count),
        )
    };
    // Safety: cuInit takes flags 0; cuDeviceGetCount writes one int.
    let status = unsafe { init(0) };
    if status != 0 {
        bail!(
            "the NVIDIA driver did not start (cuInit returned CUDA error {status}; 100 means no GPU was found, 35 a driver older than CUDA 13.0 needs)"
        );
    }
    let mut gpus: c_int = 0;
    let status = unsafe { device_count(&mut gpus) };
    if status != 0 || gpus < 1 {
        bail!("the NVIDIA driver reports no GPU (cuDeviceGetCount: status {status}, {gpus} GPUs)");
    }
    Ok(gpus as usize)
}

/// A library loaded for the life of the process (cudarc loads it again; the loader shares it).
/// Without the `cuda` feature only NCCL is probed, for whether it loads, not for its symbols.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct Library(*mut c_void);

#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
impl Library {
    fn symbol(&self, name: &CStr) -> Option<*mut c_void> {
        // Safety: a handle from dlopen and a NUL-terminated name.
        let symbol = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        (!symbol.is_null()).then_some(symbol)
    }
}

/// The first of `names` the dynamic loader opens, or the names, joined, to report.
fn open_first(names: &[&str]) -> std::result::Result<Library, String> {
    for name in names {
        let Ok(c_name) = CString::new(*name) else {
            continue;
        };
        // Safety: dlopen with a NUL-terminated name; the handle is never closed.
        let handle = unsafe { libc::dlopen(c_name.as_ptr() as *const c_char, libc::RTLD_LAZY) };
        if !handle.is_null() {
            return Ok(Library(handle));
        }
    }
    Err(names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_that_is_nowhere_is_reported_by_every_name_tried() {
        let names = ["libcnnzoo-absent.so", "libcnnzoo-absent.so.7"];
        let Err(looked) = open_first(&names) else {
            panic!("a library that does not exist was loaded");
        };
        assert_eq!(looked, "libcnnzoo-absent.so, libcnnzoo-absent.so.7");
    }

    #[test]
    fn a_library_the_system_has_is_loaded_and_its_symbols_found() {
        let libc = open_first(&["libc.so.6"]).expect("glibc is loaded in every Linux process");
        assert!(libc.symbol(c"malloc").is_some());
        assert!(libc.symbol(c"cnnzoo_no_such_symbol").is_none());
    }
}
