//! Apply's progress on stderr: one line per step with its outcome and duration.
//!
//! Steps run at the same time, so they end in no fixed order. On a terminal each line is
//! printed as its step ends, above a spinner per step under way. Anywhere else (a CI log, a
//! file) the lines come in plan order: a step's line, and the notes it makes on the way (a
//! migration's restore command), wait until every step before it has ended or is known never to
//! start, so two runs of the same plan print the same lines. A note waits at most as long as the
//! steps before its own take; a migration's bookmark is also in the database's ledger.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Progress, Step, StepOutcome};

/// Apply's progress on stderr, one line per step ended.
pub struct ProgressLines {
    total: usize,
    quiet: bool,
    /// On a terminal: the spinners, one per step under way.
    live: Option<Spinners>,
    /// Elsewhere: the lines of steps ended before an earlier one, by index.
    held: BTreeMap<usize, Option<String>>,
    /// Elsewhere: the notes of steps whose turn has not come, by index.
    notes: BTreeMap<usize, Vec<String>>,
    /// The index of each step started, by address.
    indices: BTreeMap<String, usize>,
    /// Elsewhere: the index of the next line to print.
    next: usize,
}

/// A spinner per step under way, below the lines printed so far.
struct Spinners {
    multi: MultiProgress,
    running: BTreeMap<usize, ProgressBar>,
}

impl ProgressLines {
    /// Report `total` steps; `quiet` prints only failures.
    pub fn new(total: usize, quiet: bool) -> Self {
        let live = (!quiet && std::io::stderr().is_terminal()).then(|| Spinners {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            running: BTreeMap::new(),
        });
        Self {
            total,
            quiet,
            live,
            held: BTreeMap::new(),
            notes: BTreeMap::new(),
            indices: BTreeMap::new(),
            next: 0,
        }
    }

    fn print(&self, text: &str) {
        match &self.live {
            Some(spinners) => {
                if spinners.multi.println(text).is_err() {
                    anstream::eprintln!("{text}");
                }
            }
            None => anstream::eprintln!("{text}"),
        }
    }

    /// Print the held lines whose turn has come, and the notes of the step whose turn it is.
    fn release(&mut self) {
        loop {
            for note in self.notes.remove(&self.next).unwrap_or_default() {
                self.print(&note);
            }
            let Some(line) = self.held.remove(&self.next) else {
                return;
            };
            if let Some(line) = line {
                self.print(&line);
            }
            self.next += 1;
        }
    }
}

impl Progress for ProgressLines {
    fn started(&mut self, index: usize, step: &Step) {
        self.indices.insert(step.address().to_string(), index);
        let Some(spinners) = &mut self.live else {
            return;
        };
        let spinner = spinners.multi.add(ProgressBar::new_spinner());
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
        spinners.running.insert(index, spinner);
    }

    fn note(&mut self, step: &Step, text: &str) {
        if self.quiet {
            return;
        }
        let text = format!("{}: {text}", step.address());
        match self.indices.get(&step.address().to_string()) {
            Some(&index) if self.live.is_none() && index > self.next => {
                self.notes.entry(index).or_default().push(text);
            }
            _ => self.print(&text),
        }
    }

    fn ended(&mut self, index: usize, step: &Step, outcome: &StepOutcome) {
        let (word, took) = match outcome {
            StepOutcome::Done(took) => ("done", took),
            StepOutcome::Failed(took, _) => ("FAILED", took),
            StepOutcome::NotStarted => {
                self.held.insert(index, None);
                self.release();
                return;
            }
        };
        let shown = !self.quiet || matches!(outcome, StepOutcome::Failed(..));
        let line = shown.then(|| {
            format!(
                "[{}/{}] {}: {} ... {word} ({} ms)",
                index + 1,
                self.total,
                step.address(),
                step.describe(),
                took.as_millis()
            )
        });
        if let Some(spinners) = &mut self.live {
            if let Some(spinner) = spinners.running.remove(&index) {
                spinner.finish_and_clear();
                spinners.multi.remove(&spinner);
            }
            if let Some(line) = line {
                self.print(&line);
            }
            return;
        }
        self.held.insert(index, line);
        self.release();
    }
}
