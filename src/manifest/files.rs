//! Reading local inputs safely: environment files, saved plans and secret files.
//!
//! A manifest's excerpt is printed in diagnostics, so an environment file that is a symbolic
//! link to `/proc/self/environ` would print the process environment, API token included, and a
//! FIFO would block `validate` forever. Environment files must be regular files inside the
//! project; every file lmsinfra reads has its type checked before it is opened and is read
//! only up to a limit.

use std::io::Read;
use std::path::Path;

use super::diagnostic::{Problem, Source};
use super::load::Checked;
use super::span::SpanIndex;

/// Why an environment file was not read.
pub(crate) enum Unreadable {
    /// The file is not one lmsinfra reads (a diagnostic says why).
    Refused(Box<Checked>),
    /// Reading failed.
    Io(std::io::Error),
}

/// Which kinds of file a reader accepts besides regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Regular files only.
    Regular,
    /// Regular files and pipes (`file:<(pass show …)` hands over a pipe).
    RegularOrPipe,
}

/// Read the environment file `path` of the project in `root`, up to `limit` bytes plus one
/// (so the loader sees that it is too large). `label` names it in a refusal's diagnostic.
pub(crate) fn read_environment(
    root: &Path,
    path: &Path,
    label: &str,
    limit: usize,
) -> Result<Vec<u8>, Unreadable> {
    let refuse = |message: String, help: &str| {
        let source = Source::new(label, String::new());
        let spans = SpanIndex::default();
        let diagnostic = Problem::at_bytes("manifest::not-a-regular-file", 0..0, message)
            .label("not read")
            .help(help)
            .place(&source, &spans);
        Unreadable::Refused(Box::new(Checked {
            source,
            spans,
            manifest: None,
            diagnostics: vec![diagnostic],
        }))
    };
    let target = std::fs::canonicalize(path).map_err(Unreadable::Io)?;
    let project = std::fs::canonicalize(root).map_err(Unreadable::Io)?;
    if !target.starts_with(&project) {
        return Err(refuse(
            format!(
                "{label} leads to {}, outside the project; it was not read",
                target.display()
            ),
            "an environment manifest is a file inside the project: replace the symbolic link with the file itself",
        ));
    }
    match read_capped(&target, limit as u64, Accept::Regular) {
        // Too large: the loader reports it, with the file's first line.
        Ok(bytes) | Err(Capped::TooLarge(bytes)) => Ok(bytes),
        Err(Capped::NotAFile(kind)) => Err(refuse(
            format!("{label} is {kind}, not a regular file; it was not read"),
            "an environment manifest is a regular YAML file",
        )),
        Err(Capped::Io(err)) => Err(Unreadable::Io(err)),
    }
}

/// Why [`read_capped`] read nothing.
#[derive(Debug)]
pub(crate) enum Capped {
    /// The path is not a kind of file the caller reads; what it is instead.
    NotAFile(&'static str),
    /// The file holds more than the limit: the first `limit + 1` bytes.
    TooLarge(Vec<u8>),
    Io(std::io::Error),
}

impl Capped {
    /// As an I/O error whose message says what was wrong, for errors that carry one.
    pub(crate) fn into_io(self, limit: &str) -> std::io::Error {
        match self {
            Self::NotAFile(kind) => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("it is {kind}, not a regular file"),
            ),
            Self::TooLarge(_) => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("it is larger than {limit}"),
            ),
            Self::Io(err) => err,
        }
    }
}

/// Read `path` when it holds at most `limit` bytes; more is [`Capped::TooLarge`]. The file's
/// type is checked before it is opened, so a device such as `/dev/zero` or a FIFO nobody
/// writes to is refused at once (opening a FIFO would already block).
pub(crate) fn read_capped(path: &Path, limit: u64, accept: Accept) -> Result<Vec<u8>, Capped> {
    let acceptable = |file_type: &std::fs::FileType| {
        file_type.is_file() || accept == Accept::RegularOrPipe && is_fifo(file_type)
    };
    let file_type = std::fs::metadata(path).map_err(Capped::Io)?.file_type();
    if !acceptable(&file_type) {
        return Err(Capped::NotAFile(describe(&file_type)));
    }
    let file = std::fs::File::open(path).map_err(Capped::Io)?;
    // The path may have been replaced in between: what was opened is what counts.
    let file_type = file.metadata().map_err(Capped::Io)?.file_type();
    if !acceptable(&file_type) {
        return Err(Capped::NotAFile(describe(&file_type)));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(Capped::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Capped::TooLarge(bytes));
    }
    Ok(bytes)
}

/// A size limit on one kind of input, and how messages state it.
pub(crate) struct Limit {
    pub(crate) bytes: u64,
    pub(crate) describe: &'static str,
}

/// Saved plans (`apply --plan FILE`): a plan of the LMS is a few kilobytes.
pub(crate) const SAVED_PLAN: Limit = Limit {
    bytes: 10 * 1024 * 1024,
    describe: "10 MiB, the limit for a saved plan",
};

/// [`read_capped`] as UTF-8 text, with every refusal as an I/O error that says what was wrong.
pub(crate) fn read_text(path: &Path, limit: &Limit, accept: Accept) -> std::io::Result<String> {
    let bytes =
        read_capped(path, limit.bytes, accept).map_err(|why| why.into_io(limit.describe))?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not valid UTF-8"))
}

#[cfg(unix)]
fn is_fifo(file_type: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(file_type)
}

#[cfg(not(unix))]
fn is_fifo(_file_type: &std::fs::FileType) -> bool {
    false
}

/// What a file that is not a regular file is, for messages.
fn describe(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}
