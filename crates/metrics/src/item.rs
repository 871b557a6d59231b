use ae_core::AeOutput;
use burn::tensor::{ExecutionError, TensorData};
use burn::train::ItemLazy;
use std::sync::Arc;

/// Host copy of the small per-sample tensors of an [`AeOutput`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostBatch {
    /// Batch size.
    pub batch: usize,
    /// Latent dimension.
    pub latent: usize,
    /// β of the model.
    pub beta: f64,
    /// Per-sample objective (recon + β·KL).
    pub loss: Vec<f32>,
    /// Per-sample reconstruction NLL.
    pub recon: Vec<f32>,
    /// Per-sample KL.
    pub kl: Vec<f32>,
    /// Per-sample, per-dimension KL, row-major `[batch, latent]`.
    pub kl_per_dim: Vec<f32>,
    /// Posterior means, row-major `[batch, latent]`.
    pub latent_mean: Vec<f32>,
    /// Code indices of a VQ model (empty otherwise).
    pub codes: Vec<i64>,
    /// Codebook size of a VQ model (0 otherwise).
    pub codebook_size: usize,
}

/// The training/validation step output handed to burn-train.
///
/// Starts as device tensors; [`ItemLazy::sync`] (run on the metric thread) reads the per-sample
/// figures to the host once, so that every metric shares one read and the reconstruction
/// tensor is dropped early.
#[derive(Debug)]
pub enum AeItem {
    /// As returned by the model.
    Device(Box<AeOutput>),
    /// Read back to the host.
    Host(Arc<HostBatch>),
}

fn vec(data: Result<TensorData, ExecutionError>) -> Result<Vec<f32>, ExecutionError> {
    Ok(data?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32"))
}

impl AeItem {
    /// Reads the output to the host.
    pub fn read(out: AeOutput) -> Result<HostBatch, ExecutionError> {
        let batch = out.batch_size();
        let latent = out.latent_dim();
        Ok(HostBatch {
            batch,
            latent,
            beta: out.beta,
            loss: vec(out.loss.try_into_data())?,
            recon: vec(out.recon_loss.try_into_data())?,
            kl: vec(out.kl.try_into_data())?,
            kl_per_dim: vec(out.kl_per_dim.try_into_data())?,
            latent_mean: vec(out.latent_mean.try_into_data())?,
            codebook_size: out.codes.as_ref().map_or(0, |c| c.codebook_size),
            codes: match out.codes {
                Some(c) => c
                    .indices
                    .try_into_data()?
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .expect("converted to i64"),
                None => Vec::new(),
            },
        })
    }

    /// The host copy (reads the device tensors if `sync` has not run).
    pub fn host(&self) -> Arc<HostBatch> {
        match self {
            AeItem::Host(h) => h.clone(),
            AeItem::Device(out) => {
                Arc::new(Self::read((**out).clone().detach()).expect("read model output"))
            }
        }
    }
}

impl ItemLazy for AeItem {
    fn sync(self) -> Result<Self, ExecutionError> {
        match self {
            AeItem::Device(out) => Ok(AeItem::Host(Arc::new(Self::read(out.detach())?))),
            host => Ok(host),
        }
    }
}
