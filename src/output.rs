//! Where output goes: colour choice, the tracing subscriber (stderr), and error reports.

use crate::settings::Settings;

/// Set the colour choice for everything written through `anstream`, the diagnostic renderer,
/// and the tracing subscriber.
pub(crate) fn init(settings: &Settings) {
    settings.color.write_global();
    let color = stderr_color();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                // Wrap at spaces only: a flag, a date or a URL split at a hyphen or a slash
                // (`--auto-` / `approve`) can be neither searched for nor pasted.
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .build(),
        )
    }));
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{},hyper=warn,hyper_util=warn,reqwest=warn,h2=warn,rustls=warn",
        settings.log_level()
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .try_init();
}

/// Whether stderr gets colour, after `--color`, `NO_COLOR` and whether it is a terminal.
pub(crate) fn stderr_color() -> bool {
    !matches!(
        anstream::AutoStream::choice(&std::io::stderr()),
        anstream::ColorChoice::Never
    )
}

/// Print an error report on stderr.
pub(crate) fn report(report: miette::Report) {
    anstream::eprintln!("{report:?}");
}
