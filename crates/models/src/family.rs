//! What a model family declares about itself, and the macro that registers families.
//!
//! Each family file implements [`Family`] for its config: the checks on its hyper-parameters
//! and the [`Capabilities`] the rest of the workspace asks for (a prior to sample from, a KL
//! weighted by β, a codebook, classes, a likelihood). Nothing outside the family's file
//! infers these from which variant a model is. [`families!`](crate::families) writes the
//! [`ModelConfig`](crate::ModelConfig) and [`Model`](crate::Model) enums and every `match`
//! over them from one list, so registering a family is one line.
use ae_core::ImageShape;

/// What a model family has, as the training loop, the diagnostics and the evaluation ask it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capabilities {
    /// Samples can be decoded from a prior p(z) ([`ae_core::Autoencoder::sample`] is `Some`).
    pub prior: bool,
    /// The objective has a KL(q(z|x) ‖ p(z)) term weighted by this β: the KL, per-dimension
    /// KL, collapse diagnostics and β sweeps apply. `None`: no KL term.
    pub beta: Option<f64>,
    /// The latent is discrete, with this many codes (codebook diagnostics apply).
    pub codebook: Option<usize>,
    /// A conditional model's number of classes (the data must have as many).
    pub classes: Option<usize>,
    /// Why p(x) = ∫ p(x|z) p(z) dz with an amortised q(z|x) is not defined for this family
    /// (IWAE bounds, KL and its decompositions then do not apply); `None` where it is.
    pub no_likelihood: Option<&'static str>,
}

impl Capabilities {
    /// A Gaussian-latent VAE: a prior to sample from, a KL weighted by `beta`, a likelihood
    /// bound; no codebook, no classes.
    pub fn variational(beta: f64) -> Self {
        Self {
            prior: true,
            beta: Some(beta),
            codebook: None,
            classes: None,
            no_likelihood: None,
        }
    }

    /// A deterministic code: no prior, no KL, no codebook, no classes, and `why` p(x) is not
    /// defined.
    pub fn deterministic(why: &'static str) -> Self {
        Self {
            prior: false,
            beta: None,
            codebook: None,
            classes: None,
            no_likelihood: Some(why),
        }
    }
}

/// Checks a KL weight: finite and ≥ 0, else a message naming `model.beta`.
pub fn check_beta(beta: f64) -> Result<(), String> {
    if beta >= 0.0 && beta.is_finite() {
        Ok(())
    } else {
        Err(format!(
            "model.beta must be a finite number ≥ 0, got {beta}"
        ))
    }
}

/// A model family's config: its checks and its [`Capabilities`]. Every method is required,
/// so a new family states each answer instead of inheriting one silently.
pub trait Family {
    /// Checks hyper-parameters, returning a message that names the bad key.
    fn validate(&self) -> Result<(), String>;

    /// Checks that the model fits images of `shape`, naming the key that does not.
    fn check_shape(&self, shape: ImageShape) -> Result<(), String>;

    /// Size of the latent code per position (for a VQ-VAE: the code vectors' dimension).
    fn latent_dim(&self) -> usize;

    /// What this family has.
    fn capabilities(&self) -> Capabilities;

    /// Sets β, for families whose [`Capabilities::beta`] is `Some`; an error otherwise.
    fn set_beta(&mut self, beta: f64) -> Result<(), String>;

    /// The prior variances of the latent dimensions (`None`: no Gaussian prior).
    fn prior_variances(&self) -> Option<Vec<f64>>;

    /// How many parameters the model for images of `shape` has, counted from the config
    /// without building it (so that a config too large for the machine is refused before
    /// anything is allocated).
    fn parameter_count(&self, shape: ImageShape) -> u128;
}

/// Registers the model families: one line each, `module::Variant(Config, Model)` with its
/// doc comment. Declares each family's module (`crates/models/src/module.rs`), and writes
/// [`ModelConfig`](crate::ModelConfig) (the config's tagged union: `family = "module"`),
/// [`Model`](crate::Model) (the module enum the training loop drives), `ModelConfig::init`,
/// `ModelConfig::family`, the dispatch to [`Family`], and `Autoencoder for Model`.
#[macro_export]
macro_rules! families {
    ($($(#[$doc:meta])* $module:ident :: $variant:ident($config:ident, $model:ident),)+) => {
        $(pub mod $module;)+

        /// Any model family, as written in an experiment config (`family = "vae"`, ...).
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "family", rename_all = "snake_case")]
        pub enum ModelConfig {
            $($(#[$doc])* $variant($module::$config),)+
        }

        /// Any model family, as a module.
        #[derive(burn::module::Module, Debug)]
        pub enum Model {
            $($(#[$doc])* $variant($module::$model),)+
        }

        impl ModelConfig {
            /// Builds the model for images of `shape` on `device`.
            pub fn init(&self, shape: ae_core::ImageShape, device: &burn::prelude::Device) -> Model {
                match self {
                    $(ModelConfig::$variant(c) => Model::$variant(c.init(shape, device)),)+
                }
            }

            /// The family's name as written in configs (`"vae"`, `"vq_vae"`, ...).
            pub fn family(&self) -> &'static str {
                match self {
                    $(ModelConfig::$variant(_) => stringify!($module),)+
                }
            }

            /// The names of all registered families.
            pub fn families() -> &'static [&'static str] {
                &[$(stringify!($module),)+]
            }

            /// The config as its [`Family`].
            pub fn as_family(&self) -> &dyn Family {
                match self {
                    $(ModelConfig::$variant(c) => c,)+
                }
            }

            /// The config as its [`Family`], mutably.
            pub fn as_family_mut(&mut self) -> &mut dyn Family {
                match self {
                    $(ModelConfig::$variant(c) => c,)+
                }
            }
        }

        impl ae_core::Autoencoder for Model {
            fn forward(&self, batch: ae_core::ImageBatch) -> ae_core::AeOutput {
                match self { $(Model::$variant(m) => m.forward(batch),)+ }
            }

            fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
                match self { $(Model::$variant(m) => m.encode(images, labels),)+ }
            }

            fn decode(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
                match self { $(Model::$variant(m) => m.decode(z, labels),)+ }
            }

            fn reconstruct(&self, batch: ae_core::ImageBatch) -> Tensor<4> {
                match self { $(Model::$variant(m) => m.reconstruct(batch),)+ }
            }

            fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
                match self { $(Model::$variant(m) => m.sample(n, device),)+ }
            }

            fn num_classes(&self) -> Option<usize> {
                match self { $(Model::$variant(m) => m.num_classes(),)+ }
            }

            fn latent_dim(&self) -> usize {
                match self { $(Model::$variant(m) => m.latent_dim(),)+ }
            }

            fn variational_posterior(
                &self,
                images: Tensor<4>,
                labels: Tensor<1, Int>,
            ) -> Option<ae_core::DiagonalGaussian> {
                match self { $(Model::$variant(m) => m.variational_posterior(images, labels),)+ }
            }

            fn log_prior(&self, z: Tensor<2>) -> Tensor<1> {
                match self { $(Model::$variant(m) => m.log_prior(z),)+ }
            }

            fn log_likelihood(
                &self,
                images: Tensor<4>,
                z: Tensor<2>,
                labels: Tensor<1, Int>,
            ) -> Option<Tensor<1>> {
                match self { $(Model::$variant(m) => m.log_likelihood(images, z, labels),)+ }
            }
        }
    };
}
