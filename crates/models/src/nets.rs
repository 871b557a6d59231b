//! Encoder and decoder networks shared by the model families.
//!
//! - MLP: `pixels → hidden… → out` with ReLU (the reference MNIST VAE is `784-400-20`).
//! - Conv: stride-2 4×4 convolutions halving the image per layer, then a dense layer
//!   (28×28 MNIST: channels `[32, 64]` → 7×7; 64×64 dSprites: `[32, 32, 64, 64]` → 4×4,
//!   the Burgess et al. 2018 β-VAE architecture). Decoders mirror encoders with transposed
//!   convolutions.
use ae_core::ImageShape;
use ae_core::conv::{conv_transpose2d, conv_transpose2d_relu, conv2d_relu};
use ae_core::linear::{linear, linear_relu};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Which network family builds the encoder and (mirrored) decoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Architecture {
    /// Fully connected layers with ReLU.
    Mlp {
        /// Hidden layer widths, input side first (the decoder uses them reversed).
        hidden: Vec<usize>,
    },
    /// Stride-2 convolutions followed by a dense layer.
    Conv {
        /// Output channels of each stride-2 conv layer; each halves height and width.
        channels: Vec<usize>,
        /// Width of the dense layer between the conv stack and the latent.
        hidden: usize,
    },
}

impl Architecture {
    /// The reference MNIST MLP (one hidden layer of 400).
    pub fn mlp_400() -> Self {
        Self::Mlp { hidden: vec![400] }
    }

    /// Conv stack for 28×28 images (28 → 14 → 7).
    pub fn conv_28() -> Self {
        Self::Conv {
            channels: vec![32, 64],
            hidden: 256,
        }
    }

    /// Conv stack for 64×64 images (64 → 32 → 16 → 8 → 4), Burgess et al. 2018.
    pub fn conv_64() -> Self {
        Self::Conv {
            channels: vec![32, 32, 64, 64],
            hidden: 256,
        }
    }

    /// Checks the architecture against the image shape.
    pub fn validate(&self, shape: Option<ImageShape>) -> Result<(), String> {
        match self {
            Architecture::Mlp { hidden } if hidden.contains(&0) => {
                Err("model.architecture.hidden: widths must be positive".into())
            }
            Architecture::Conv { channels, hidden } => {
                if channels.is_empty() || channels.contains(&0) || *hidden == 0 {
                    return Err(
                        "model.architecture: conv needs non-empty positive `channels` \
                                and a positive `hidden`"
                            .into(),
                    );
                }
                if let Some(s) = shape {
                    let f = 1 << channels.len();
                    if !s.height.is_multiple_of(f) || !s.width.is_multiple_of(f) {
                        return Err(format!(
                            "model.architecture.channels: {} stride-2 layers need height and \
                             width divisible by {f}, the images are {}×{}",
                            channels.len(),
                            s.height,
                            s.width
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Builds an encoder producing `out` features per image.
    pub fn encoder(&self, shape: ImageShape, out: usize, device: &Device) -> Encoder {
        self.conditional_encoder(shape, 0, out, device)
    }

    /// Builds an encoder that also reads `extra` conditioning features (a one-hot class):
    /// concatenated to the pixels (MLP) or to the flattened conv features (conv).
    pub fn conditional_encoder(
        &self,
        shape: ImageShape,
        extra: usize,
        out: usize,
        device: &Device,
    ) -> Encoder {
        match self {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut width = shape.numel() + extra;
                for &h in hidden {
                    layers.push(LinearConfig::new(width, h).init(device));
                    width = h;
                }
                Encoder::Mlp(MlpEncoder {
                    layers,
                    head: LinearConfig::new(width, out).init(device),
                })
            }
            Architecture::Conv { channels, hidden } => {
                let convs = downsampling_convs(shape.channels, channels, device);
                let c_in = *channels.last().expect("validated: non-empty");
                let f = 1 << channels.len();
                let flat = c_in * (shape.height / f) * (shape.width / f) + extra;
                Encoder::Conv(ConvEncoder {
                    convs,
                    fc: LinearConfig::new(flat, *hidden).init(device),
                    head: LinearConfig::new(*hidden, out).init(device),
                })
            }
        }
    }

    /// Builds the mirrored decoder from `latent` features to one parameter per pixel.
    pub fn decoder(&self, shape: ImageShape, latent: usize, device: &Device) -> Decoder {
        match self {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut width = latent;
                for &h in hidden.iter().rev() {
                    layers.push(LinearConfig::new(width, h).init(device));
                    width = h;
                }
                Decoder::Mlp(MlpDecoder {
                    layers,
                    head: LinearConfig::new(width, shape.numel()).init(device),
                    shape: [shape.channels, shape.height, shape.width],
                })
            }
            Architecture::Conv { channels, hidden } => {
                let f = 1 << channels.len();
                let (h0, w0) = (shape.height / f, shape.width / f);
                let c0 = *channels.last().expect("validated: non-empty");
                let deconvs = upsampling_deconvs(channels, shape.channels, device);
                Decoder::Conv(ConvDecoder {
                    fc1: LinearConfig::new(latent, *hidden).init(device),
                    fc2: LinearConfig::new(*hidden, c0 * h0 * w0).init(device),
                    deconvs,
                    start: [c0, h0, w0],
                })
            }
        }
    }
}

/// Parameters of a dense layer `a → b` with bias, in u128 so that no config overflows it.
pub fn dense_parameters(a: usize, b: usize) -> u128 {
    (a as u128 + 1) * b as u128
}

/// Parameters of [`downsampling_convs`] (or, mirrored, [`upsampling_deconvs`]): 4×4 kernels
/// with biases from `in_channels` through `channels`.
pub fn conv_stack_parameters(in_channels: usize, channels: &[usize]) -> u128 {
    let mut c_in = in_channels as u128;
    let mut total = 0;
    for &c in channels {
        total += (c_in * 16 + 1) * c as u128;
        c_in = c as u128;
    }
    total
}

/// Parameters of [`upsampling_deconvs`]: the conv stack mirrored, from the last of
/// `channels` back through the others to `out_channels`.
pub fn deconv_stack_parameters(channels: &[usize], out_channels: usize) -> u128 {
    let mut mirrored: Vec<usize> = channels.iter().rev().skip(1).copied().collect();
    mirrored.push(out_channels);
    conv_stack_parameters(channels.last().copied().unwrap_or(0), &mirrored)
}

impl Architecture {
    /// Parameters of [`Architecture::conditional_encoder`] (`extra` conditioning features,
    /// `out` outputs), counted without building it.
    pub fn encoder_parameters(&self, shape: ImageShape, extra: usize, out: usize) -> u128 {
        match self {
            Architecture::Mlp { hidden } => {
                let mut width = shape.numel() + extra;
                let mut total = 0;
                for &h in hidden {
                    total += dense_parameters(width, h);
                    width = h;
                }
                total + dense_parameters(width, out)
            }
            Architecture::Conv { channels, hidden } => {
                let f = 1usize << channels.len().min(usize::BITS as usize - 1);
                let last = channels.last().copied().unwrap_or(0);
                let flat = last * (shape.height / f) * (shape.width / f) + extra;
                conv_stack_parameters(shape.channels, channels)
                    + dense_parameters(flat, *hidden)
                    + dense_parameters(*hidden, out)
            }
        }
    }

    /// Parameters of [`Architecture::decoder`], counted without building it.
    pub fn decoder_parameters(&self, shape: ImageShape, latent: usize) -> u128 {
        match self {
            Architecture::Mlp { hidden } => {
                let mut width = latent;
                let mut total = 0;
                for &h in hidden.iter().rev() {
                    total += dense_parameters(width, h);
                    width = h;
                }
                total + dense_parameters(width, shape.numel())
            }
            Architecture::Conv { channels, hidden } => {
                let f = 1usize << channels.len().min(usize::BITS as usize - 1);
                let last = channels.last().copied().unwrap_or(0);
                let flat = last * (shape.height / f) * (shape.width / f);
                dense_parameters(latent, *hidden)
                    + dense_parameters(*hidden, flat)
                    + deconv_stack_parameters(channels, shape.channels)
            }
        }
    }
}

/// Stride-2 4×4 convolutions (padding 1) from `in_channels` through `channels`; each halves
/// height and width.
pub fn downsampling_convs(in_channels: usize, channels: &[usize], device: &Device) -> Vec<Conv2d> {
    let mut convs = Vec::with_capacity(channels.len());
    let mut c_in = in_channels;
    for &c in channels {
        convs.push(
            Conv2dConfig::new([c_in, c], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        );
        c_in = c;
    }
    convs
}

/// The mirror of [`downsampling_convs`]: stride-2 4×4 transposed convolutions from the last of
/// `channels` back through the others to `out_channels`; each doubles height and width.
pub fn upsampling_deconvs(
    channels: &[usize],
    out_channels: usize,
    device: &Device,
) -> Vec<ConvTranspose2d> {
    let outs = channels
        .iter()
        .rev()
        .skip(1)
        .copied()
        .chain(std::iter::once(out_channels));
    let mut c_in = *channels.last().expect("at least one conv layer");
    outs.map(|c| {
        let deconv = ConvTranspose2dConfig::new([c_in, c], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .init(device);
        c_in = c;
        deconv
    })
    .collect()
}

/// An encoder network: images to a feature vector.
#[derive(Module, Debug)]
pub enum Encoder {
    /// Fully connected.
    Mlp(MlpEncoder),
    /// Convolutional.
    Conv(ConvEncoder),
}

impl Encoder {
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - returns `[batch, out]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_conditional(images, None)
    }

    /// Forward with conditioning features `cond` (`[batch, extra]`) when the encoder was
    /// built with [`Architecture::conditional_encoder`].
    pub fn forward_conditional(&self, images: Tensor<4>, cond: Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Encoder::Mlp(m) => m.forward(images, cond),
            Encoder::Conv(m) => m.forward(images, cond),
        }
    }
}

/// A decoder network: latent codes to one distribution parameter per pixel.
#[derive(Module, Debug)]
pub enum Decoder {
    /// Fully connected.
    Mlp(MlpDecoder),
    /// Transposed convolutions.
    Conv(ConvDecoder),
}

impl Decoder {
    /// # Shapes
    /// - `z`: `[batch, latent]`
    /// - returns `[batch, channels, height, width]` (logits or means)
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        match self {
            Decoder::Mlp(m) => m.forward(z),
            Decoder::Conv(m) => m.forward(z),
        }
    }
}

/// MLP encoder.
#[derive(Module, Debug)]
pub struct MlpEncoder {
    layers: Vec<Linear>,
    head: Linear,
}

fn with_condition(h: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
    match cond {
        Some(c) => Tensor::cat(vec![h, c], 1),
        None => h,
    }
}

impl MlpEncoder {
    fn forward(&self, images: Tensor<4>, cond: Option<Tensor<2>>) -> Tensor<2> {
        let mut h = with_condition(images.flatten::<2>(1, 3), cond); // [batch, pixels + extra]
        for layer in &self.layers {
            h = linear_relu(layer, h);
        }
        linear(&self.head, h)
    }
}

/// MLP decoder.
#[derive(Module, Debug)]
pub struct MlpDecoder {
    layers: Vec<Linear>,
    head: Linear,
    shape: [usize; 3],
}

impl MlpDecoder {
    fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let mut h = z;
        for layer in &self.layers {
            h = linear_relu(layer, h);
        }
        let [b, _] = h.dims();
        let [c, hh, w] = self.shape;
        linear(&self.head, h).reshape([b, c, hh, w])
    }
}

/// Conv encoder.
#[derive(Module, Debug)]
pub struct ConvEncoder {
    convs: Vec<Conv2d>,
    fc: Linear,
    head: Linear,
}

impl ConvEncoder {
    fn forward(&self, images: Tensor<4>, cond: Option<Tensor<2>>) -> Tensor<2> {
        let mut h = images;
        for conv in &self.convs {
            h = conv2d_relu(conv, h); // halves height and width
        }
        let h = with_condition(h.flatten::<2>(1, 3), cond);
        linear(&self.head, linear_relu(&self.fc, h))
    }
}

/// Conv decoder.
#[derive(Module, Debug)]
pub struct ConvDecoder {
    fc1: Linear,
    fc2: Linear,
    deconvs: Vec<ConvTranspose2d>,
    start: [usize; 3],
}

impl ConvDecoder {
    fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let [c, h, w] = self.start;
        let mut x = linear_relu(&self.fc2, linear_relu(&self.fc1, z)).reshape([b, c, h, w]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            // Each doubles height and width.
            x = if i < last {
                conv_transpose2d_relu(deconv, x)
            } else {
                conv_transpose2d(deconv, x)
            };
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(arch: Architecture, shape: ImageShape) {
        let d = Device::default();
        let enc = arch.encoder(shape, 6, &d);
        let dec = arch.decoder(shape, 3, &d);
        let x = Tensor::<4>::zeros([2, shape.channels, shape.height, shape.width], &d);
        assert_eq!(enc.forward(x).dims(), [2, 6]);
        let z = Tensor::<2>::zeros([2, 3], &d);
        assert_eq!(
            dec.forward(z).dims(),
            [2, shape.channels, shape.height, shape.width]
        );
    }

    #[test]
    fn mlp_maps_images_to_features_and_back() {
        shapes(Architecture::mlp_400(), ImageShape::new(1, 28, 28));
    }

    #[test]
    fn conv_28_keeps_mnist_shapes() {
        shapes(Architecture::conv_28(), ImageShape::new(1, 28, 28));
    }

    #[test]
    fn conv_64_keeps_dsprites_shapes() {
        shapes(Architecture::conv_64(), ImageShape::new(1, 64, 64));
    }

    #[test]
    fn conv_rejects_indivisible_images() {
        let err = Architecture::conv_64().validate(Some(ImageShape::new(1, 28, 28)));
        assert!(err.unwrap_err().contains("divisible by 16"));
    }
}
