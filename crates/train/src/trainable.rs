use crate::{KlPenalty, KlSchedule};
use ae_core::{Autoencoder, ImageBatch};
use ae_metrics::AeItem;
use ae_models::Model;
use burn::prelude::*;
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
}

impl Trainable {
    /// Wraps `model`; `first_step` is the number of steps already taken (when resuming).
    pub fn new(model: Model, schedule: KlSchedule, penalty: KlPenalty, first_step: usize) -> Self {
        Self {
            model,
            schedule,
            penalty,
            step: Arc::new(AtomicUsize::new(first_step)),
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
        let grads = out.objective().backward();
        // Detached now, not when the metrics read it: an item still tied to the graph keeps
        // the backward states alive, and with them references to the weights, so the
        // optimiser that runs next would have to copy every weight matrix before updating it.
        TrainOutput::new(self, grads, AeItem::Device(Box::new(out.detach())))
    }
}

impl InferenceStep for Trainable {
    type Input = ImageBatch;
    type Output = AeItem;

    fn step(&self, batch: ImageBatch) -> AeItem {
        AeItem::Device(Box::new(self.model.forward(batch)))
    }
}
