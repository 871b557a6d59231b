//! The results tables and their files: a run's epoch log (`metrics.csv`) and a sweep's
//! results table (`results.csv`, `results.md`), with the readers that fill them.
//!
//! [`crate::sweep`] fills a [`ResultRow`] per run from its run folder, and [`crate::plots`]
//! draws any slice of [`ResultRow`]s; neither needs the other.
//!
//! CSV goes through the `csv` crate. Numbers are formatted here (Rust's shortest round-trip
//! `Display` of `f64`, empty for a missing value) and handed to the writer as strings, so the
//! files are the ones the hand-written writer produced, byte for byte.
use ae_metrics::{EpochRow, SplitKind};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;

/// The fixed columns of `metrics.csv`, after `epoch,split`.
const COLUMNS: [&str; 7] = [
    "loss",
    "recon",
    "kl",
    "beta_loss",
    "active_units",
    "collapsed_dims",
    "posterior_collapse",
];

/// Extra columns of VQ models (in `metrics.csv` and `summary.json`).
pub const CODEBOOK_COLUMNS: [&str; 3] = ["perplexity", "codes_used", "dead_codes"];

/// Renders records as CSV text: `\n` line ends, quotes only where a field needs them, rows
/// of any length (a results row carries its own number of `kl_dim_*` cells).
pub(crate) fn csv_text(records: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for record in records {
        w.write_record(&record)
            .expect("writing CSV into memory cannot fail");
    }
    let bytes = w.into_inner().expect("writing CSV into memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// A cell: the number, or empty when there is none.
fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// Renders the epoch log as `metrics.csv`.
pub fn metrics_csv(
    rows: &BTreeMap<(usize, SplitKind), EpochRow>,
    latent: usize,
    codebook: bool,
) -> String {
    let columns: Vec<&str> = COLUMNS
        .iter()
        .chain(if codebook { &CODEBOOK_COLUMNS[..] } else { &[] })
        .copied()
        .collect();
    // A VQ model has no KL, so no per-dimension KL columns.
    let latent = if codebook { 0 } else { latent };
    let header = ["epoch", "split"]
        .iter()
        .chain(&columns)
        .map(|c| c.to_string())
        .chain((0..latent).map(|j| format!("kl_dim_{j}")))
        .collect();
    let body = rows.iter().map(|((epoch, split), row)| {
        [epoch.to_string(), split.as_str().to_string()]
            .into_iter()
            .chain(columns.iter().map(|c| cell(row.values.get(*c).copied())))
            .chain((0..latent).map(|j| cell(row.kl_per_dim.get(j).copied())))
            .collect()
    });
    csv_text(std::iter::once(header).chain(body))
}

/// Parses `metrics.csv` back (rows up to and including `max_epoch`), for resumed runs. Rows
/// that are not an epoch of a known split are skipped, as are cells that are not numbers.
pub fn parse_metrics_csv(text: &str, max_epoch: usize) -> BTreeMap<(usize, SplitKind), EpochRow> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().cloned().unwrap_or_default();
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let Ok(f) = record else { continue };
        let (Some(epoch), Some(split)) = (f.get(0).and_then(|e| e.parse::<usize>().ok()), f.get(1))
        else {
            continue;
        };
        let split = match split {
            "train" => SplitKind::Train,
            "valid" => SplitKind::Valid,
            _ => continue,
        };
        if epoch > max_epoch {
            continue;
        }
        let mut row = EpochRow {
            epoch,
            ..Default::default()
        };
        for (name, v) in header.iter().zip(&f).skip(2) {
            let Ok(v) = v.parse::<f64>() else { continue };
            if name.starts_with("kl_dim_") {
                row.kl_per_dim.push(v);
            } else {
                row.values.insert(name.to_string(), v);
            }
        }
        rows.insert((epoch, split), row);
    }
    rows
}

/// One row of `results.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    /// β.
    pub beta: f64,
    /// Seed, or None for the mean over seeds.
    pub seed: Option<u64>,
    /// Rate: validation KL, nats per sample.
    pub rate: f64,
    /// Distortion: validation reconstruction NLL, nats per sample.
    pub distortion: f64,
    /// Active units.
    pub active_units: f64,
    /// Collapsed dimensions.
    pub collapsed_dims: f64,
    /// Collapse alarm (fraction of seeds for mean rows).
    pub posterior_collapse: f64,
    /// Validation KL per latent dimension.
    pub kl_per_dim: Vec<f64>,
    /// Mutual Information Gap (dSprites only).
    pub mig: Option<f64>,
    /// FactorVAE score (dSprites only).
    pub factor_vae: Option<f64>,
    /// SAP score (dSprites only).
    pub sap: Option<f64>,
    /// DCI disentanglement (dSprites only).
    pub dci: Option<f64>,
    /// Index-code mutual information I(x; z), nats.
    pub mutual_information: Option<f64>,
    /// Total correlation TC(z), nats.
    pub total_correlation: Option<f64>,
    /// Seed spread (standard deviation over seeds) of MIG and FactorVAE score, for mean rows.
    pub spread: Option<(f64, f64)>,
}

impl ResultRow {
    /// ELBO = −(rate + distortion).
    pub fn elbo(&self) -> f64 {
        -(self.rate + self.distortion)
    }

    /// The values of [`FIGURE_COLUMNS`], in order (None: not measured for this run).
    pub fn figures(&self) -> [Option<f64>; 12] {
        [
            Some(self.rate),
            Some(self.distortion),
            Some(self.elbo()),
            Some(self.active_units),
            Some(self.collapsed_dims),
            Some(self.posterior_collapse),
            self.mig,
            self.factor_vae,
            self.sap,
            self.dci,
            self.mutual_information,
            self.total_correlation,
        ]
    }

    /// The row of the finished run in `dir` (its `summary.json` and, when it was evaluated,
    /// `eval.json`), trained with `beta` and `seed`.
    pub fn read_run(dir: &Path, beta: f64, seed: u64) -> anyhow::Result<Self> {
        let path = dir.join("summary.json");
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("missing {}", path.display()))?,
        )?;
        // Without an evaluation (a grid sweep with `evaluate = []`) its figures are empty.
        let eval_path = dir.join("eval.json");
        let e: serde_json::Value = match std::fs::read_to_string(&eval_path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("malformed {}", eval_path.display()))?,
            Err(_) => serde_json::Value::Null,
        };
        let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
        Ok(Self {
            beta,
            seed: Some(seed),
            rate: f("kl"),
            distortion: f("recon"),
            active_units: f("active_units"),
            collapsed_dims: f("collapsed_dims"),
            posterior_collapse: if s["posterior_collapse"].as_bool() == Some(true) {
                1.0
            } else {
                0.0
            },
            kl_per_dim: s["kl_per_dim"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
                .unwrap_or_default(),
            mig: e["disentanglement"]["mig"].as_f64(),
            factor_vae: e["disentanglement"]["factor_vae"].as_f64(),
            sap: e["disentanglement"]["sap"].as_f64(),
            dci: e["disentanglement"]["dci"]["disentanglement"].as_f64(),
            mutual_information: e["decomposition"]["mutual_information"].as_f64(),
            total_correlation: e["decomposition"]["total_correlation"].as_f64(),
            spread: None,
        })
    }
}

fn mean_opt(v: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = v.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
    v.iter()
        .all(|x| x.is_finite())
        .then(|| v.iter().sum::<f64>() / v.len().max(1) as f64)
}

fn std_opt(v: &[Option<f64>]) -> f64 {
    let Some(m) = mean_opt(v) else {
        return f64::NAN;
    };
    let n = v.len() as f64;
    (v.iter().map(|x| (x.unwrap_or(m) - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt()
}

/// Mean rows per β (only when there are several seeds).
pub fn mean_rows(rows: &[ResultRow]) -> Vec<ResultRow> {
    let mut betas: Vec<f64> = rows.iter().map(|r| r.beta).collect();
    betas.dedup();
    betas
        .into_iter()
        .map(|beta| {
            let g: Vec<&ResultRow> = rows.iter().filter(|r| r.beta == beta).collect();
            let n = g.len() as f64;
            let m = |f: &dyn Fn(&ResultRow) -> f64| g.iter().map(|r| f(r)).sum::<f64>() / n;
            let dims = g[0].kl_per_dim.len();
            ResultRow {
                beta,
                seed: None,
                rate: m(&|r| r.rate),
                distortion: m(&|r| r.distortion),
                active_units: m(&|r| r.active_units),
                collapsed_dims: m(&|r| r.collapsed_dims),
                posterior_collapse: m(&|r| r.posterior_collapse),
                kl_per_dim: (0..dims)
                    .map(|j| m(&|r| r.kl_per_dim.get(j).copied().unwrap_or(0.0)))
                    .collect(),
                mig: mean_opt(&g.iter().map(|r| r.mig).collect::<Vec<_>>()),
                factor_vae: mean_opt(&g.iter().map(|r| r.factor_vae).collect::<Vec<_>>()),
                sap: mean_opt(&g.iter().map(|r| r.sap).collect::<Vec<_>>()),
                dci: mean_opt(&g.iter().map(|r| r.dci).collect::<Vec<_>>()),
                mutual_information: mean_opt(
                    &g.iter().map(|r| r.mutual_information).collect::<Vec<_>>(),
                ),
                total_correlation: mean_opt(
                    &g.iter().map(|r| r.total_correlation).collect::<Vec<_>>(),
                ),
                spread: (g.len() > 1).then(|| {
                    (
                        std_opt(&g.iter().map(|r| r.mig).collect::<Vec<_>>()),
                        std_opt(&g.iter().map(|r| r.factor_vae).collect::<Vec<_>>()),
                    )
                }),
            }
        })
        .collect()
}

/// The figure columns of a results table, after its key columns (`beta, seed` for the β
/// sweep, the grid's keys for a grid sweep) and before `kl_dim_*`.
pub const FIGURE_COLUMNS: [&str; 12] = [
    "rate",
    "distortion",
    "elbo",
    "active_units",
    "collapsed_dims",
    "posterior_collapse",
    "mig",
    "factor_vae",
    "sap",
    "dci",
    "mutual_information",
    "total_correlation",
];

/// `results.csv`: a row per run, then mean rows (seed `mean`) when seeds > 1.
pub fn results_csv(rows: &[ResultRow], means: &[ResultRow]) -> String {
    let dims = rows.first().map_or(0, |r| r.kl_per_dim.len());
    let header = ["beta", "seed"]
        .into_iter()
        .chain(FIGURE_COLUMNS)
        .map(|c| c.to_string())
        .chain((0..dims).map(|j| format!("kl_dim_{j}")))
        .collect();
    let body = rows.iter().chain(means).map(|r| {
        [
            r.beta.to_string(),
            r.seed.map_or("mean".to_string(), |s| s.to_string()),
        ]
        .into_iter()
        .chain(r.figures().map(cell))
        .chain(r.kl_per_dim.iter().map(f64::to_string))
        .collect()
    });
    csv_text(std::iter::once(header).chain(body))
}

/// `results.md`: the table of `results.csv` for reading, three decimals, seed spreads.
pub fn results_md(rows: &[ResultRow], means: &[ResultRow]) -> String {
    let mut s = String::from(
        "| β | seed | rate (KL, nats) | distortion (recon, nats) | ELBO | active units | collapsed dims | collapse alarm | MIG | FactorVAE | SAP | DCI dis. | I(x; z) | TC |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let score = |v: Option<f64>, sd: Option<f64>| match (v, sd) {
        (Some(v), Some(sd)) => format!("{v:.3} ± {sd:.3}"),
        (Some(v), None) => format!("{v:.3}"),
        _ => "–".to_string(),
    };
    for r in rows.iter().chain(means) {
        let seed = r.seed.map_or("mean".to_string(), |s| s.to_string());
        s.push_str(&format!(
            "| {} | {seed} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.beta,
            r.rate,
            r.distortion,
            r.elbo(),
            r.active_units,
            r.collapsed_dims,
            if r.seed.is_some() {
                (if r.posterior_collapse > 0.5 {
                    "**fired**"
                } else {
                    "no"
                })
                .to_string()
            } else {
                format!("{:.0}% of seeds", 100.0 * r.posterior_collapse)
            },
            score(r.mig, r.spread.map(|s| s.0)),
            score(r.factor_vae, r.spread.map(|s| s.1)),
            score(r.sap, None),
            score(r.dci, None),
            score(r.mutual_information, None),
            score(r.total_correlation, None)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(beta: f64, seed: Option<u64>, kl: Vec<f64>, mig: Option<f64>) -> ResultRow {
        ResultRow {
            beta,
            seed,
            rate: 12.5,
            distortion: 0.1 + 0.2,
            active_units: 3.0,
            collapsed_dims: 0.0,
            posterior_collapse: 0.0,
            kl_per_dim: kl,
            mig,
            factor_vae: None,
            sap: None,
            dci: None,
            mutual_information: Some(1e-7),
            total_correlation: Some(f64::NAN),
            spread: None,
        }
    }

    #[test]
    fn results_csv_is_byte_for_byte_the_hand_written_format() {
        let rows = [
            row(0.5, Some(1), vec![1.0, 0.25], Some(0.125)),
            row(4.0, Some(1), vec![0.0, 1e-3], None),
        ];
        let means = [row(4.0, None, vec![2.0], None)];
        assert_eq!(
            results_csv(&rows, &means),
            "beta,seed,rate,distortion,elbo,active_units,collapsed_dims,posterior_collapse,\
             mig,factor_vae,sap,dci,mutual_information,total_correlation,kl_dim_0,kl_dim_1\n\
             0.5,1,12.5,0.30000000000000004,-12.8,3,0,0,0.125,,,,0.0000001,NaN,1,0.25\n\
             4,1,12.5,0.30000000000000004,-12.8,3,0,0,,,,,0.0000001,NaN,0,0.001\n\
             4,mean,12.5,0.30000000000000004,-12.8,3,0,0,,,,,0.0000001,NaN,2\n"
        );
    }

    #[test]
    fn metrics_csv_round_trips_up_to_the_epoch_asked_for() {
        let mut rows = BTreeMap::new();
        for (epoch, split, loss) in [
            (1, SplitKind::Train, 3.5),
            (1, SplitKind::Valid, 3.25),
            (2, SplitKind::Train, 2.0),
        ] {
            let mut row = EpochRow {
                epoch,
                ..Default::default()
            };
            row.values.insert("loss".into(), loss);
            row.values.insert("kl".into(), 0.1);
            row.kl_per_dim = vec![0.05, 0.05];
            rows.insert((epoch, split), row);
        }
        let text = metrics_csv(&rows, 2, false);
        assert_eq!(
            text.lines().next().unwrap(),
            "epoch,split,loss,recon,kl,beta_loss,active_units,collapsed_dims,\
             posterior_collapse,kl_dim_0,kl_dim_1"
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "1,train,3.5,,0.1,,,,,0.05,0.05"
        );
        assert!(text.ends_with('\n') && !text.contains('\r'));
        let back = parse_metrics_csv(&text, 1);
        assert_eq!(back.len(), 2);
        assert_eq!(back[&(1, SplitKind::Valid)], rows[&(1, SplitKind::Valid)]);
        assert_eq!(parse_metrics_csv(&text, 2), rows);
        // A VQ model: codebook columns, no per-dimension KL.
        let vq = metrics_csv(&rows, 2, true);
        assert!(vq.starts_with(
            "epoch,split,loss,recon,kl,beta_loss,active_units,collapsed_dims,\
             posterior_collapse,perplexity,codes_used,dead_codes\n"
        ));
    }
}
