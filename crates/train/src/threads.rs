//! Where the training loop runs on CPU backends.
//!
//! Burn's CPU kernels (gemm, flex's element-wise ops, [`crate::optim::FusedAdam`]) split work
//! over rayon's pool. Called from a thread outside the pool, each parallel op hands its work
//! to the pool's threads and blocks; in between, the pool's idle workers spin while the
//! calling thread runs the serial ops: one thread more than there are cores, contending for
//! them. Running the loop *on* a pool thread makes the loop's thread one of the workers: as
//! many threads as cores, and the caller takes its share of every parallel op.

/// Runs `f` on a thread of rayon's global pool (the caller waits), or directly when already on
/// one. Results and panics propagate to the caller.
pub fn on_compute_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // `rayon::scope` runs its body on a worker of the global pool (injecting it there when
    // called from outside the pool) and returns its result.
    rayon::scope(|_| f())
}
