use super::{Diagnostic, EpochMetric, Label};
use crate::{EpochTracker, HostBatch};

/// Which codebook-usage figure a [`CodebookMetric`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodebookFigure {
    /// exp(−Σ p̄_k log p̄_k) of the epoch's code frequencies: 1 (one code) to K (uniform).
    Perplexity,
    /// Codes chosen at least once in the epoch.
    CodesUsed,
    /// Codes never chosen in the epoch.
    DeadCodes,
}

impl CodebookFigure {
    fn names(&self) -> (&'static str, &'static str) {
        match self {
            CodebookFigure::Perplexity => ("Perplexity", "perplexity"),
            CodebookFigure::CodesUsed => ("Codes used", "codes_used"),
            CodebookFigure::DeadCodes => ("Dead codes", "dead_codes"),
        }
    }
}

/// Perplexity, codes used or dead codes of code `counts`.
pub fn codebook_figure(counts: &[u64], figure: CodebookFigure) -> f64 {
    let total: u64 = counts.iter().sum();
    let used = counts.iter().filter(|&&c| c > 0).count();
    match figure {
        CodebookFigure::Perplexity => {
            if total == 0 {
                return 0.0;
            }
            let h: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / total as f64;
                    -p * p.ln()
                })
                .sum();
            h.exp()
        }
        CodebookFigure::CodesUsed => used as f64,
        CodebookFigure::DeadCodes => (counts.len() - used) as f64,
    }
}

/// Codebook usage over the whole epoch (VQ models): how often each code was chosen.
#[derive(Clone, Debug)]
pub struct CodebookUsage {
    figure: CodebookFigure,
    counts: Vec<u64>,
}

impl CodebookUsage {
    /// No code chosen yet; reports `figure`.
    pub fn new(figure: CodebookFigure) -> Self {
        Self {
            figure,
            counts: Vec::new(),
        }
    }
}

impl Diagnostic for CodebookUsage {
    fn label(&self) -> Label {
        let (name, column) = self.figure.names();
        Label::new(name, column, 1, self.figure != CodebookFigure::DeadCodes)
    }

    fn update(&mut self, b: &HostBatch) {
        if self.counts.len() != b.codebook_size {
            self.counts = vec![0; b.codebook_size];
        }
        for &c in &b.codes {
            if let Some(slot) = self.counts.get_mut(c as usize) {
                *slot += 1;
            }
        }
    }

    fn value(&self) -> f64 {
        codebook_figure(&self.counts, self.figure)
    }

    /// Zeroes the counts but keeps the codebook size (an epoch with no batch has K dead codes).
    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}

/// Codebook usage over the whole epoch (VQ models).
pub type CodebookMetric = EpochMetric<CodebookUsage>;

impl CodebookMetric {
    /// A codebook metric of `figure`.
    pub fn new(figure: CodebookFigure, tracker: EpochTracker) -> Self {
        Self::of(CodebookUsage::new(figure), tracker)
    }
}
