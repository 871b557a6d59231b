//! Sweep figures, drawn with `plotters` into PNGs (font: DejaVu Sans, embedded), from any
//! table of [`ResultRow`]s.
use crate::results::ResultRow;
use crate::write_atomic;
use plotters::chart::{MeshStyle, SeriesLabelStyle};
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;

const W: u32 = 900;
const H: u32 = 640;
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw plot: {e:?}")
}

/// A chart on `root` in this project's frame: `caption` above, a 20 px margin, 55 px for the
/// x labels and `y_label_area` px for the y labels.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: impl AsRef<str>,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, (FONT, 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(y_label_area);
    builder
}

/// The axis descriptions and label fonts every figure uses.
fn describe_axes<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    x_desc: &str,
    y_desc: &str,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 14))
}

/// The legend box every figure with several series uses.
fn legend<'s, 'a, 'b, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    labels: &'s mut SeriesLabelStyle<'a, 'b, DB, CT>,
) -> &'s mut SeriesLabelStyle<'a, 'b, DB, CT> {
    labels
        .background_style(WHITE)
        .border_style(BLACK)
        .label_font((FONT, 16))
}

/// Draws into an RGB buffer with `draw`, then writes the PNG atomically.
fn render(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    register_font();
    let mut rgb = vec![255u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, W, H);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(&rgb)?;
    }
    write_atomic(path, &bytes)?;
    Ok(())
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

/// Distortion vs rate, one labelled point per β (rows sorted by β), and the β = 1 ELBO
/// iso-line D + R = const through the β = 1 point.
pub fn rd_curve(rows: &[ResultRow], path: &Path) -> anyhow::Result<()> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.beta.total_cmp(&b.beta));
    let (x0, x1) = span(rows.iter().map(|r| r.rate).chain([0.0]));
    let (y0, y1) = span(rows.iter().map(|r| r.distortion));
    render(path, |root| {
        let mut chart = frame(root, "Rate–distortion (validation, nats per sample)", 80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        describe_axes(
            &mut chart.configure_mesh(),
            "rate R = KL(q(z|x) ‖ p(z))",
            "distortion D = −log p(x|z)",
        )
        .draw()
        .map_err(err)?;
        if let Some(one) = rows.iter().find(|r| r.beta == 1.0) {
            let c = one.rate + one.distortion;
            chart
                .draw_series(LineSeries::new(
                    [(x0, c - x0), (x1, c - x1)],
                    ShapeStyle::from(&RED.mix(0.6)).stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("β = 1 ELBO iso-line (D + R = {c:.1})"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r.rate, r.distortion)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?
            .label("β-VAE, one point per β")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(
                rows.iter()
                    .map(|r| Circle::new((r.rate, r.distortion), 6, BLUE.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(rows.iter().map(|r| {
                EmptyElement::at((r.rate, r.distortion))
                    + Text::new(
                        format!("β={}", r.beta),
                        (8, -20),
                        (FONT, 16).into_font().color(&BLACK),
                    )
            }))
            .map_err(err)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 15))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Rate–distortion of a grid sweep by one key: a labelled point per value of `key` (the mean
/// rate and distortion of the points with that value), in the order of its values.
pub fn rd_by_key(key: &str, groups: &[(String, f64, f64)], path: &Path) -> anyhow::Result<()> {
    let (x0, x1) = span(groups.iter().map(|g| g.1).chain([0.0]));
    // Room on the right for the last point's label.
    let x1 = x1 + 0.25 * (x1 - x0);
    let (y0, y1) = span(groups.iter().map(|g| g.2));
    render(path, |root| {
        let caption = format!("Rate–distortion by {key} (means over the other keys)");
        let mut chart = frame(root, caption, 80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        describe_axes(
            &mut chart.configure_mesh(),
            "rate R = KL(q(z|x) ‖ p(z)), nats",
            "distortion D = −log p(x|z), nats",
        )
        .draw()
        .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                groups.iter().map(|g| (g.1, g.2)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(groups.iter().map(|g| {
                EmptyElement::at((g.1, g.2))
                    + Circle::new((0, 0), 6, BLUE.filled())
                    + Text::new(
                        format!("{key} = {}", g.0),
                        (8, -20),
                        (FONT, 16).into_font().color(&BLACK),
                    )
            }))
            .map_err(err)?;
        Ok(())
    })
}

fn beta_axis(rows: &[ResultRow]) -> (f64, f64) {
    let lo = rows
        .iter()
        .map(|r| r.beta)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = rows
        .iter()
        .map(|r| r.beta)
        .fold(0.0, f64::max)
        .max(lo * 2.0);
    (lo / 1.5, hi * 1.5)
}

/// Active units vs β (log axis).
pub fn active_units(rows: &[ResultRow], latent: usize, path: &Path) -> anyhow::Result<()> {
    let (b0, b1) = beta_axis(rows);
    render(path, |root| {
        let mut chart = frame(root, "Active units vs β (Var_x E[z_u|x] > 0.01)", 60)
            .build_cartesian_2d((b0..b1).log_scale(), -0.5f64..latent as f64 + 0.5)
            .map_err(err)?;
        describe_axes(&mut chart.configure_mesh(), "β (log scale)", "active units")
            .draw()
            .map_err(err)?;
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.beta > 0.0)
            .map(|r| (r.beta, r.active_units))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), GREEN.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 6, GREEN.filled())))
            .map_err(err)?;
        Ok(())
    })
}

fn heat(t: f64) -> RGBColor {
    // White → dark blue, perceptually spread with a square root.
    let t = t.clamp(0.0, 1.0).sqrt();
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(255.0, 8.0), lerp(255.0, 48.0), lerp(255.0, 107.0))
}

/// Per-dimension KL (rows: dimensions sorted by KL, largest first) vs β (columns).
pub fn kl_heatmap(rows: &[ResultRow], path: &Path) -> anyhow::Result<()> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.beta.total_cmp(&b.beta));
    let n = rows.len();
    let dims = rows.iter().map(|r| r.kl_per_dim.len()).max().unwrap_or(0);
    let max = rows
        .iter()
        .flat_map(|r| r.kl_per_dim.iter().copied())
        .fold(1e-9, f64::max);
    let betas: Vec<f64> = rows.iter().map(|r| r.beta).collect();
    render(path, |root| {
        let mut chart = frame(root, "KL per latent dimension (sorted) vs β, nats", 70)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, -0.5f64..dims as f64 - 0.5)
            .map_err(err)?;
        describe_axes(
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(n)
                .y_labels(dims.min(20))
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < betas.len() {
                        format!("{}", betas[i as usize])
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| format!("#{}", y.round() as i64 + 1)),
            "β",
            "dimension rank by KL",
        )
        .draw()
        .map_err(err)?;
        for (i, r) in rows.iter().enumerate() {
            let mut kl = r.kl_per_dim.clone();
            kl.sort_by(|a, b| b.total_cmp(a));
            for (j, &v) in kl.iter().enumerate() {
                let (x, y) = (i as f64, j as f64);
                chart
                    .draw_series([Rectangle::new(
                        [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                        heat(v / max).filled(),
                    )])
                    .map_err(err)?;
                let colour = if (v / max).sqrt() > 0.55 {
                    WHITE
                } else {
                    BLACK
                };
                chart
                    .draw_series([Text::new(
                        format!("{v:.2}"),
                        (x - 0.3, y + 0.15),
                        (FONT, 12).into_font().color(&colour),
                    )])
                    .map_err(err)?;
            }
        }
        Ok(())
    })
}

/// MIG and FactorVAE score vs β (log axis), one point per β.
pub fn disentanglement_vs_beta(rows: &[ResultRow], path: &Path) -> anyhow::Result<()> {
    let (b0, b1) = beta_axis(rows);
    render(path, |root| {
        let mut chart = frame(root, "Disentanglement vs β (encoder mean, dSprites)", 60)
            .build_cartesian_2d((b0..b1).log_scale(), 0f64..1.0)
            .map_err(err)?;
        describe_axes(&mut chart.configure_mesh(), "β (log scale)", "score")
            .draw()
            .map_err(err)?;
        for (name, color, get) in [
            (
                "MIG",
                BLUE,
                (|r: &ResultRow| r.mig) as fn(&ResultRow) -> Option<f64>,
            ),
            ("FactorVAE score", RED, |r: &ResultRow| r.factor_vae),
        ] {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.beta > 0.0)
                .filter_map(|r| get(r).map(|v| (r.beta, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 6, color.filled())))
                .map_err(err)?;
        }
        legend(&mut chart.configure_series_labels())
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// MIG vs distortion, a labelled point per β: the trade-off a researcher picks β from.
pub fn disentanglement_vs_distortion(rows: &[ResultRow], path: &Path) -> anyhow::Result<()> {
    let (x0, x1) = span(rows.iter().map(|r| r.distortion));
    render(path, |root| {
        let mut chart = frame(root, "Disentanglement vs distortion (one point per β)", 60)
            .build_cartesian_2d(x0..x1, 0f64..1.0)
            .map_err(err)?;
        describe_axes(
            &mut chart.configure_mesh(),
            "distortion D = −log p(x|z), nats",
            "MIG",
        )
        .draw()
        .map_err(err)?;
        let mut sorted = rows.to_vec();
        sorted.sort_by(|a, b| a.beta.total_cmp(&b.beta));
        let pts: Vec<(f64, f64, f64)> = sorted
            .iter()
            .filter_map(|r| r.mig.map(|m| (r.distortion, m, r.beta)))
            .collect();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|&(x, y, b)| {
                EmptyElement::at((x, y))
                    + Circle::new((0, 0), 6, BLUE.filled())
                    + Text::new(format!("β={b}"), (8, -18), (FONT, 15))
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// ROC curves of the anomaly scores (one line per score), with the chance diagonal.
pub fn roc_curves(report: &ae_eval::anomaly::AnomalyReport, path: &Path) -> anyhow::Result<()> {
    render(path, |root| {
        let mut chart = frame(
            root,
            format!("Anomaly detection: classes {:?} held out", report.classes),
            60,
        )
        .build_cartesian_2d(0f64..1.0, 0f64..1.0)
        .map_err(err)?;
        describe_axes(
            &mut chart.configure_mesh(),
            "false-positive rate",
            "true-positive rate",
        )
        .draw()
        .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.4),
            ))
            .map_err(err)?;
        for (i, sc) in report.scores.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(sc.roc.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} (AUROC {:.3})", sc.score, sc.auroc))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        legend(
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight),
        )
        .draw()
        .map_err(err)?;
        Ok(())
    })
}
