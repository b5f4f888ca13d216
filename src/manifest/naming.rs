//! Cloudflare's naming rules, and the few other lexical rules a manifest's names follow.
//!
//! Each function returns `Err` with a short reason that fits after "… is not a valid …: ".

/// Script names become part of `<script>.<subdomain>.workers.dev`, so they follow the DNS label
/// rule: lowercase letters, digits and dashes, 1 to 63 characters, no dash at either end.
pub(crate) fn script_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > 63 {
        return Err(format!(
            "it has {} characters, at most 63 are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "`{bad}` is not allowed; use lowercase letters, digits and dashes"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("it starts or ends with a dash".to_owned());
    }
    Ok(())
}

/// Environment names become file names (`environments/<name>.yaml`) and command arguments:
/// lowercase letters, digits, dashes and underscores, starting with a letter, at most 63
/// characters. Nothing else can name a file outside `environments/`.
pub(crate) fn environment_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty".to_owned());
    };
    if name.len() > 63 {
        return Err(format!(
            "it has {} characters, at most 63 are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{bad:?} is not allowed; use lowercase letters, digits, dashes and underscores"
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err("it must start with a lowercase letter".to_owned());
    }
    Ok(())
}

/// D1 database names: Cloudflare's API pattern is `^[a-z0-9][a-z0-9-_]*$`; it states no length
/// limit, so lmsinfra caps names at 64 characters like Cloudflare's other resource names.
pub(crate) fn d1_database_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty".to_owned());
    };
    if name.len() > 64 {
        return Err(format!(
            "it has {} characters, at most 64 are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "`{bad}` is not allowed; use lowercase letters, digits, dashes and underscores"
        ));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err("it must start with a lowercase letter or a digit".to_owned());
    }
    Ok(())
}

/// ECMAScript reserved words, strict-mode reserved words, and the literals `null`, `true`,
/// `false`: a binding named like one of these cannot be a variable in service-worker syntax.
const RESERVED_WORDS: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Binding and secret names are JavaScript identifiers (`env.NAME`). lmsinfra accepts the ASCII
/// subset — letters, digits, `_` and `$`, not starting with a digit — and no reserved word.
pub(crate) fn js_identifier(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty".to_owned());
    };
    if first.is_ascii_digit() {
        return Err("it starts with a digit".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$'))
    {
        return Err(format!(
            "`{bad}` is not allowed; use letters, digits, `_` and `$`"
        ));
    }
    if RESERVED_WORDS.contains(&name) {
        return Err(format!("`{name}` is a JavaScript reserved word"));
    }
    Ok(())
}

/// HTTP field names are RFC 9110 tokens: one or more of ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
pub(crate) fn header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c)))
    {
        Some(' ') => Err("it contains a space".to_owned()),
        Some(bad) => Err(format!("`{bad}` is not allowed in a header name")),
        None => Ok(()),
    }
}

/// Name endings that mark a credential, which belongs under `secrets`, not in plain text.
const CREDENTIAL_SUFFIXES: &[&str] = &["SECRET", "TOKEN", "KEY", "PASSWORD", "PEM"];

/// The credential-like ending of `name`, if it has one (case-insensitive).
pub(crate) fn credential_suffix(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    CREDENTIAL_SUFFIXES
        .iter()
        .copied()
        .find(|suffix| upper.ends_with(suffix))
}

/// Why `pattern` is not a Workers route pattern on `zone` (`api.example.com/*`): a host that is
/// the zone or under it (`*.` allowed in front), then a path starting with `/` in which only a
/// trailing `*` is a wildcard.
pub(crate) fn route_pattern(zone: &str, pattern: &str) -> Result<(), String> {
    if pattern.contains("://") {
        return Err("leave the scheme out".to_owned());
    }
    let Some((host, path)) = pattern.split_once('/') else {
        return Err("there is no path; add `/*` for every path".to_owned());
    };
    let bare = host.strip_prefix("*.").unwrap_or(host);
    if bare.is_empty() || bare.contains('*') {
        return Err("the host may only start with `*.` as a wildcard".to_owned());
    }
    if bare != zone && !bare.ends_with(&format!(".{zone}")) {
        return Err(format!("the host `{host}` is not on the zone"));
    }
    if path.trim_end_matches('*').contains('*') {
        return Err("only a trailing `*` is allowed in the path".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_follow_the_dns_label_rule() {
        assert!(script_name("lms-api-staging").is_ok());
        assert!(script_name(&"a".repeat(63)).is_ok());
        assert!(script_name(&"a".repeat(64)).is_err());
        assert!(script_name("LMS-api").is_err());
        assert!(script_name("lms_api").is_err());
        assert!(script_name("-lms").is_err());
        assert!(script_name("lms-").is_err());
        assert!(script_name("").is_err());
    }

    #[test]
    fn environment_names_cannot_leave_the_environments_folder() {
        assert!(environment_name("staging").is_ok());
        assert!(environment_name("eu-west_2").is_ok());
        for bad in [
            "../../x",
            "a/b",
            "",
            "Staging",
            "-x",
            "x\u{1b}[2J",
            ".hidden",
        ] {
            assert!(environment_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn d1_names_allow_underscores_but_not_a_leading_dash() {
        assert!(d1_database_name("lms-db_staging").is_ok());
        assert!(d1_database_name("-db").is_err());
        assert!(d1_database_name("_db").is_err());
        assert!(d1_database_name("LMS").is_err());
        assert!(d1_database_name(&"d".repeat(65)).is_err());
    }

    #[test]
    fn binding_names_are_identifiers_and_not_reserved_words() {
        assert!(js_identifier("DB").is_ok());
        assert!(js_identifier("$api_2").is_ok());
        assert!(js_identifier("2FA").is_err());
        assert!(js_identifier("MY-VAR").is_err());
        assert!(js_identifier("class").is_err());
        assert!(js_identifier("").is_err());
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(header_name("X-Content-Type-Options").is_ok());
        assert!(header_name("X Frame").is_err());
        assert!(header_name("X:Frame").is_err());
    }

    #[test]
    fn credential_like_names_are_recognised() {
        assert_eq!(credential_suffix("STRIPE_API_KEY"), Some("KEY"));
        assert_eq!(credential_suffix("github_token"), Some("TOKEN"));
        assert_eq!(credential_suffix("ALLOWED_ORIGINS"), None);
    }
}
