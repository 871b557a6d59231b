use crate::write_atomic;
use burn::prelude::*;
use std::path::Path;

/// Writes a grid of images in `[0, 1]` to a PNG, `cols` per row, with a 2-pixel gutter, each
/// pixel drawn `zoom` × `zoom`: `[n, 3, h, w]` in colour (RGB), any other channel count as
/// grey levels (channels averaged).
pub fn save_grid(images: Tensor<4>, cols: usize, zoom: usize, path: &Path) -> anyhow::Result<()> {
    let [n, c, h, w] = images.dims();
    let data: Vec<f32> = images
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let rows = n.div_ceil(cols.max(1));
    let gutter = 2;
    let (cell_w, cell_h) = (w * zoom + gutter, h * zoom + gutter);
    let (width, height) = (cols * cell_w + gutter, rows * cell_h + gutter);
    let colour = c == 3;
    let out_c = if colour { 3 } else { 1 };
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut px = vec![96u8; width * height * out_c];
    for i in 0..n {
        let (gx, gy) = ((i % cols) * cell_w + gutter, (i / cols) * cell_h + gutter);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let (sy, sx) = (y / zoom, x / zoom);
                let at = |ch: usize| data[((i * c + ch) * h + sy) * w + sx];
                let dst = ((gy + y) * width + gx + x) * out_c;
                if colour {
                    for ch in 0..3 {
                        px[dst + ch] = byte(at(ch));
                    }
                } else {
                    px[dst] = byte((0..c).map(at).sum::<f32>() / c as f32);
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(if colour {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&px)?;
    }
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Latent traversal: for each dimension in `dims` (one row each), decode the posterior mean of
/// the image in `batch` (one image, with its label) with that dimension swept over `steps`
/// values in [−3, 3].
pub fn save_traversal<M: ae_core::Autoencoder>(
    model: &M,
    batch: ae_core::ImageBatch,
    dims: &[usize],
    steps: usize,
    path: &Path,
) -> anyhow::Result<()> {
    let device = batch.images.device();
    let label: i64 = batch.labels.clone().into_scalar::<i64>();
    let z0: Vec<f32> = model
        .encode(batch.images, batch.labels)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let latent = z0.len();
    let mut codes = Vec::with_capacity(dims.len() * steps * latent);
    for &d in dims {
        for s in 0..steps {
            let v = -3.0 + 6.0 * s as f32 / (steps - 1).max(1) as f32;
            let mut z = z0.clone();
            z[d] = v;
            codes.extend(z);
        }
    }
    let z = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(codes, [dims.len() * steps, latent]),
        &device,
    );
    let n = dims.len() * steps;
    let labels =
        Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(vec![label; n], [n]), &device);
    save_grid(model.decode(z, labels), steps, 1, path)
}
