//! `ae-cpu`: the workspace's hand-written CPU kernels for Burn's `flex` backend.
//!
//! Everything here is a performance path; with it compiled out (or switched off at run time)
//! the workspace computes the same functions with Burn's own ops and Burn's `Adam`, to float
//! rounding. What it holds:
//!
//! - [`linear`]: a dense layer `x·W + b` (optionally then ReLU) as one Burn backend extension
//!   with a hand-written backward, writing bias and `gemm`'s product into one buffer; large
//!   products split over the rayon pool with results that do not depend on the split.
//! - [`conv`]: 2-D convolutions and transposed convolutions (bias, optionally then ReLU) as
//!   Burn backend extensions with hand-written backward passes: unfold/fold and `gemm`
//!   products per image, written straight into NCHW outputs, split over images.
//! - [`bernoulli`]: the per-sample Bernoulli negative log-likelihood from logits as one
//!   vectorised, rayon-parallel pass that also prepares the gradient.
//! - [`adam`]: [`FusedAdam`], Burn's Adam rule in one parallel pass per parameter.
//!
//! **Which tensors.** The layers and the loss apply to `f32` tensors on the `flex` device (with or
//! without autodiff); [`linear::applies`], [`conv::applies`] and [`bernoulli::applies`] say when. `FusedAdam` takes
//! `f32` parameters on any CPU backend (`flex`, `ndarray`) and hands other dtypes to Burn's
//! `Adam`. The callers (`ae_core::linear`, `ae_core::conv`, `ae_core::bernoulli`, `ae_train::optim`) fall back
//! to Burn's ops for everything else (GPUs, layers without bias, other dtypes).
//!
//! **The switch.** At compile time, the default-on cargo feature `fast-cpu` of the `ae`,
//! `experiments`, `ae-train` and `ae-core` packages (off: this crate is not built). At run
//! time, the environment variable `AE_CPU_KERNELS=off` (also `0` or `false`), read once per
//! process by [`enabled`], makes the callers use Burn's ops although the kernels are compiled.
//!
//! **Where `unsafe` lives.** All of the workspace's `unsafe` is in this crate: mimalloc's
//! option call ([`keep_freed_memory`]), the `gemm` calls
//! and the parallel writes of disjoint output blocks in [`linear`] (behind one safe entry point
//! that checks every operand's extent with [`MatRef`] and the output's length first), the
//! `set_len` of buffers written in full by a kernel (`host::filled`), and the calls of
//! AVX2 variants after a run-time CPU-feature check ([`bernoulli`], [`adam`]).
//!
//! This crate depends on Burn, `gemm`, rayon and mimalloc's bindings only, not on other
//! workspace crates.
#![warn(missing_docs)]

pub mod adam;
pub mod bernoulli;
pub mod conv;
mod host;
pub mod linear;

pub use adam::FusedAdam;
pub use linear::{MatRef, ShapeError};

/// mimalloc's option `mi_option_purge_delay` (its position in mimalloc's option enum).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc (the global allocator of the workspace's binaries) keep the memory it has
/// freed for reuse instead of returning it to the OS 10 ms later. A training step frees and
/// allocates the same tens of MB of activations and gradients every few milliseconds; returned
/// to the OS, every page of them was faulted in and zeroed again by the kernel on its next
/// use. On the conv β-VAE that took 5–25 % of an epoch, varying with the host's load
/// (BENCHMARKS.md). The resident memory stays at its peak instead of shrinking between steps;
/// the peak is unchanged. Harmless when mimalloc is linked but not the global allocator.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an option value (−1: never purge), which mimalloc
    // reads when it next considers purging; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Whether the kernels are switched on: `false` when the environment variable
/// `AE_CPU_KERNELS` is `off`, `0` or `false` (read on the first call; later changes to the
/// variable are ignored, so one process never mixes the two paths). Any other value but
/// `on`, `1` or `true` (a typo such as `of`) leaves them on and says so once on stderr.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| switch(std::env::var("AE_CPU_KERNELS").ok().as_deref()))
}

/// The kernels' switch for a value of `AE_CPU_KERNELS` (None: unset).
fn switch(value: Option<&str>) -> bool {
    match value {
        None | Some("on" | "1" | "true") => true,
        Some("off" | "0" | "false") => false,
        Some(other) => {
            eprintln!(
                "warning: AE_CPU_KERNELS={other:?} is not off/0/false or on/1/true; the CPU \
                 kernels stay on"
            );
            true
        }
    }
}

#[cfg(test)]
mod switch_tests {
    #[test]
    fn only_off_0_and_false_switch_the_kernels_off() {
        for (v, on) in [
            (None, true),
            (Some("off"), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("on"), true),
            (Some("of"), true),
        ] {
            assert_eq!(super::switch(v), on, "{v:?}");
        }
    }
}
