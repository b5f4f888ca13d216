//! Where output goes. Data (plans, reports, schemas, scripts) goes to stdout; diagnostics,
//! status lines, prompts and progress go to stderr. Colour is decided here, once, from
//! `--color`, `NO_COLOR` and whether each stream is a terminal; `-q` is honoured here.

use std::fmt::Display;
use std::io::Write;

use crate::error::Error;
use crate::settings::Settings;

/// Writes a command's output to the stream it belongs on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    quiet: bool,
    stdout_color: bool,
    stderr_color: bool,
}

impl Printer {
    /// Decide colour for everything written through `anstream`, the diagnostic renderer and
    /// the tracing subscriber, and install the last two.
    pub(crate) fn init(settings: &Settings) -> Printer {
        settings.color.write_global();
        let printer = Printer {
            quiet: settings.quiet,
            stdout_color: colored(anstream::AutoStream::choice(&std::io::stdout())),
            stderr_color: colored(anstream::AutoStream::choice(&std::io::stderr())),
        };
        let color = printer.stderr_color;
        let _ = miette::set_hook(Box::new(move |_| {
            Box::new(
                miette::MietteHandlerOpts::new()
                    .color(color)
                    .unicode(color)
                    // Wrap at spaces only: a flag, a date or a URL split at a hyphen or a slash
                    // (`--auto-` / `approve`) can be neither searched for nor pasted.
                    .word_separator(textwrap::WordSeparator::AsciiSpace)
                    .word_splitter(textwrap::WordSplitter::NoHyphenation)
                    // A URL longer than the line stays whole rather than cut mid-word.
                    .break_words(false)
                    .build(),
            )
        }));
        let level = settings.log_level();
        let noisy = tracing::Level::WARN.min(level);
        let filter = tracing_subscriber::filter::Targets::new()
            .with_default(level)
            .with_targets(
                ["hyper", "hyper_util", "reqwest", "h2", "rustls"].map(|target| (target, noisy)),
            );
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(
                tracing_subscriber::fmt()
                    .with_max_level(level)
                    .with_writer(std::io::stderr)
                    .with_ansi(color)
                    .with_target(false)
                    .finish(),
                filter,
            ),
        );
        printer
    }

    /// Whether data on stdout gets colour.
    pub(crate) fn stdout_color(&self) -> bool {
        self.stdout_color
    }

    /// Whether text on stderr gets colour.
    pub(crate) fn stderr_color(&self) -> bool {
        self.stderr_color
    }

    /// Whether `-q` asked for errors only.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }

    /// Data: `text` and a newline on stdout. A closed pipe (`| head`) is not an error.
    pub(crate) fn data(&self, text: &str) -> Result<(), Error> {
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Error::Stdout { source: err })
            }
            _ => Ok(()),
        }
    }

    /// A status line for people on stderr (what was written, what to do next); not with `-q`.
    pub(crate) fn status(&self, text: impl Display) {
        if !self.quiet {
            anstream::eprintln!("{text}");
        }
    }

    /// A line on stderr that `-q` does not silence: what the user must know even then.
    pub(crate) fn notice(&self, text: impl Display) {
        anstream::eprintln!("{text}");
    }

    /// A question on stderr, the answer to be typed on the same line.
    pub(crate) fn prompt(&self, text: impl Display) {
        anstream::eprint!("{text}");
    }

    /// A diagnostic on stderr; warnings and advice are silenced by `-q`, errors are not.
    pub(crate) fn diagnostic(&self, diagnostic: impl miette::Diagnostic + Send + Sync + 'static) {
        let error = matches!(diagnostic.severity(), None | Some(miette::Severity::Error));
        if error || !self.quiet {
            self.error(miette::Report::new(diagnostic));
        }
    }

    /// An error report on stderr.
    pub(crate) fn error(&self, report: miette::Report) {
        anstream::eprintln!("{report:?}");
    }
}

/// Whether a stream gets colour, after `--color`, `NO_COLOR` and whether it is a terminal.
fn colored(choice: anstream::ColorChoice) -> bool {
    !matches!(choice, anstream::ColorChoice::Never)
}
