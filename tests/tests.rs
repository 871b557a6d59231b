//! The one integration-test binary (see ARCHITECTURE.md, "Testing").

// Shared helpers: MNIST location, a lock serialising training runs, tiny configs.
mod util;

// Backend parity: every compiled backend computes the same numbers as flex.
mod backends;
// The CPU kernels (ae-cpu) on and off: the same short training reaches the same losses.
mod cpu;
// Every shipped config parses, validates and fits its data.
mod configs;
// Grid sweeps: plan / point / collect, workers killed and rerun, the Slurm script.
mod grid;
// `evaluate` on run folders: IWAE bounds, KL decomposition, families without a posterior.
mod eval;
// MNIST loading (the committed fixture), and the errors users see for missing/corrupt files.
mod mnist;
// The user's own data: IDX files of any shape, NumPy arrays, colour images, bad files.
mod own_data;
// End-to-end runs through burn-train's Learner: run folder, reproducibility, resume, collapse.
mod runs;
// Property tests: the IDX reader and the config loaders never panic on bad input.
mod props;
// The full-MNIST reference checks (`-- --ignored`, need AE_MNIST_DIR).
mod reference;
// Kill -9 and resume, damaged checkpoints, numerical faults: nothing a user made is lost.
mod resume;
// The β sweep: physics of the study, reproducibility, resume, config errors.
mod sweeps;
// Model zoo: the per-family checklist, count likelihoods, collapse remedies, the conditional VAE.
mod zoo;
