use ae_core::{Autoencoder, ImageBatch};
use ae_metrics::AeItem;
use ae_models::Model;
use burn::prelude::*;
use burn::train::{InferenceStep, TrainOutput, TrainStep};

/// Lets a [`Model`] plug into burn-train's `Learner` (the orphan rule forbids implementing
/// burn-train's traits on the model directly).
#[derive(Module, Debug)]
pub struct Trainable {
    /// The wrapped model.
    pub model: Model,
}

impl TrainStep for Trainable {
    type Input = ImageBatch;
    type Output = AeItem;

    fn step(&self, batch: ImageBatch) -> TrainOutput<AeItem> {
        let out = self.model.forward(batch);
        let grads = out.objective().backward();
        TrainOutput::new(self, grads, AeItem::Device(Box::new(out)))
    }
}

impl InferenceStep for Trainable {
    type Input = ImageBatch;
    type Output = AeItem;

    fn step(&self, batch: ImageBatch) -> AeItem {
        AeItem::Device(Box::new(self.model.forward(batch)))
    }
}
