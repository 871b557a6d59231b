//! Which threads run the CPU kernels, and the allocator's freed memory.
//!
//! The CPU kernels (Burn's gemm and flex's element-wise ops, and with the `fast-cpu` feature
//! `ae-cpu`'s fused layers, Bernoulli loss and `FusedAdam`) split work over rayon's global pool. Called from a thread outside the pool,
//! each parallel op hands its work to the pool and blocks, and in between the pool's idle
//! workers spin while the calling thread runs the serial ops: one thread more than there are
//! cores, contending for them. [`join_compute_pool`] makes the calling thread (the one that
//! will run the training loop) worker 0 of the global pool: as many threads as cores, and the
//! loop's thread takes its share of every parallel op. On the reference MLP VAE this took the
//! epoch from 3.38 s to 2.24 s on 2 cores, in runs a noisy machine apart (BENCHMARKS.md, step 2).

/// Builds rayon's global pool with the calling thread as one of its workers (the pool's size
/// is `RAYON_NUM_THREADS`, else the number of cores). Call it first thing in `main`, on the
/// thread that trains; returns `false` (and changes nothing) if the global pool already exists.
pub fn join_compute_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}

/// Makes the global allocator (mimalloc, in every binary of `experiments`) keep freed memory
/// for reuse instead of returning it to the OS, so that each training step's activations do
/// not page-fault in again (see `ae_cpu::keep_freed_memory`; a no-op without the `fast-cpu`
/// feature). Call it first thing in `main`.
pub fn keep_freed_memory() {
    #[cfg(feature = "fast-cpu")]
    ae_cpu::keep_freed_memory();
}

/// What every binary does first: [`keep_freed_memory`], then [`join_compute_pool`] on the
/// calling thread (the one that will train).
pub fn prepare_process() {
    keep_freed_memory();
    join_compute_pool();
}

/// A binary's `main`: [`prepare_process`], then `run`; an error is printed as `error: …` with
/// its whole chain of causes, and the process exits with status 2.
pub fn run_main(run: impl FnOnce() -> anyhow::Result<()>) {
    prepare_process();
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
