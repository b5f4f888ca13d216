//! Apply's progress on stderr: one line per step with its outcome and duration; on a terminal a
//! spinner shows the step under way.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Progress, Step, StepOutcome};

/// Apply's progress on stderr, one line per step ended.
pub struct ProgressLines {
    total: usize,
    quiet: bool,
    spinner: Option<ProgressBar>,
}

impl ProgressLines {
    /// Report `total` steps; `quiet` prints only failures.
    pub fn new(total: usize, quiet: bool) -> Self {
        Self {
            total,
            quiet,
            spinner: None,
        }
    }

    fn line(&self, text: String) {
        match &self.spinner {
            Some(spinner) => spinner.println(text),
            None => anstream::eprintln!("{text}"),
        }
    }
}

impl Progress for ProgressLines {
    fn started(&mut self, index: usize, step: &Step) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(format!(
            "[{}/{}] {}",
            index + 1,
            self.total,
            step.describe()
        ));
        spinner.enable_steady_tick(Duration::from_millis(100));
        self.spinner = Some(spinner);
    }

    fn note(&mut self, step: &Step, text: &str) {
        if !self.quiet {
            self.line(format!("{}: {text}", step.address()));
        }
    }

    fn ended(&mut self, index: usize, step: &Step, outcome: &StepOutcome) {
        let (word, took) = match outcome {
            StepOutcome::Done(took) => ("done", took),
            StepOutcome::Failed(took, _) => ("FAILED", took),
            StepOutcome::NotStarted => return,
        };
        if !self.quiet || matches!(outcome, StepOutcome::Failed(..)) {
            self.line(format!(
                "[{}/{}] {}: {} ... {word} ({} ms)",
                index + 1,
                self.total,
                step.address(),
                step.describe(),
                took.as_millis()
            ));
        }
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }
}
