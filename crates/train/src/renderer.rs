use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

/// Plain-text renderer for pipes and CI: a progress line every quarter of a split and one line
/// of epoch figures per split; a collapse alarm gets a line of its own in capitals.
pub struct PlainRenderer {
    label: String,
    names: HashMap<MetricId, String>,
    order: Vec<MetricId>,
    finals: HashMap<MetricId, (f64, String)>,
    split: String,
    epoch: usize,
    total_epochs: usize,
    split_total: usize,
    last_quarter: usize,
    started: Instant,
}

impl PlainRenderer {
    /// A renderer that prefixes its lines with `label` (the run name).
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            names: HashMap::new(),
            order: Vec::new(),
            finals: HashMap::new(),
            split: String::new(),
            epoch: 1,
            total_epochs: 0,
            split_total: 0,
            last_quarter: 0,
            started: Instant::now(),
        }
    }

    fn record(&mut self, state: MetricState) {
        if let MetricState::Numeric(entry, _) = state
            && let Ok(NumericEntry::Final(v)) =
                NumericEntry::deserialize(&entry.serialized_entry.serialized)
        {
            self.finals
                .insert(entry.metric_id, (v, entry.serialized_entry.formatted));
        }
    }

    fn print_epoch_line(&mut self) {
        let mut parts = Vec::new();
        let mut alarm = None;
        for id in &self.order {
            let Some((v, formatted)) = self.finals.get(id) else {
                continue;
            };
            let name = &self.names[id];
            if name == "Collapse alarm" {
                if *v > 0.5 {
                    alarm = Some(formatted.clone());
                }
                continue;
            }
            let shown = if name.contains("units") || name.contains("dims") {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            };
            parts.push(format!("{name} {shown}"));
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "[{}] epoch {}/{} {:5} {} ({:.1}s)",
            self.label,
            self.epoch,
            self.total_epochs,
            self.split,
            parts.join(" | "),
            self.started.elapsed().as_secs_f64()
        );
        if let Some(reason) = alarm {
            let _ = writeln!(out, "[{}] !!! {reason} !!!", self.label);
        }
        let _ = out.flush();
        self.finals.clear();
    }
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(state);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.record(state);
    }
}

impl TrainingProgressLogger for PlainRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
        self.started = Instant::now();
        println!(
            "[{}] training epochs {starting_epoch}..={total_epochs}",
            self.label
        );
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_string();
        self.split_total = total_items;
        self.last_quarter = 0;
    }

    fn update_split(&mut self, items_processed: usize) {
        if self.split_total == 0 {
            return;
        }
        let quarter = items_processed * 4 / self.split_total;
        if quarter > self.last_quarter && quarter < 4 {
            self.last_quarter = quarter;
            println!(
                "[{}] epoch {}/{} {:5} {:3}% ({items_processed}/{})",
                self.label,
                self.epoch,
                self.total_epochs,
                self.split,
                quarter * 25,
                self.split_total
            );
        }
    }

    fn end_split(&mut self) {
        self.print_epoch_line();
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for PlainRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, name: &str, total_items: usize) {
        self.start_split(name, total_items);
    }
    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }
    fn end_test(&mut self) {
        self.print_epoch_line();
    }
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        if !self.names.contains_key(&definition.metric_id) {
            self.order.push(definition.metric_id.clone());
        }
        self.names
            .insert(definition.metric_id, definition.name.to_string());
    }
}
