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

/// How the KL term enters the training objective (remedies against posterior collapse).
/// Validation figures always report the plain KL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KlPenalty {
    /// β · KL.
    #[default]
    Plain,
    /// Free bits (Kingma et al. 2016): β · Σ_j max(λ, E_batch KL_j). Each dimension may carry
    /// λ nats per sample for free, so the optimiser gains nothing by switching it off.
    FreeBits {
        /// The per-dimension floor λ, nats.
        lambda: f64,
    },
    /// Capacity annealing (Burgess et al. 2018): γ · |E_batch KL − C| with C rising linearly
    /// from 0 to `max_capacity` nats over `steps` optimiser steps (β is not used).
    Capacity {
        /// Weight γ of the capacity term.
        gamma: f64,
        /// Final capacity C, nats.
        max_capacity: f64,
        /// Steps until C reaches `max_capacity`.
        steps: usize,
    },
}

impl KlPenalty {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            KlPenalty::FreeBits { lambda } if !(lambda.is_finite() && lambda >= 0.0) => {
                Err(format!("kl_penalty.lambda must be ≥ 0, got {lambda}"))
            }
            KlPenalty::Capacity {
                gamma,
                max_capacity,
                steps,
            } => {
                if !(gamma.is_finite() && gamma >= 0.0) {
                    Err(format!("kl_penalty.gamma must be ≥ 0, got {gamma}"))
                } else if !(max_capacity.is_finite() && max_capacity >= 0.0) {
                    Err(format!(
                        "kl_penalty.max_capacity must be ≥ 0, got {max_capacity}"
                    ))
                } else if steps == 0 {
                    Err("kl_penalty.steps must be at least 1".into())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Capacity C at `step` (0 for the other penalties).
    pub fn capacity(&self, step: usize) -> f64 {
        match *self {
            KlPenalty::Capacity {
                max_capacity,
                steps,
                ..
            } => max_capacity * (step as f64 / steps as f64).min(1.0),
            _ => 0.0,
        }
    }
}
