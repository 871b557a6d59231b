//! `sample` and `reconstruct`: PNG grids from a finished run (prior samples, optionally of one
//! class for a conditional model; images of a split over their reconstructions).
use crate::evaluation::FinishedRun;
use crate::save_grid;
use ae_core::Autoencoder;
use anyhow::bail;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use std::path::Path;

/// Writes `n` decodes of prior samples to `out` (8 per row), drawn with `seed`; with `class`,
/// all of that class (conditional models only). Refuses families without a prior.
pub fn sample(
    run: &FinishedRun,
    n: usize,
    class: Option<usize>,
    seed: u64,
    out: &Path,
) -> anyhow::Result<()> {
    let FinishedRun { model, device, .. } = run;
    if n == 0 {
        bail!("-n must be at least 1");
    }
    device.seed(seed);
    let images = match (class, model.num_classes()) {
        (Some(c), Some(k)) if c < k => {
            let z = Tensor::random(
                [n, model.latent_dim()],
                Distribution::Normal(0.0, 1.0),
                device,
            );
            let labels =
                Tensor::<1, Int>::from_data(TensorData::new(vec![c as i64; n], [n]), device);
            model.decode(z, labels)
        }
        (Some(c), Some(k)) => bail!("--class {c}: the model has classes 0..{k}"),
        (Some(_), None) => bail!(
            "--class needs a conditional model (family cvae); this run's family has no classes"
        ),
        (None, _) => match model.sample(n, device) {
            Some(images) => images,
            None => bail!(
                "this family has no prior to sample from (a plain AE or a VQ-VAE without a \
                 learned prior); use reconstruct or encode instead"
            ),
        },
    };
    save_grid(images, 8, 2, out)
}

/// Writes the first `n` images of the run's split (odd rows) over their reconstructions through
/// the posterior mean (even rows), 10 per row, to `out` (`n` rounded down to whole rows).
pub fn reconstruct(run: &FinishedRun, n: usize, out: &Path) -> anyhow::Result<()> {
    let FinishedRun {
        cfg,
        model,
        device,
        data,
        ..
    } = run;
    // Whole rows of 10 (or the few images there are).
    let n = match n.min(data.len()) {
        n if n >= 10 => n / 10 * 10,
        n => n,
    };
    if n == 0 {
        bail!("no images to reconstruct (-n 0 or an empty split)");
    }
    let mut rows = Vec::new();
    for batch in cfg.data.batcher().batches(data, n, 10, device) {
        let recon = model.reconstruct(batch.clone());
        rows.push(batch.images);
        rows.push(recon);
    }
    save_grid(Tensor::cat(rows, 0), 10, 2, out)
}
