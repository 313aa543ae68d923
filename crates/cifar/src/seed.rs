//! Seeds derived from (seed, purpose, numbers), so that every random choice of a run is a pure
//! function of its coordinates and not of thread scheduling or of how many draws came before.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// What a derived random stream is for; keeps the streams of one seed independent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Split = 1,
    Shuffle = 2,
    Augment = 3,
    // 4 was a policy stream of its own, before the pipeline drew a whole image from one.
    Mix = 5,
}

/// A generator seeded from `seed`, `purpose` and `coordinates` (epoch, sample index, ...).
///
/// Xoshiro256++ is named explicitly (not `SmallRng`) because rand documents its output as
/// stable, which exact resume relies on.
pub(crate) fn rng_for(seed: u64, purpose: Purpose, coordinates: &[u64]) -> Xoshiro256PlusPlus {
    let mut state = splitmix(seed ^ splitmix(purpose as u64));
    for &value in coordinates {
        state = splitmix(state ^ splitmix(value.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    Xoshiro256PlusPlus::seed_from_u64(state)
}

/// SplitMix64's finaliser: a bijective mix in which every input bit affects every output bit.
fn splitmix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
