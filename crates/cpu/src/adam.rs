//! Adam, fused into one pass over each parameter, for CPU backends.
//!
//! Burn's `Adam` updates a parameter with about a dozen element-wise tensor ops (two moment
//! updates, a square, a square root, bias corrections, the division, the step), each a full
//! pass over the parameter on the calling thread. [`FusedAdam`] does the same arithmetic in one
//! pass, split across the rayon pool, on the tensors' own buffers (moved out and back without
//! copies when they are not shared), with 8-wide AVX when the CPU has it. The optimiser state
//! is Burn's `AdamState`, so checkpoints are the same either way. `ae_train::optim` uses it for
//! parameters on CPU backends when the kernels are enabled, Burn's `Adam` otherwise.
use crate::host::filled;
use burn::optim::{AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;
use std::convert::Infallible;
use std::mem::MaybeUninit;

/// Adam (Kingma & Ba) with Burn's exact update rule
/// `p ← p − lr · m̂ / (√v̂ + ε)` (bias-corrected moments, L2 weight decay added to the gradient),
/// in one pass per parameter, for `f32` parameters on CPU backends (`flex`, `ndarray`); other
/// dtypes go to Burn's `Adam` with the same settings.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    adam: burn::optim::Adam,
}

impl FusedAdam {
    /// Adam with β₁, β₂, ε and L2 weight decay (none when `weight_decay` is 0).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            adam: adam_config(beta_1, beta_2, epsilon, weight_decay).build(),
        }
    }
}

/// Burn's `AdamConfig` with these settings: the rule `FusedAdam` follows, and its fallback.
fn adam_config(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> AdamConfig {
    let adam = AdamConfig::new()
        .with_beta_1(beta_1)
        .with_beta_2(beta_2)
        .with_epsilon(epsilon);
    if weight_decay > 0.0 {
        adam.with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(
            weight_decay,
        )))
    } else {
        adam
    }
}

/// Number of elements per parallel chunk (small parameters stay on one thread).
const CHUNK: usize = 16 * 1024;

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if tensor.dtype() != burn::tensor::DType::F32 {
            return self.adam.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1.into_data(),
                s.momentum.moment_2.into_data(),
            ),
            None => (
                1,
                TensorData::zeros::<f32, _>(shape.clone()),
                TensorData::zeros::<f32, _>(shape.clone()),
            ),
        };
        let (g, mut m, mut v) = (grad.into_data(), m, v);
        let (b1, b2, wd) = (self.beta_1, self.beta_2, self.weight_decay);
        // The same scalars as Burn's AdaptiveMomentum.
        let bias2_sqrt = (1.0 - b2.powi(time as i32)).sqrt();
        let step = (lr as f32) * bias2_sqrt / (1.0 - b1.powi(time as i32));
        let eps = self.epsilon * bias2_sqrt;
        let k = AdamScalars {
            b1,
            b2,
            wd,
            step,
            eps,
        };
        let gs = g.as_slice::<f32>().expect("f32 gradient");
        let ms = m.as_mut_slice::<f32>().expect("f32 moment");
        let vs = v.as_mut_slice::<f32>().expect("f32 moment");
        assert!(gs.len() == n && ms.len() == n && vs.len() == n);
        let p = match param_buffer(tensor) {
            ParamBuffer::Owned(mut p) => {
                let ps = p.as_mut_slice::<f32>().expect("f32 parameter");
                assert_eq!(ps.len(), n);
                if n >= 2 * CHUNK {
                    ps.par_chunks_mut(CHUNK)
                        .zip(gs.par_chunks(CHUNK))
                        .zip(ms.par_chunks_mut(CHUNK))
                        .zip(vs.par_chunks_mut(CHUNK))
                        .for_each(|(((p, g), m), v)| adam_update(&k, Slot::InPlace(p), g, m, v));
                } else {
                    adam_update(&k, Slot::InPlace(ps), gs, ms, vs);
                }
                p
            }
            ParamBuffer::Shared(old) => {
                // Read the shared buffer and write the new values into a fresh one in the same
                // pass, where `into_data` would first copy the buffer (twice, to realign it).
                let olds = old.as_slice::<f32>().expect("contiguous f32 parameter");
                assert_eq!(olds.len(), n);
                let write = |out: &mut [MaybeUninit<f32>]| {
                    if n >= 2 * CHUNK {
                        out.par_chunks_mut(CHUNK)
                            .zip(olds.par_chunks(CHUNK))
                            .zip(gs.par_chunks(CHUNK))
                            .zip(ms.par_chunks_mut(CHUNK))
                            .zip(vs.par_chunks_mut(CHUNK))
                            .for_each(|((((o, p), g), m), v)| {
                                adam_update(&k, Slot::Into(p, o), g, m, v)
                            });
                    } else {
                        adam_update(&k, Slot::Into(olds, out), gs, ms, vs);
                    }
                    Ok::<(), Infallible>(())
                };
                // SAFETY: `write` writes every one of the n elements: `out`, the old values,
                // the gradient and both moments all hold n (asserted), the chunks of `out`
                // cover it, and each is zipped with chunks of equal length.
                let Ok(new) = unsafe { filled(n, write) };
                TensorData::new(new, shape.clone())
            }
        };
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_data(m, &device),
            Tensor::from_data(v, &device),
        );
        (
            Tensor::from_data(p, &device),
            Some(AdamState::new(momentum)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <burn::optim::Adam as Optimizer>::to_device(state, device)
    }
}

/// A parameter's values as the optimiser receives them.
enum ParamBuffer {
    /// Owned by the optimiser (or on a backend without a shared view): updated in place.
    Owned(TensorData),
    /// A flex buffer still referenced elsewhere — burn-train's `Learner` holds the previous
    /// model while the optimiser runs — read there, the update written to a new buffer.
    Shared(burn::backend::flex::FlexTensor),
}

/// Takes the parameter's buffer without copying when it can.
fn param_buffer<const D: usize>(tensor: Tensor<D>) -> ParamBuffer {
    use burn::backend::{BackendTensor, DispatchTensor, DispatchTensorKind};
    let DispatchTensor { kind, autodiff } = tensor.into_dispatch();
    let kind = match kind {
        DispatchTensorKind::Flex(BackendTensor::Float(t))
            if !t.is_unique() && t.as_slice::<f32>().is_some() =>
        {
            return ParamBuffer::Shared(t);
        }
        other => other,
    };
    let tensor = Tensor::<D>::from_dispatch(DispatchTensor { kind, autodiff });
    ParamBuffer::Owned(tensor.into_data())
}

/// The per-step scalars of one Adam update.
#[derive(Clone, Copy)]
struct AdamScalars {
    b1: f32,
    b2: f32,
    wd: f32,
    /// `lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    step: f32,
    /// `ε · √(1 − β₂ᵗ)`.
    eps: f32,
}

/// Where a chunk's parameter values come from and go to.
enum Slot<'a> {
    /// Read and written in place.
    InPlace(&'a mut [f32]),
    /// Read from the first slice, written to the second.
    Into(&'a [f32], &'a mut [MaybeUninit<f32>]),
}

/// One Adam update over a chunk, with 8-wide AVX `sqrt`/`div` when the CPU has AVX2 (the
/// baseline x86-64 target only has 4-wide SSE). Same operations in the same order either way.
fn adam_update(k: &AdamScalars, p: Slot<'_>, g: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the feature `adam_update_avx2` is compiled for.
        return unsafe { adam_update_avx2(k, p, g, m, v) };
    }
    adam_update_generic(k, p, g, m, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn adam_update_avx2(k: &AdamScalars, p: Slot<'_>, g: &[f32], m: &mut [f32], v: &mut [f32]) {
    adam_update_generic(k, p, g, m, v)
}

#[inline(always)]
fn adam_update_generic(k: &AdamScalars, p: Slot<'_>, g: &[f32], m: &mut [f32], v: &mut [f32]) {
    match p {
        Slot::InPlace(p) => {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *p = adam_element(k, *p, g, m, v);
            }
        }
        Slot::Into(old, out) => {
            let it = out
                .iter_mut()
                .zip(old)
                .zip(g)
                .zip(m.iter_mut())
                .zip(v.iter_mut());
            for ((((o, &p), &g), m), v) in it {
                o.write(adam_element(k, p, g, m, v));
            }
        }
    }
}

/// Burn's Adam rule for one element: updates the moments, returns the new parameter value.
#[inline(always)]
fn adam_element(k: &AdamScalars, p: f32, g: f32, m: &mut f32, v: &mut f32) -> f32 {
    let g = if k.wd > 0.0 { g + k.wd * p } else { g };
    *m = k.b1 * *m + (1.0 - k.b1) * g;
    *v = k.b2 * *v + (1.0 - k.b2) * (g * g);
    p - k.step * *m / (v.sqrt() + k.eps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tolerance;

    /// Five steps of FusedAdam and of Burn's Adam from the same parameter and gradients agree to
    /// float rounding, with and without weight decay, below and above the parallel chunk size,
    /// with the parameter's buffer owned (updated in place) and shared (left untouched).
    #[test]
    fn fused_adam_follows_burns_adam() {
        let device = Device::default();
        for (n, wd) in [(37, 0.0), (3 * CHUNK + 5, 0.01)] {
            let fused = FusedAdam::new(0.9, 0.999, 1e-8, wd);
            let plain = adam_config(0.9, 0.999, 1e-8, wd).build();
            let p0: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let mut a = Tensor::<1>::from_floats(p0.as_slice(), &device);
            let mut b = a.clone();
            let (mut sa, mut sb) = (None, None);
            for t in 0..5 {
                let g: Vec<f32> = (0..n)
                    .map(|i| (((i + 13 * t) * 104_729) % 97) as f32 / 40.0 - 1.2)
                    .collect();
                let g = Tensor::<1>::from_floats(g.as_slice(), &device);
                if t % 2 == 1 {
                    // Someone else still holds the parameter (as burn-train's Learner holds
                    // the previous model): the update must leave their values untouched.
                    let held = a.clone();
                    let before = held.to_data();
                    (a, sa) = fused.step(1e-2, a, g.clone(), sa);
                    held.into_data().assert_eq(&before, true);
                } else {
                    (a, sa) = fused.step(1e-2, a, g.clone(), sa);
                }
                (b, sb) = plain.step(1e-2, b, g, sb);
            }
            a.clone()
                .into_data()
                .assert_approx_eq::<f32>(&b.clone().into_data(), Tolerance::absolute(1e-6));
            // The parameters moved: the comparison is not between two untouched tensors.
            let moved = (a - Tensor::<1>::from_floats(p0.as_slice(), &device))
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(moved > 1e-3, "n = {n}: moved {moved}");
            let (ma, mb) = (sa.unwrap().momentum, sb.unwrap().momentum);
            assert_eq!(ma.time, mb.time);
            ma.moment_2
                .into_data()
                .assert_approx_eq::<f32>(&mb.moment_2.into_data(), Tolerance::absolute(1e-6));
        }
    }
}
