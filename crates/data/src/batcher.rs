use ae_core::{ImageBatch, ImageShape};
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::tensor::TensorData;

/// One image as stored by the datasets: bytes 0–255 (or float values) and an integer label.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageItem {
    /// Row-major pixels (channels × height × width), 0–255; empty when `values` holds them.
    pub pixels: Vec<u8>,
    /// Row-major values used as they are, for data sets of floats (`.npy` float32).
    pub values: Option<Vec<f32>>,
    /// Class label (digit for MNIST, shape for dSprites).
    pub label: u32,
}

impl ImageItem {
    /// An image of bytes 0–255.
    pub fn bytes(pixels: Vec<u8>, label: u32) -> Self {
        Self {
            pixels,
            values: None,
            label,
        }
    }

    /// An image of float values, used as they are.
    pub fn floats(values: Vec<f32>, label: u32) -> Self {
        Self {
            pixels: Vec::new(),
            values: Some(values),
            label,
        }
    }
}

/// Stacks [`ImageItem`]s into an [`ImageBatch`] with pixels scaled to `[0, 1]` (or kept raw).
///
/// One contiguous buffer per batch, one host-to-device copy.
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    shape: ImageShape,
    scale: f32,
}

impl ImageBatcher {
    /// A batcher for images of `shape`, scaling bytes by 1/255.
    pub fn new(shape: ImageShape) -> Self {
        Self {
            shape,
            scale: 1.0 / 255.0,
        }
    }

    /// The same batcher multiplying bytes by `scale` instead (1 keeps raw counts).
    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// The first `n` images of `data` (all of them when there are fewer), in order, as
    /// batches of `size` (the last one smaller when `size` does not divide `n`).
    pub fn batches<'a>(
        &'a self,
        data: &'a crate::ImageDataset,
        n: usize,
        size: usize,
        device: &'a Device,
    ) -> impl Iterator<Item = ImageBatch> + 'a {
        use burn::data::dataset::Dataset;
        let (n, size) = (n.min(data.len()), size.max(1));
        (0..n).step_by(size).map(move |start| {
            let items = (start..(start + size).min(n))
                .map(|i| data.get(i).expect("index below the data set's length"))
                .collect();
            self.batch(items, device)
        })
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let n = items.len();
        let numel = self.shape.numel();
        let mut pixels = Vec::with_capacity(n * numel);
        let mut labels = Vec::with_capacity(n);
        for item in &items {
            match &item.values {
                Some(values) => pixels.extend_from_slice(values),
                None => pixels.extend(item.pixels.iter().map(|&p| p as f32 * self.scale)),
            }
            labels.push(item.label as i64);
        }
        assert_eq!(
            pixels.len(),
            n * numel,
            "every image has the batcher's shape"
        );
        let ImageShape {
            channels,
            height,
            width,
        } = self.shape;
        let images = Tensor::<4>::from_data(
            TensorData::new(pixels, [n, channels, height, width]),
            device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
        ImageBatch { images, labels }
    }
}
