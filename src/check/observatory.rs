//! Scores a response's security headers the way Mozilla's HTTP Observatory does, so a grade
//! from `lmsinfra check` means what the same grade means on observatory.mozilla.org.
//!
//! Pure: headers in, score out. Every site starts at 100; each test below yields one result
//! with a modifier. Penalties always count; bonuses count only when the score with penalties is
//! 90 (A) or more; the score never goes below 0. The table implemented, per test:
//!
//! | test | result | modifier |
//! | --- | --- | --- |
//! | content-security-policy | `csp-implemented-with-no-unsafe-default-src-none` | +10 |
//! | | `csp-implemented-with-no-unsafe` | +5 |
//! | | `csp-implemented-with-unsafe-inline-in-style-src-only` | 0 |
//! | | `csp-implemented-with-insecure-scheme-in-passive-content-only` | −10 |
//! | | `csp-implemented-with-unsafe-eval` | −10 |
//! | | `csp-implemented-with-unsafe-inline` | −20 |
//! | | `csp-implemented-with-insecure-scheme` | −20 |
//! | | `csp-header-invalid`, `csp-not-implemented` | −25 |
//! | strict-transport-security | `hsts-implemented-max-age-at-least-six-months` | 0 |
//! | | `hsts-implemented-max-age-less-than-six-months` | −10 |
//! | | `hsts-header-invalid`, `hsts-not-implemented` | −20 |
//! | x-content-type-options | `x-content-type-options-nosniff` | 0 |
//! | | `x-content-type-options-header-invalid`, `…-not-implemented` | −5 |
//! | x-frame-options | `x-frame-options-implemented-via-csp` (`frame-ancestors`) | +5 |
//! | | `x-frame-options-sameorigin-or-deny`, `…-allow-from-origin` | 0 |
//! | | `x-frame-options-header-invalid`, `…-not-implemented` | −20 |
//! | referrer-policy | `referrer-policy-private` | +5 |
//! | | `referrer-policy-no-referrer-when-downgrade`, `…-not-implemented` | 0 |
//! | | `referrer-policy-unsafe`, `referrer-policy-header-invalid` | −5 |
//! | cross-origin-resource-policy | `…-implemented-with-same-origin`/`same-site`/`cross-origin`, `…-not-implemented` | 0 |
//! | | `cross-origin-resource-policy-header-invalid` | −5 |
//!
//! Grades: A+ from 100, A 90, A− 85, B+ 80, B 70, B− 65, C+ 60, C 50, C− 45, D+ 40, D 30,
//! D− 25, F below.
//!
//! Left out, because one GET of one URL's headers cannot decide them: cookies (they need the
//! site's `Set-Cookie` across pages), subresource integrity (needs the page's HTML), redirection
//! from http to https and HSTS preloading (need other requests and the preload list), HSTS's
//! "served over http" penalty (probe URLs are https in real manifests, loopback in tests), CORS
//! policy files (`crossdomain.xml`), and the retired X-XSS-Protection test.

use std::collections::BTreeMap;

use serde::Serialize;

/// Six months in seconds, the HSTS `max-age` the Observatory asks for.
const SIX_MONTHS: u64 = 15_768_000;

/// A letter grade, worst first so that grades compare as they rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    /// Below 25.
    F,
    /// From 25.
    DMinus,
    /// From 30.
    D,
    /// From 40.
    DPlus,
    /// From 45.
    CMinus,
    /// From 50.
    C,
    /// From 60.
    CPlus,
    /// From 65.
    BMinus,
    /// From 70.
    B,
    /// From 80.
    BPlus,
    /// From 85.
    AMinus,
    /// From 90.
    A,
    /// From 100.
    APlus,
}

/// Lowest score of each grade, best first.
const GRADES: [(u32, Grade, &str); 13] = [
    (100, Grade::APlus, "A+"),
    (90, Grade::A, "A"),
    (85, Grade::AMinus, "A-"),
    (80, Grade::BPlus, "B+"),
    (70, Grade::B, "B"),
    (65, Grade::BMinus, "B-"),
    (60, Grade::CPlus, "C+"),
    (50, Grade::C, "C"),
    (45, Grade::CMinus, "C-"),
    (40, Grade::DPlus, "D+"),
    (30, Grade::D, "D"),
    (25, Grade::DMinus, "D-"),
    (0, Grade::F, "F"),
];

impl Grade {
    /// The grade a score earns.
    pub fn of(score: u32) -> Grade {
        GRADES
            .iter()
            .find(|(floor, _, _)| score >= *floor)
            .map_or(Grade::F, |(_, grade, _)| *grade)
    }

    /// As the Observatory writes it: `A+`, `B-`, …
    pub fn as_str(self) -> &'static str {
        GRADES
            .iter()
            .find(|(_, grade, _)| *grade == self)
            .map_or("F", |(_, _, name)| name)
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Grade {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        GRADES
            .iter()
            .find(|(_, _, name)| name.eq_ignore_ascii_case(text.trim()))
            .map(|(_, grade, _)| *grade)
            .ok_or_else(|| format!("`{text}` is not a grade; grades run A+, A, A-, B+ … D-, F"))
    }
}

impl Serialize for Grade {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// The test, named after the header it reads (`strict-transport-security`).
    pub test: &'static str,
    /// The Observatory's name for the result (`hsts-not-implemented`).
    pub result: &'static str,
    /// Points added or taken away.
    pub modifier: i32,
    /// Whether the Observatory counts it as a pass (no penalty).
    pub pass: bool,
    /// What was seen, for people.
    pub description: String,
}

/// A scored response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Score {
    /// The final score (100 plus modifiers, bonuses only from 90, at least 0).
    pub score: u32,
    /// Its grade.
    pub grade: Grade,
    /// Every test's result, in table order.
    pub tests: Vec<TestResult>,
}

/// Score a response by its headers (lowercase names, as probes report them).
pub fn score(headers: &BTreeMap<String, String>) -> Score {
    let header = |name: &str| headers.get(name).map(String::as_str);
    let csp = header("content-security-policy").map(Policy::parse);
    let tests = vec![
        content_security_policy(csp.as_ref()),
        strict_transport_security(header("strict-transport-security")),
        x_content_type_options(header("x-content-type-options")),
        x_frame_options(header("x-frame-options"), csp.as_ref()),
        referrer_policy(header("referrer-policy")),
        cross_origin_resource_policy(header("cross-origin-resource-policy")),
    ];
    let penalties: i32 = tests.iter().map(|t| t.modifier.min(0)).sum();
    let bonuses: i32 = tests.iter().map(|t| t.modifier.max(0)).sum();
    let mut total = 100 + penalties;
    if total >= 90 {
        total += bonuses;
    }
    let score = u32::try_from(total.max(0)).unwrap_or(0);
    Score {
        score,
        grade: Grade::of(score),
        tests,
    }
}

fn result(
    test: &'static str,
    result: &'static str,
    modifier: i32,
    description: impl Into<String>,
) -> TestResult {
    TestResult {
        test,
        result,
        modifier,
        pass: modifier >= 0,
        description: description.into(),
    }
}

/// A parsed Content-Security-Policy: directive name (lowercase) → sources (lowercase).
#[derive(Debug, Clone, PartialEq)]
struct Policy {
    directives: Option<BTreeMap<String, Vec<String>>>,
}

impl Policy {
    /// `None` directives when the header is not a policy (empty, or a directive twice).
    fn parse(text: &str) -> Policy {
        let mut directives = BTreeMap::new();
        for part in text.split(';') {
            let mut tokens = part.split_ascii_whitespace().map(str::to_ascii_lowercase);
            let Some(name) = tokens.next() else { continue };
            let valid_name = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid_name || directives.insert(name, tokens.collect()).is_some() {
                return Policy { directives: None };
            }
        }
        Policy {
            directives: (!directives.is_empty()).then_some(directives),
        }
    }

    /// The sources that govern `directive`, falling back to `default-src`.
    fn sources(&self, directive: &str) -> Option<&[String]> {
        let directives = self.directives.as_ref()?;
        directives
            .get(directive)
            .or_else(|| directives.get("default-src"))
            .map(Vec::as_slice)
    }

    /// Whether the policy sets `frame-ancestors`.
    fn has_frame_ancestors(&self) -> bool {
        self.directives
            .as_ref()
            .is_some_and(|d| d.contains_key("frame-ancestors"))
    }
}

fn content_security_policy(policy: Option<&Policy>) -> TestResult {
    const TEST: &str = "content-security-policy";
    let Some(policy) = policy else {
        return result(
            TEST,
            "csp-not-implemented",
            -25,
            "Content-Security-Policy header not implemented",
        );
    };
    if policy.directives.is_none() {
        return result(
            TEST,
            "csp-header-invalid",
            -25,
            "Content-Security-Policy header cannot be parsed",
        );
    }
    let has = |sources: Option<&[String]>, token: &str| {
        sources.is_some_and(|s| s.iter().any(|t| t == token))
    };
    let insecure = |sources: Option<&[String]>| {
        sources.is_some_and(|s| {
            s.iter()
                .any(|t| t == "http:" || t.starts_with("http://") || t == "*")
        })
    };
    let scripts = policy.sources("script-src");
    let keyed = scripts.is_some_and(|s| {
        s.iter()
            .any(|t| t.starts_with("'nonce-") || t.starts_with("'sha"))
    });
    let active = ["script-src", "object-src", "style-src", "frame-src"]
        .iter()
        .any(|d| insecure(policy.sources(d)));
    let passive = ["img-src", "media-src", "font-src"]
        .iter()
        .any(|d| insecure(policy.sources(d)));
    if scripts.is_none() || (has(scripts, "'unsafe-inline'") && !keyed) || has(scripts, "data:") {
        return result(
            TEST,
            "csp-implemented-with-unsafe-inline",
            -20,
            "Content Security Policy allows inline scripts ('unsafe-inline', data:, or no script-src/default-src)",
        );
    }
    if active {
        return result(
            TEST,
            "csp-implemented-with-insecure-scheme",
            -20,
            "Content Security Policy allows scripts or styles from http: or any origin",
        );
    }
    if has(scripts, "'unsafe-eval'") {
        return result(
            TEST,
            "csp-implemented-with-unsafe-eval",
            -10,
            "Content Security Policy allows 'unsafe-eval'",
        );
    }
    if passive {
        return result(
            TEST,
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
            -10,
            "Content Security Policy allows images, media or fonts over http:",
        );
    }
    if has(policy.sources("style-src"), "'unsafe-inline'") {
        return result(
            TEST,
            "csp-implemented-with-unsafe-inline-in-style-src-only",
            0,
            "Content Security Policy allows inline styles only",
        );
    }
    let default_none = policy
        .directives
        .as_ref()
        .and_then(|d| d.get("default-src"))
        .is_some_and(|s| s == &["'none'"]);
    if default_none {
        result(
            TEST,
            "csp-implemented-with-no-unsafe-default-src-none",
            10,
            "Content Security Policy with default-src 'none' and nothing unsafe",
        )
    } else {
        result(
            TEST,
            "csp-implemented-with-no-unsafe",
            5,
            "Content Security Policy without 'unsafe-inline' or 'unsafe-eval'",
        )
    }
}

fn strict_transport_security(value: Option<&str>) -> TestResult {
    const TEST: &str = "strict-transport-security";
    let Some(value) = value else {
        return result(
            TEST,
            "hsts-not-implemented",
            -20,
            "Strict-Transport-Security header not implemented",
        );
    };
    let max_age = value.split(';').find_map(|part| {
        let (name, age) = part.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| age.trim().trim_matches('"').parse::<u64>().ok())?
    });
    match max_age {
        None => result(
            TEST,
            "hsts-header-invalid",
            -20,
            "Strict-Transport-Security header has no valid max-age",
        ),
        Some(age) if age < SIX_MONTHS => result(
            TEST,
            "hsts-implemented-max-age-less-than-six-months",
            -10,
            format!("HSTS max-age={age}, less than six months ({SIX_MONTHS})"),
        ),
        Some(age) => result(
            TEST,
            "hsts-implemented-max-age-at-least-six-months",
            0,
            format!("HSTS max-age={age}, at least six months"),
        ),
    }
}

fn x_content_type_options(value: Option<&str>) -> TestResult {
    const TEST: &str = "x-content-type-options";
    match value.map(str::trim) {
        None => result(
            TEST,
            "x-content-type-options-not-implemented",
            -5,
            "X-Content-Type-Options header not implemented",
        ),
        Some(v) if v.eq_ignore_ascii_case("nosniff") => result(
            TEST,
            "x-content-type-options-nosniff",
            0,
            "X-Content-Type-Options: nosniff",
        ),
        Some(v) => result(
            TEST,
            "x-content-type-options-header-invalid",
            -5,
            format!("X-Content-Type-Options is `{v}`, not nosniff"),
        ),
    }
}

fn x_frame_options(value: Option<&str>, csp: Option<&Policy>) -> TestResult {
    const TEST: &str = "x-frame-options";
    if csp.is_some_and(Policy::has_frame_ancestors) {
        return result(
            TEST,
            "x-frame-options-implemented-via-csp",
            5,
            "framing controlled by Content-Security-Policy frame-ancestors",
        );
    }
    let Some(value) = value.map(str::trim) else {
        return result(
            TEST,
            "x-frame-options-not-implemented",
            -20,
            "X-Frame-Options (or CSP frame-ancestors) not implemented",
        );
    };
    let upper = value.to_ascii_uppercase();
    if upper == "DENY" || upper == "SAMEORIGIN" {
        result(
            TEST,
            "x-frame-options-sameorigin-or-deny",
            0,
            format!("X-Frame-Options: {value}"),
        )
    } else if upper.starts_with("ALLOW-FROM ") {
        result(
            TEST,
            "x-frame-options-allow-from-origin",
            0,
            format!("X-Frame-Options: {value}"),
        )
    } else {
        result(
            TEST,
            "x-frame-options-header-invalid",
            -20,
            format!("X-Frame-Options is `{value}`, not DENY or SAMEORIGIN"),
        )
    }
}

fn referrer_policy(value: Option<&str>) -> TestResult {
    const TEST: &str = "referrer-policy";
    let Some(value) = value else {
        return result(
            TEST,
            "referrer-policy-not-implemented",
            0,
            "Referrer-Policy header not implemented",
        );
    };
    const PRIVATE: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const UNSAFE: [&str; 3] = ["origin", "origin-when-cross-origin", "unsafe-url"];
    // Browsers use the last policy they understand.
    let policy = value
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .rfind(|p| {
            PRIVATE.contains(&p.as_str())
                || UNSAFE.contains(&p.as_str())
                || p == "no-referrer-when-downgrade"
        });
    match policy.as_deref() {
        Some(p) if PRIVATE.contains(&p) => result(
            TEST,
            "referrer-policy-private",
            5,
            format!("Referrer-Policy: {p}"),
        ),
        Some("no-referrer-when-downgrade") => result(
            TEST,
            "referrer-policy-no-referrer-when-downgrade",
            0,
            "Referrer-Policy: no-referrer-when-downgrade",
        ),
        Some(p) => result(
            TEST,
            "referrer-policy-unsafe",
            -5,
            format!("Referrer-Policy: {p} sends the origin or more to other sites"),
        ),
        None => result(
            TEST,
            "referrer-policy-header-invalid",
            -5,
            format!("Referrer-Policy `{value}` names no known policy"),
        ),
    }
}

fn cross_origin_resource_policy(value: Option<&str>) -> TestResult {
    const TEST: &str = "cross-origin-resource-policy";
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => result(
            TEST,
            "cross-origin-resource-policy-not-implemented",
            0,
            "Cross-Origin-Resource-Policy header not implemented",
        ),
        Some("same-origin") => result(
            TEST,
            "cross-origin-resource-policy-implemented-with-same-origin",
            0,
            "Cross-Origin-Resource-Policy: same-origin",
        ),
        Some("same-site") => result(
            TEST,
            "cross-origin-resource-policy-implemented-with-same-site",
            0,
            "Cross-Origin-Resource-Policy: same-site",
        ),
        Some("cross-origin") => result(
            TEST,
            "cross-origin-resource-policy-implemented-with-cross-origin",
            0,
            "Cross-Origin-Resource-Policy: cross-origin",
        ),
        Some(other) => result(
            TEST,
            "cross-origin-resource-policy-header-invalid",
            -5,
            format!("Cross-Origin-Resource-Policy `{other}` is not a policy"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
            .collect()
    }

    fn results(score: &Score) -> Vec<(&str, i32)> {
        score.tests.iter().map(|t| (t.result, t.modifier)).collect()
    }

    /// The strong header set the integration tests serve.
    const STRONG: [(&str, &str); 5] = [
        (
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains; preload",
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ];

    /// The weak header set the integration tests serve.
    const WEAK: [(&str, &str); 3] = [
        (
            "Content-Security-Policy",
            "default-src 'self' 'unsafe-inline' 'unsafe-eval'",
        ),
        ("Strict-Transport-Security", "max-age=86400"),
        ("Referrer-Policy", "unsafe-url"),
    ];

    #[test]
    fn a_strong_header_set_earns_every_bonus() {
        let score = score(&headers(&STRONG));
        assert_eq!(
            results(&score),
            [
                ("csp-implemented-with-no-unsafe-default-src-none", 10),
                ("hsts-implemented-max-age-at-least-six-months", 0),
                ("x-content-type-options-nosniff", 0),
                ("x-frame-options-implemented-via-csp", 5),
                ("referrer-policy-private", 5),
                ("cross-origin-resource-policy-not-implemented", 0),
            ]
        );
        assert_eq!((score.score, score.grade), (120, Grade::APlus));
    }

    #[test]
    fn a_weak_header_set_loses_points_and_its_bonuses() {
        let score = score(&headers(&WEAK));
        assert_eq!(
            results(&score),
            [
                ("csp-implemented-with-unsafe-inline", -20),
                ("hsts-implemented-max-age-less-than-six-months", -10),
                ("x-content-type-options-not-implemented", -5),
                ("x-frame-options-not-implemented", -20),
                ("referrer-policy-unsafe", -5),
                ("cross-origin-resource-policy-not-implemented", 0),
            ]
        );
        assert_eq!((score.score, score.grade), (40, Grade::DPlus));
    }

    #[test]
    fn missing_or_invalid_headers_lose_their_penalties() {
        let score = score(&BTreeMap::new());
        assert_eq!((score.score, score.grade), (30, Grade::D));
        let mut bad = headers(&[
            ("Content-Security-Policy", ";"),
            ("Strict-Transport-Security", "includeSubDomains"),
            ("X-Frame-Options", "sometimes"),
            ("X-Content-Type-Options", "sniff"),
            ("Referrer-Policy", "whatever"),
        ]);
        bad.insert("cross-origin-resource-policy".into(), "nobody".into());
        let score = super::score(&bad);
        assert_eq!((score.score, score.grade), (20, Grade::F));
    }

    #[test]
    fn bonuses_count_only_from_ninety() {
        // −10 (unsafe-eval) + 5 (frame-ancestors) + 5 (referrer): 90 before bonuses, so 100.
        let score = score(&headers(&[
            (
                "Content-Security-Policy",
                "default-src 'self' 'unsafe-eval'; frame-ancestors 'self'",
            ),
            ("Strict-Transport-Security", "max-age=31536000"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ]));
        assert_eq!((score.score, score.grade), (100, Grade::APlus));
        // −20 (no X-Frame-Options): 80 before bonuses; the +5s are not counted.
        let score = super::score(&headers(&[
            ("Content-Security-Policy", "default-src 'self'"),
            ("Strict-Transport-Security", "max-age=31536000"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]));
        assert_eq!((score.score, score.grade), (80, Grade::BPlus));
    }

    #[test]
    fn csp_results_take_the_worst_finding() {
        let csp = |policy: &str| content_security_policy(Some(&Policy::parse(policy))).result;
        assert_eq!(csp("img-src 'self'"), "csp-implemented-with-unsafe-inline");
        assert_eq!(
            csp("default-src 'self'; script-src 'self' 'unsafe-inline' 'nonce-abc'"),
            "csp-implemented-with-no-unsafe"
        );
        assert_eq!(
            csp("default-src 'self'; script-src http://cdn.example.com"),
            "csp-implemented-with-insecure-scheme"
        );
        assert_eq!(
            csp("default-src 'self'; img-src http:"),
            "csp-implemented-with-insecure-scheme-in-passive-content-only"
        );
        assert_eq!(
            csp("default-src 'self'; style-src 'self' 'unsafe-inline'"),
            "csp-implemented-with-unsafe-inline-in-style-src-only"
        );
        assert_eq!(
            csp("default-src 'self'; default-src 'none'"),
            "csp-header-invalid"
        );
    }

    #[test]
    fn grades_follow_the_observatory_floors() {
        let cases = [
            (135, "A+"),
            (100, "A+"),
            (99, "A"),
            (85, "A-"),
            (84, "B+"),
            (70, "B"),
            (65, "B-"),
            (60, "C+"),
            (50, "C"),
            (45, "C-"),
            (40, "D+"),
            (30, "D"),
            (25, "D-"),
            (24, "F"),
        ];
        for (score, grade) in cases {
            assert_eq!(Grade::of(score).as_str(), grade, "{score}");
            assert_eq!(grade.parse::<Grade>(), Ok(Grade::of(score)));
        }
        assert!(Grade::BMinus < Grade::B);
        assert!("Z".parse::<Grade>().is_err());
    }
}
