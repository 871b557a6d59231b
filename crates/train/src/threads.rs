//! Which threads run the CPU kernels.
//!
//! Burn's CPU kernels (gemm, flex's element-wise ops, [`crate::optim::FusedAdam`], the fused
//! Bernoulli loss) split work over rayon's global pool. Called from a thread outside the pool,
//! each parallel op hands its work to the pool and blocks, and in between the pool's idle
//! workers spin while the calling thread runs the serial ops: one thread more than there are
//! cores, contending for them. [`join_compute_pool`] makes the calling thread (the one that
//! will run the training loop) worker 0 of the global pool: as many threads as cores, and the
//! loop's thread takes its share of every parallel op. On the reference MLP VAE this took the
//! epoch from 3.38 s to 2.24 s on 2 cores, in runs a noisy machine apart (BENCHMARKS.md, step 2).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Builds rayon's global pool with the calling thread as one of its workers (the pool's size
/// is `RAYON_NUM_THREADS`, else the number of cores). Call it first thing in `main`, on the
/// thread that trains; returns `false` (and changes nothing) if the global pool already exists.
pub fn join_compute_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}

/// While alive, keeps the global pool's other workers awake between parallel ops.
///
/// Rayon parks an idle worker after a few dozen `sched_yield`s, and the next parallel op must
/// wake it through the kernel; on a virtual machine, whose idle vCPU halts, that can take
/// long. Between the many short parallel ops of a training step (a dozen split products, the
/// loss, Adam's updates) the other core then often slept while the training thread ran a
/// share of work alone. While a `HotPool` lives, every other worker runs a job that keeps
/// looking for work (`rayon::yield_now`), yielding the CPU to other threads of the machine
/// (the data loader's) between tries. It spins only when the calling thread is itself a
/// worker of the global pool (see [`join_compute_pool`]) and the pool has more than one
/// thread, so a sweep that runs one single-threaded process per core is left alone.
pub struct HotPool {
    active: Arc<AtomicBool>,
}

impl HotPool {
    /// Starts keeping the other workers awake until the value is dropped.
    pub fn new() -> Self {
        let active = Arc::new(AtomicBool::new(true));
        if let Some(me) = rayon::current_thread_index()
            && rayon::current_num_threads() > 1
        {
            let flag = active.clone();
            rayon::spawn_broadcast(move |ctx| {
                if ctx.index() != me {
                    keep_looking_for_work(&flag);
                }
            });
        }
        Self { active }
    }
}

/// Runs the pool's pending jobs as they come until `active` is cleared: a short spin between
/// tries, then `sched_yield` so that other runnable threads get the core.
fn keep_looking_for_work(active: &AtomicBool) {
    SPINNING.fetch_add(1, Ordering::AcqRel);
    let mut idle = 0u32;
    while active.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            idle = 0;
        } else if idle < 64 {
            idle += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    SPINNING.fetch_sub(1, Ordering::AcqRel);
}

/// How many workers are running [`keep_looking_for_work`] now (for tests).
static SPINNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Default for HotPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HotPool {
    fn drop(&mut self) {
        self.active.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::time::{Duration, Instant};

    fn spinning_becomes(n: usize) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if SPINNING.load(Ordering::Acquire) == n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Inside a pool, a `HotPool` keeps the other worker looking for work, parallel ops still
    /// run (and are shared with it), and dropping the guard ends the spinning; outside a pool
    /// it does nothing.
    #[test]
    fn hot_pool_spins_while_alive_and_stops_when_dropped() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let hot = HotPool::new();
            assert!(spinning_becomes(1), "the other worker spins");
            let sum: u64 = (0..1_000_000u64).into_par_iter().map(|i| i % 7).sum();
            assert_eq!(sum, (0..1_000_000u64).map(|i| i % 7).sum::<u64>());
            let threads: std::collections::HashSet<_> = (0..64)
                .into_par_iter()
                .map(|_| {
                    std::thread::sleep(Duration::from_millis(2));
                    rayon::current_thread_index()
                })
                .collect();
            assert_eq!(threads.len(), 2, "both workers took jobs");
            drop(hot);
            assert!(spinning_becomes(0), "dropping the guard stops the spinner");
        });
        let _outside = HotPool::new();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            SPINNING.load(Ordering::Acquire),
            0,
            "no spinning outside a pool"
        );
    }
}
