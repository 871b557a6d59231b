use burn::prelude::*;

/// A batch of images with their integer labels (digit, shape, ...).
#[derive(Clone, Debug)]
pub struct ImageBatch {
    /// Pixels in `[0, 1]`, shape `[batch, channels, height, width]`.
    pub images: Tensor<4>,
    /// One label per image, shape `[batch]` (used by conditional models and plots).
    pub labels: Tensor<1, Int>,
}

impl ImageBatch {
    /// Number of images in the batch.
    pub fn len(&self) -> usize {
        self.images.dims()[0]
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images flattened to `[batch, channels * height * width]`.
    pub fn flat_images(&self) -> Tensor<2> {
        self.images.clone().flatten(1, 3)
    }
}

/// Shape of one image: channels × height × width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    /// Number of channels (1 for MNIST and dSprites).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// A shape from its three sizes.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// Pixels per image (channels × height × width).
    pub const fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }
}
