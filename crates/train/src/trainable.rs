use crate::{KlPenalty, KlSchedule};
use ae_core::{Autoencoder, ImageBatch};
use ae_metrics::AeItem;
use ae_models::Model;
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::train::{InferenceStep, Interrupter, TrainOutput, TrainStep};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A non-finite training loss or gradient, caught in the step where it appeared.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericalFault {
    /// Epoch of the step (from 1).
    pub epoch: usize,
    /// Step within the epoch (from 1).
    pub step: usize,
    /// The training objective of the batch.
    pub loss: f32,
    /// The sum of every gradient element (non-finite iff some element is, barring overflow).
    pub gradient_sum: f32,
}

impl std::fmt::Display for NumericalFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.loss.is_finite() {
            format!("a gradient is not finite (loss {})", self.loss)
        } else {
            format!("the training loss is {}", self.loss)
        };
        write!(f, "epoch {}, step {}: {what}", self.epoch, self.step)
    }
}

/// Reads the fault slot of a [`Trainable`] and of every clone the Learner makes of it.
#[derive(Clone, Debug)]
pub struct FaultWatch(Arc<Mutex<Option<NumericalFault>>>);

impl FaultWatch {
    /// The first non-finite loss or gradient met, if any.
    pub fn fault(&self) -> Option<NumericalFault> {
        self.0.lock().ok().and_then(|f| f.clone())
    }
}

/// Where a training step leaves a [`NumericalFault`], and whom it tells to stop.
#[derive(Clone, Default)]
struct FaultGuard {
    fault: Arc<Mutex<Option<NumericalFault>>>,
    interrupter: Option<Interrupter>,
    steps_per_epoch: usize,
}

impl std::fmt::Debug for FaultGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultGuard")
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

/// Sums every gradient of a module into one scalar (NaN or ±inf if any element is).
struct GradientSum<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for GradientSum<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Lets a [`Model`] plug into burn-train's `Learner` (the orphan rule forbids implementing
/// burn-train's traits on the model directly), and applies the KL schedule and penalty on
/// training steps. Validation steps report the model's own loss.
#[derive(Module, Debug)]
pub struct Trainable {
    /// The wrapped model.
    pub model: Model,
    #[module(skip)]
    schedule: KlSchedule,
    #[module(skip)]
    penalty: KlPenalty,
    /// Optimiser steps taken, shared by the clones the Learner makes of the module.
    #[module(skip)]
    step: Arc<AtomicUsize>,
    #[module(skip)]
    guard: FaultGuard,
}

impl Trainable {
    /// Wraps `model`; `first_step` is the number of steps already taken (when resuming) and
    /// `steps_per_epoch` numbers the steps in fault reports.
    pub fn new(
        model: Model,
        schedule: KlSchedule,
        penalty: KlPenalty,
        first_step: usize,
        steps_per_epoch: usize,
    ) -> Self {
        Self {
            model,
            schedule,
            penalty,
            step: Arc::new(AtomicUsize::new(first_step)),
            guard: FaultGuard {
                steps_per_epoch: steps_per_epoch.max(1),
                ..FaultGuard::default()
            },
        }
    }

    /// Stops `interrupter` (burn-train's Learner) at the first non-finite loss or gradient.
    pub fn stop_on_fault(mut self, interrupter: Interrupter) -> Self {
        self.guard.interrupter = Some(interrupter);
        self
    }

    /// The first non-finite loss or gradient met, if any (shared by every clone).
    pub fn fault(&self) -> Option<NumericalFault> {
        self.fault_watch().fault()
    }

    /// A handle on the fault slot alone: holding it keeps no weights alive (a clone of the
    /// module would hold the initial weights for the whole run).
    pub fn fault_watch(&self) -> FaultWatch {
        FaultWatch(self.guard.fault.clone())
    }

    /// Checks the step's objective and gradients; records a fault and stops training if one
    /// is not finite. One host read per step (two floats).
    fn check(&self, step: usize, objective: Tensor<1>, grads: &GradientsParams) {
        let mut sum = GradientSum { grads, total: None };
        self.visit(&mut sum);
        let grad = sum
            .total
            .unwrap_or_else(|| Tensor::zeros([1], &objective.device()));
        let v: Vec<f32> = Tensor::cat(vec![objective.reshape([1]), grad.reshape([1])], 0)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_else(|_| vec![f32::NAN, f32::NAN]);
        if v.iter().all(|x| x.is_finite()) {
            return;
        }
        let fault = NumericalFault {
            epoch: step / self.guard.steps_per_epoch + 1,
            step: step % self.guard.steps_per_epoch + 1,
            loss: v[0],
            gradient_sum: v[1],
        };
        if let Ok(mut slot) = self.guard.fault.lock()
            && slot.is_none()
        {
            *slot = Some(fault);
        }
        if let Some(i) = &self.guard.interrupter {
            i.stop(Some("non-finite loss or gradient"));
        }
    }
}

impl TrainStep for Trainable {
    type Input = ImageBatch;
    type Output = AeItem;

    fn step(&self, batch: ImageBatch) -> TrainOutput<AeItem> {
        let mut out = self.model.forward(batch);
        let step = self.step.fetch_add(1, Ordering::Relaxed);
        let factor = self.schedule.factor(step);
        if factor != 1.0 {
            out.beta *= factor;
            out.loss = out.recon_loss.clone() + out.kl.clone() * out.beta;
        }
        let [b] = out.recon_loss.dims();
        match self.penalty {
            KlPenalty::Plain => {}
            KlPenalty::FreeBits { lambda } => {
                // β · Σ_j max(λ, batch mean of KL_j), the same for every sample of the batch.
                let floor = out.kl_per_dim.clone().mean_dim(0).clamp_min(lambda).sum();
                out.loss = out.recon_loss.clone() + floor.expand([b]) * out.beta;
            }
            KlPenalty::Capacity { gamma, .. } => {
                let gap = (out.kl.clone().mean() - self.penalty.capacity(step)).abs();
                out.loss = out.recon_loss.clone() + gap.expand([b]) * gamma;
            }
        }
        let objective = out.objective();
        let grads = GradientsParams::from_grads(objective.clone().backward(), self);
        self.check(step, objective.detach(), &grads);
        // Detached now, not when the metrics read it: an item still tied to the graph keeps
        // the backward states alive, and with them references to the weights, so the
        // optimiser that runs next would have to copy every weight matrix before updating it.
        TrainOutput {
            grads,
            item: AeItem::Device(Box::new(out.detach())),
        }
    }
}

impl InferenceStep for Trainable {
    type Input = ImageBatch;
    type Output = AeItem;

    fn step(&self, batch: ImageBatch) -> AeItem {
        AeItem::Device(Box::new(self.model.forward(batch)))
    }
}
