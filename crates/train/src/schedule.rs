use serde::{Deserialize, Serialize};

/// How β ramps up during training (KL annealing, Bowman et al. 2016). The factor multiplies
/// the model's β on training steps; validation always uses the full β.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KlSchedule {
    /// Full β from the first step.
    #[default]
    Constant,
    /// β · min(1, step / warmup_steps).
    Linear {
        /// Steps (optimiser updates) until the full β.
        warmup_steps: usize,
    },
    /// β · σ(12 · (step / warmup_steps − ½)), then the full β after `warmup_steps`.
    Sigmoid {
        /// Steps until the full β.
        warmup_steps: usize,
    },
}

impl KlSchedule {
    /// Multiplier of β at optimiser step `step` (from 0).
    pub fn factor(&self, step: usize) -> f64 {
        match *self {
            KlSchedule::Constant => 1.0,
            KlSchedule::Linear { warmup_steps } => {
                (step as f64 / warmup_steps.max(1) as f64).min(1.0)
            }
            KlSchedule::Sigmoid { warmup_steps } => {
                if step >= warmup_steps {
                    1.0
                } else {
                    let t = step as f64 / warmup_steps.max(1) as f64;
                    1.0 / (1.0 + (-12.0 * (t - 0.5)).exp())
                }
            }
        }
    }

    /// Checks the schedule.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            KlSchedule::Linear { warmup_steps: 0 } | KlSchedule::Sigmoid { warmup_steps: 0 } => {
                Err("kl_schedule.warmup_steps must be at least 1".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KlSchedule;

    #[test]
    fn warmups_start_low_and_reach_one() {
        let lin = KlSchedule::Linear { warmup_steps: 100 };
        assert_eq!(lin.factor(0), 0.0);
        assert_eq!(lin.factor(50), 0.5);
        assert_eq!(lin.factor(1000), 1.0);
        let sig = KlSchedule::Sigmoid { warmup_steps: 100 };
        assert!(sig.factor(0) < 0.01 && (sig.factor(50) - 0.5).abs() < 1e-12);
        assert!(sig.factor(10) < sig.factor(20));
        assert_eq!(sig.factor(100), 1.0);
        assert_eq!(KlSchedule::Constant.factor(0), 1.0);
    }
}
