//! The instruction set the kernels run, chosen once per process: the best the processor has, or
//! a lower level that `CNNZOO_ISA` (`avx512`, `avx2` or `scalar`) asks for, so every path can be
//! run and compared on the best machine. [`force`] lowers (or restores) the level within a
//! process, for tests and benchmarks that compare paths in one run.
//!
//! The levels are what the kernels use: AVX-512 means AVX-512 F, BW and VL (with AVX2 and FMA);
//! AVX2 means AVX2 and FMA. cnnzoo's own SIMD kernels are written for AVX2, which they run at
//! both levels; the gemm crate under the im2col convolutions detects the processor itself and
//! is not lowered by this switch.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that lowers the level.
pub const ISA_ENV: &str = "CNNZOO_ISA";

/// An instruction-set level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, whatever the processor.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 F, BW and VL.
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name `CNNZOO_ISA` and the reports use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The level named `name` (any case), if there is one.
    pub fn parse(name: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The best level this processor has.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
                    return Isa::Avx512;
                }
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    fn from_u8(value: u8) -> Isa {
        Isa::ALL[usize::from(value).min(Isa::ALL.len() - 1)]
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The level `CNNZOO_ISA` asks for (the detected one when it is unset), or an error that names
/// the variable and the value: one this processor lacks, or no level at all.
pub fn from_env() -> Result<Isa, String> {
    let detected = Isa::detected();
    let Some(value) = std::env::var_os(ISA_ENV).filter(|v| !v.is_empty()) else {
        return Ok(detected);
    };
    let value = value.to_string_lossy();
    let names: Vec<&str> = Isa::ALL.iter().map(|isa| isa.name()).collect();
    let asked = Isa::parse(&value).ok_or_else(|| {
        format!(
            "{ISA_ENV}={value} is not an instruction set cnnzoo's kernels know ({})",
            names.join(", ")
        )
    })?;
    if asked > detected {
        return Err(format!(
            "{ISA_ENV}={value}: this processor has {detected} at most, so the kernels cannot run {asked}"
        ));
    }
    Ok(asked)
}

/// The level forced with [`force`], if any (`u8::MAX`: none).
static FORCED: AtomicU8 = AtomicU8::new(u8::MAX);

/// The level the kernels run now: [`force`]'s, else [`from_env`]'s (read once; a bad value
/// falls back to the detected level, since the binary reports it before any kernel runs).
pub fn active() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    match FORCED.load(Ordering::Relaxed) {
        u8::MAX => *CHOSEN.get_or_init(|| from_env().unwrap_or_else(|_| Isa::detected())),
        forced => Isa::from_u8(forced),
    }
}

/// Runs the kernels at `level` from now on in this process; `None` goes back to the chosen
/// level. A level the processor lacks is an error naming it.
pub fn force(level: Option<Isa>) -> Result<(), String> {
    match level {
        Some(level) if level > Isa::detected() => Err(format!(
            "this processor has {} at most, so the kernels cannot run {level}",
            Isa::detected()
        )),
        Some(level) => {
            FORCED.store(level as u8, Ordering::Relaxed);
            Ok(())
        }
        None => {
            FORCED.store(u8::MAX, Ordering::Relaxed);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_levels_are_ordered() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
            assert_eq!(Isa::parse(&isa.name().to_uppercase()), Some(isa));
        }
        assert_eq!(Isa::parse("sse2"), None);
        assert!(Isa::Scalar < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
    }
}
