use crate::write_atomic;
use burn::prelude::*;
use std::path::Path;

/// Writes a grid of grey-level images (`[n, 1, h, w]` in `[0, 1]`, or `[n, 3, h, w]` averaged)
/// to a PNG, `cols` per row, with a 2-pixel gutter, each pixel drawn `zoom` × `zoom`.
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
    let mut px = vec![96u8; width * height];
    for i in 0..n {
        let (gx, gy) = ((i % cols) * cell_w + gutter, (i / cols) * cell_h + gutter);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let (sy, sx) = (y / zoom, x / zoom);
                let v: f32 = (0..c)
                    .map(|ch| data[((i * c + ch) * h + sy) * w + sx])
                    .sum::<f32>()
                    / c as f32;
                px[(gy + y) * width + gx + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&px)?;
    }
    write_atomic(path, &bytes)?;
    Ok(())
}
