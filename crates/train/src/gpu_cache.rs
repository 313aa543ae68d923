//! Where burn's GPU backends keep what they learn about a machine between runs. cubecl (under
//! burn's wgpu and CUDA backends) times candidate kernels for each new shape the first time it
//! meets it (autotune) and stores the winners; by default in a `target/` folder found from the
//! working directory, so a user who runs cnnzoo from another folder tunes again. cnnzoo points
//! it at its own cache folder instead: `<cache>/cubecl`, where `<cache>` is `CNNZOO_CACHE_DIR`,
//! else `$XDG_CACHE_HOME/cnnzoo`, else `~/.cache/cnnzoo`.
//!
//! A `cubecl.toml` (or a `[cubecl]` section of `burn.toml`) in the working directory or above it
//! still rules: cnnzoo only moves the cache when that file leaves it at cubecl's default.
use std::path::PathBuf;

use cubecl_environment::config::RuntimeConfig;
use cubecl_environment::persistence::CacheConfig;
use cubecl_runtime::config::CubeClRuntimeConfig;

/// The folder autotune results persist in.
pub fn autotune_dir() -> PathBuf {
    cnnzoo_cifar::default_cache_dir().join("cubecl")
}

/// Installs the configuration before the first GPU device starts; later calls, and a
/// configuration cubecl already read, are left alone.
pub fn persist_autotune() {
    let mut config = CubeClRuntimeConfig::from_current_dir();
    if matches!(config.environment.path, CacheConfig::Target) {
        config.environment.path = CacheConfig::Directory(autotune_dir());
    }
    CubeClRuntimeConfig::try_set(config.override_from_env());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cubecl's configuration is one per process: no other test of this crate starts a GPU
    /// backend, so this one installs it.
    #[test]
    fn autotune_results_go_under_the_cache_folder() {
        persist_autotune();
        let config = CubeClRuntimeConfig::get();
        match &config.environment.path {
            CacheConfig::Directory(dir) => assert_eq!(dir, &autotune_dir()),
            other => panic!("cubecl keeps its autotune results in {other:?}"),
        }
        assert!(
            !config.autotune.disable_cache,
            "the persistent cache is off"
        );
    }
}
