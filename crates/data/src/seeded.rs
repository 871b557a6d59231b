//! Counter-based random numbers: every draw is a pure function of its inputs, so that the
//! shuffling, the binarisation and any other data randomness of epoch e can be reproduced
//! from (seed, e) alone (a resumed run sees exactly what the uninterrupted one saw).

/// SplitMix64's output function: a bijective 64-bit mixer (Steele et al. 2014).
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from `parts` (order matters); independent streams for different parts.
pub fn mix(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x6A09_E667_F3BC_C908, |h, &p| splitmix64(h ^ splitmix64(p)))
}

/// A uniform draw in [0, 1) from a SplitMix64 stream whose state is `state` (advanced).
pub fn uniform(state: &mut u64) -> f64 {
    let v = splitmix64(*state);
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (v >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard-normal draw (Box–Muller, cosine branch) from the stream of [`uniform`].
pub fn standard_normal(state: &mut u64) -> f64 {
    let (u, v) = (uniform(state).max(1e-300), uniform(state));
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Binarises 8-bit pixels in place: pixel p becomes 255 with probability p / 255, else 0,
/// with the uniform draw of pixel j a function of (`seed`, j) only.
pub fn sample_binary(pixels: &mut [u8], seed: u64) {
    for (j, p) in pixels.iter_mut().enumerate() {
        // 8 random bits against the 8-bit intensity: P(255) = p / 255 exactly for p = 0, 255,
        // and within 1/255 otherwise; u < p with u uniform on 0..255 gives P = p / 255.
        let u = (splitmix64(seed ^ (j as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)) % 255) as u8;
        *p = if u < *p { 255 } else { 0 };
    }
}

/// [`sample_binary`] for float values: each becomes 1 with probability `v` (clamped to
/// [0, 1]), else 0, from 24 random bits per value.
pub fn sample_binary_floats(values: &mut [f32], seed: u64) {
    for (j, v) in values.iter_mut().enumerate() {
        let bits = splitmix64(seed ^ (j as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)) >> 40;
        let u = bits as f32 / (1u32 << 24) as f32;
        *v = if u < v.clamp(0.0, 1.0) { 1.0 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarisation_keeps_the_intensity_in_expectation() {
        // 0 and 255 are kept; 51 (= 0.2) becomes 255 about 20 % of the time.
        let mut hits = 0;
        for s in 0..2_000u64 {
            let mut px = [0u8, 255, 51];
            sample_binary(&mut px, mix(&[s]));
            assert_eq!((px[0], px[1]), (0, 255));
            hits += (px[2] == 255) as u32;
        }
        assert!((360..440).contains(&hits), "{hits} of 2000");
        let (mut a, mut b) = ([128u8; 64], [128u8; 64]);
        sample_binary(&mut a, 5);
        sample_binary(&mut b, 5);
        assert_eq!(a, b, "a function of the seed");
        sample_binary(&mut b, 6);
        assert_ne!(a, [128u8; 64]);
    }
}
