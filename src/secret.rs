//! A value that must never be shown: secret values and the API token.
//!
//! Everything that prints data (`Debug`, `Display`, tracing fields, error messages, plan files)
//! goes through `Debug` or `Display`, so making both redact is what keeps a value out of output
//! at any verbosity. The value is reachable only inside the crate, where the API client puts it
//! into a request body or the `Authorization` header.
//!
//! Text that comes from outside (an API error message, a probe's answer) is another matter: a
//! server or a proxy that echoes the request puts the token or a secret value into it. Every
//! value lmsinfra holds is therefore [`register`]ed, and [`scrub`] takes each of them out of such
//! text, and cuts it to a printable length, before it is printed or logged.

use std::fmt;
use std::sync::RwLock;

/// A secret value (a Worker secret, the API token). Prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value that must never be printed.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The longest text from outside that is printed whole; the rest is cut.
pub(crate) const OUTSIDE_TEXT_LIMIT: usize = 2 * 1024;

/// The forms in which a registered value can appear in text from outside, longest first.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remember `secrets` so that [`scrub`] takes them out of text from outside: the token when
/// the API client is made, the `--secret` values when apply has read them. Each value is
/// known as sent and as a JSON string escapes it (an echoed request body); a value of several
/// lines is known line by line too, so that an echo cut mid-value still loses every long line.
pub fn register<'a>(secrets: impl IntoIterator<Item = &'a Secret>) {
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    for secret in secrets {
        let value = secret.expose();
        if value.is_empty() {
            continue;
        }
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or_default();
        let lines = value
            .lines()
            .map(str::trim)
            .filter(|line| line.len() >= 8 && line.len() < value.len());
        for form in [value, escaped].into_iter().chain(lines) {
            if !form.is_empty() && !known.iter().any(|k| k == form) {
                known.push(form.to_owned());
            }
        }
    }
    known.sort_by_key(|form| std::cmp::Reverse(form.len()));
}

/// Text that came from outside, fit to print: every registered value replaced by
/// `[redacted]`, then cut to [`OUTSIDE_TEXT_LIMIT`] bytes with a note of how much was cut.
pub(crate) fn scrub(text: &str) -> String {
    let mut text = text.to_owned();
    for form in KNOWN.read().unwrap_or_else(|e| e.into_inner()).iter() {
        if text.contains(form.as_str()) {
            text = text.replace(form.as_str(), "[redacted]");
        }
    }
    if text.len() > OUTSIDE_TEXT_LIMIT {
        let mut end = OUTSIDE_TEXT_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = text.len() - end;
        text.truncate(end);
        text.push_str(&format!("… ({cut} bytes cut)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{OUTSIDE_TEXT_LIMIT, Secret, register, scrub};

    #[test]
    fn registered_values_are_scrubbed_from_outside_text_in_every_form() {
        let pem = Secret::new("-----BEGIN KEY-----\nscrub-canary-line-1f3a\n-----END KEY-----");
        register([&Secret::new("scrub-canary-9d2e"), &pem, &Secret::new("")]);
        let echoed = format!(
            "you sent scrub-canary-9d2e and {} and, cut, scrub-canary-line-1f3a",
            serde_json::to_string(pem.expose()).unwrap()
        );
        let scrubbed = scrub(&echoed);
        assert!(!scrubbed.contains("scrub-canary"), "{scrubbed}");
        assert!(
            scrubbed.starts_with("you sent [redacted] and"),
            "{scrubbed}"
        );
        assert_eq!(scrub("nothing known here"), "nothing known here");
    }

    #[test]
    fn long_outside_text_is_cut_at_a_character_boundary() {
        // Three bytes a character: the limit falls inside one.
        let long = "€".repeat(OUTSIDE_TEXT_LIMIT);
        let cut = scrub(&long);
        let kept = OUTSIDE_TEXT_LIMIT / 3 * 3;
        let note = format!("… ({} bytes cut)", long.len() - kept);
        assert_eq!(cut, format!("{}{note}", &long[..kept]));
    }

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("hunter2-canary");
        assert!(!format!("{secret}").contains("hunter2"));
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{:#?}", Some(&secret)).contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-canary");
    }
}
