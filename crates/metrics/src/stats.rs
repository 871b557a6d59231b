/// Streaming per-dimension mean and variance (Welford / Chan et al. merge), in f64.
///
/// Used for active units: the variance over the *whole* evaluation set of E[z_u|x], not a
/// per-batch estimate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamingMoments {
    count: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl StreamingMoments {
    /// Adds the rows of a row-major `[n, dims]` matrix.
    pub fn update(&mut self, rows: &[f32], dims: usize) {
        if self.mean.len() != dims {
            *self = Self {
                count: 0,
                mean: vec![0.0; dims],
                m2: vec![0.0; dims],
            };
        }
        for row in rows.chunks_exact(dims) {
            self.count += 1;
            let n = self.count as f64;
            for (j, &x) in row.iter().enumerate() {
                let x = x as f64;
                let delta = x - self.mean[j];
                self.mean[j] += delta / n;
                self.m2[j] += delta * (x - self.mean[j]);
            }
        }
    }

    /// Number of rows seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Per-dimension means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Per-dimension population variances (divided by n).
    pub fn variance(&self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.m2.iter().map(|m| m / n).collect()
    }
}

/// Active units (Burda et al. 2016): dimensions whose posterior mean varies across the data
/// with variance above `threshold` (0.01 in the paper).
pub fn active_units(variance: &[f64], threshold: f64) -> usize {
    variance.iter().filter(|&&v| v > threshold).count()
}

/// Dimensions whose mean KL is below `threshold` nats ("switched off").
pub fn collapsed_dims(mean_kl_per_dim: &[f64], threshold: f64) -> usize {
    mean_kl_per_dim.iter().filter(|&&k| k < threshold).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_moments_match_two_pass_values() {
        // Two dims, rows fed in uneven chunks.
        let rows: Vec<f32> = (0..50)
            .flat_map(|i| [i as f32 * 0.1, (i % 7) as f32])
            .collect();
        let mut s = StreamingMoments::default();
        s.update(&rows[..14], 2);
        s.update(&rows[14..], 2);
        for j in 0..2 {
            let xs: Vec<f64> = rows.iter().skip(j).step_by(2).map(|&x| x as f64).collect();
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64;
            assert!((s.mean()[j] - m).abs() < 1e-9);
            assert!((s.variance()[j] - v).abs() < 1e-9);
        }
    }

    #[test]
    fn thresholds_count_strictly() {
        assert_eq!(active_units(&[0.5, 0.01, 0.0101, 0.0], 0.01), 2);
        assert_eq!(collapsed_dims(&[0.5, 0.009, 0.01, 0.0], 0.01), 2);
    }
}
