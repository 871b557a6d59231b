//! The optimiser: Adam with the configured settings and gradient-norm clipping.
//!
//! With the `fast-cpu` feature (default) and the CPU kernels enabled (`AE_CPU_KERNELS` not
//! `off`), parameters on CPU backends are updated by `ae_cpu::FusedAdam`: Burn's Adam rule in
//! one rayon-parallel pass per parameter. Otherwise (GPUs, the feature or the kernels off) it is
//! Burn's `Adam`. The state is Burn's `AdamState` either way, so checkpoints are
//! interchangeable.
use crate::OptimizerConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, ModuleOptimizer};

/// The module optimiser for `cfg` on `device_name` (see the module docs), with the configured
/// gradient-norm clipping.
pub fn optimizer(cfg: &OptimizerConfig, device_name: &str) -> ModuleOptimizer {
    let mut optim = adam(cfg, device_name);
    if let Some(c) = cfg.grad_clip_norm {
        optim = optim.with_grad_clipping(GradientClippingConfig::Norm(c).init());
    }
    optim
}

/// `ae_cpu::FusedAdam` on CPU backends when compiled in and enabled, else Burn's `Adam`.
fn adam(o: &OptimizerConfig, device_name: &str) -> ModuleOptimizer {
    #[cfg(feature = "fast-cpu")]
    if crate::device::is_cpu(device_name) && ae_cpu::enabled() {
        let fused = ae_cpu::FusedAdam::new(o.beta1, o.beta2, o.epsilon, o.weight_decay);
        return ModuleOptimizer::from(fused);
    }
    let _ = device_name;
    let mut adam = AdamConfig::new()
        .with_beta_1(o.beta1)
        .with_beta_2(o.beta2)
        .with_epsilon(o.epsilon);
    if o.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(
            o.weight_decay,
        )));
    }
    ModuleOptimizer::from(adam.build())
}
