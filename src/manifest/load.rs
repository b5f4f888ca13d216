//! YAML text to a typed [`Manifest`], with every problem found on the way.
//!
//! The pipeline: size and UTF-8 checks → `yaml_serde` parses to a `Value` (it rejects duplicate
//! keys, deep nesting and alias bombs, with a location) → merge keys are applied → top-level
//! `x-*` extension keys are dropped → each part (every database, Worker and binding) is
//! deserialised on its own, so one broken Worker does not hide the problems of another → the
//! typed parts are checked by [`validate`](super::validate). A separate pass over the text
//! ([`SpanIndex`]) turns each problem's path into a line and column.

use std::ops::Range;

use serde::de::DeserializeOwned;
use yaml_serde::{Mapping, Value};

use super::diagnostic::{Diagnostic, Location, Problem, Source, did_you_mean, floor_char_boundary};
use super::model::{
    AbsentBinding, BindingEntry, Capacity, D1Database, Manifest, Parity, SecretEntry, SecretSpec,
    Secrets, Worker,
};
use super::span::{NodePath, SpanIndex};
use super::validate::{self, Context};

/// Manifests larger than this are rejected before parsing: real ones are a few kilobytes. Files
/// are read only up to one byte past it.
pub(crate) const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// The fields of [`Manifest`]; a unit test keeps this list equal to the schema's.
const MANIFEST_FIELDS: &[&str] = &[
    "environment",
    "account_id",
    "d1_databases",
    "workers",
    "parity",
    "capacity",
];

/// One manifest after loading and validation.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) source: Source,
    pub(crate) spans: SpanIndex,
    /// The typed manifest when every part of it deserialised (it may still have other errors).
    pub(crate) manifest: Option<Manifest>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether the manifest has no errors.
    pub(crate) fn is_valid(&self) -> bool {
        self.manifest.is_some() && !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Load and check the manifest of `environment` from raw bytes; `label` names it in diagnostics.
pub(crate) fn check(label: &str, environment: &str, bytes: &[u8]) -> Checked {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    check_on(label, environment, bytes, today)
}

fn check_on(label: &str, environment: &str, bytes: &[u8], today: jiff::civil::Date) -> Checked {
    let rejected = |source: Source, problem: Problem| {
        let spans = SpanIndex::default();
        let diagnostics = vec![problem.place(&source, &spans)];
        Checked {
            source,
            spans,
            manifest: None,
            diagnostics,
        }
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
        let source = Source::new(label, head.lines().next().unwrap_or_default().to_owned());
        let problem = Problem::at_bytes(
            "manifest::too-large",
            0..0,
            format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes (1 MiB), the limit for manifests"),
        )
        .label("file starts here")
        .help("a manifest describes a handful of Workers and databases; check that this is the right file");
        return rejected(source, problem);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let at = err.valid_up_to();
            // The lossy text equals the input up to `at`, where U+FFFD replaces the bad bytes.
            let source = Source::new(label, String::from_utf8_lossy(bytes).into_owned());
            let problem = Problem::at_bytes(
                "manifest::encoding",
                at..at + char::REPLACEMENT_CHARACTER.len_utf8(),
                "the manifest is not valid UTF-8",
            )
            .label("invalid byte")
            .help("save the file as UTF-8");
            return rejected(source, problem);
        }
    };
    let source = Source::new(label, text);
    if let Some(at) = super::nesting::too_deep(text) {
        let limit = super::nesting::MAX_FLOW_DEPTH;
        let problem = Problem::at_bytes(
            "manifest::too-deep",
            at..at + 1,
            format!("flow collections (`[…]`, `{{…}}`) nest deeper than {limit} levels"),
        )
        .label(format!("level {}", limit + 1))
        .help("manifests nest a few levels deep; this file nests far deeper");
        // The excerpt ends at the offending bracket: the rest of such a line can be megabytes.
        return rejected(Source::new(label, &text[..=at]), problem);
    }
    let mut value = match yaml_serde::from_str::<Value>(text) {
        Ok(value) => value,
        Err(err) => return rejected(source, syntax_problem(&err, text)),
    };
    if let Err(err) = value.apply_merge() {
        return rejected(source, syntax_problem(&err, text));
    }
    let spans = SpanIndex::build(text);
    let mut problems = Vec::new();
    let structure = structure(value, &mut problems);
    let manifest = structure.and_then(|structure| {
        let context = Context {
            environment,
            today,
            broken_databases: &structure.broken_databases,
        };
        problems.extend(
            validate::validate(&structure.manifest, &context)
                .into_iter()
                .filter(|p| {
                    !structure
                        .absent
                        .iter()
                        .any(|a| p.path().is_some_and(|path| path.starts_with(a)))
                })
                // A binding that did not deserialise may be the one that binds the database.
                .filter(|p| structure.complete || p.code != "manifest::unbound-database"),
        );
        structure.complete.then_some(structure.manifest)
    });
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|problem| problem.place(&source, &spans))
        .collect();
    // A problem inside a merged anchor shows up once per place that merges it.
    diagnostics.sort_by(|a, b| {
        (a.line, a.column, a.code, &a.message).cmp(&(b.line, b.column, b.code, &b.message))
    });
    diagnostics.dedup_by(|a, b| {
        (a.line, a.column, a.code, &a.message) == (b.line, b.column, b.code, &b.message)
    });
    Checked {
        source,
        spans,
        manifest,
        diagnostics,
    }
}

/// Finds where in the text a `yaml_serde` error really is.
type ExactPlace = fn(&SpanIndex) -> Option<Range<usize>>;

/// A `yaml_serde` error (syntax, duplicate key, nesting, alias expansion) at its location.
fn syntax_problem(err: &yaml_serde::Error, text: &str) -> Problem {
    let message = err.to_string();
    // The location is shown by the diagnostic itself.
    let message = match (message.find(" at line "), message.find(", ")) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{}", &message[..start], &message[end..])
        }
        (Some(start), _) => message[..start].to_owned(),
        _ => message,
    };
    let at = err.location().map_or(0, |location| {
        floor_char_boundary(text, location.index().min(text.len()))
    });
    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    // yaml_serde places these at the document or mapping; the span pass finds the exact place.
    let (code, label, help, exact): (_, _, _, ExactPlace) = if message.contains("duplicate entry") {
        (
            "manifest::duplicate-key",
            "repeated key",
            "each key may appear once in a mapping; remove or rename one",
            SpanIndex::first_duplicate,
        )
    } else if message.contains("for merging") {
        (
            "manifest::merge-key",
            "not a mapping",
            "`<<` merges mappings: write `<<: *anchor` or `<<: [*one, *other]`",
            SpanIndex::first_scalar_merge,
        )
    } else if message.contains("more than one document") {
        (
            "manifest::documents",
            "second document",
            "a manifest is one YAML document: remove this `---` and what follows, or move it to its own file",
            SpanIndex::second_document,
        )
    } else {
        let (code, help) = if message.contains("recursion limit") {
            (
                "manifest::too-deep",
                "manifests nest a few levels deep; this file nests far deeper",
            )
        } else if message.contains("repetition limit") {
            (
                "manifest::alias-expansion",
                "aliases expand to too many nodes; use fewer nested aliases",
            )
        } else if text[at..].starts_with('\t') {
            (
                "manifest::syntax",
                "YAML indents with spaces, never tabs: replace this tab with spaces",
            )
        } else {
            ("manifest::syntax", "fix the YAML syntax at this position")
        };
        return Problem::at_bytes(code, at..end, message)
            .label("here")
            .help(help);
    };
    let range = exact(&SpanIndex::build(text)).unwrap_or(at..end);
    Problem::at_bytes(code, range, message)
        .label(label)
        .help(help)
}

/// The parts of a manifest that deserialised.
struct Structure {
    manifest: Manifest,
    /// Keys of databases that did not deserialise: references to them are not reported again.
    broken_databases: Vec<String>,
    /// Whether every part deserialised.
    complete: bool,
    /// Required fields that were missing or broken (already reported; their stand-in values are
    /// not checked again).
    absent: Vec<NodePath>,
}

/// Deserialise the parts of a manifest one by one. `None` when the whole is not a mapping.
fn structure(value: Value, problems: &mut Vec<Problem>) -> Option<Structure> {
    let root = match value {
        Value::Mapping(mapping) => mapping,
        Value::Null => {
            problems.push(
                Problem::at_bytes("manifest::empty", 0..0, "the manifest is empty")
                    .label("nothing here")
                    .help("a manifest needs at least `environment` and `account_id`; see schemas/environment.schema.json"),
            );
            return None;
        }
        other => {
            problems.push(
                Problem::error(
                    "manifest::type",
                    NodePath::new(),
                    format!("the manifest is {}, not a mapping of fields", kind(&other)),
                )
                .label("expected a mapping")
                .help("a manifest is a mapping with `environment`, `account_id`, `d1_databases` and `workers`"),
            );
            return None;
        }
    };
    let mut environment = None;
    let mut account_id = None;
    let mut d1_databases = Default::default();
    let mut workers = Default::default();
    let mut parity = Parity::default();
    let mut capacity = Capacity::default();
    let mut broken_databases = Vec::new();
    let before = problems.len();
    for (key, value) in root {
        let Some(key) = key.as_str().map(str::to_owned) else {
            problems.push(
                Problem::error(
                    "manifest::type",
                    NodePath::new(),
                    "a top-level key is not a string",
                )
                .label("expected string keys")
                .help("top-level keys are field names such as `workers`"),
            );
            continue;
        };
        let at = vec![key.clone()];
        match key.as_str() {
            _ if key.starts_with("x-") => {}
            "environment" => environment = part::<String>(value, &at, problems),
            "account_id" => account_id = part::<String>(value, &at, problems),
            "d1_databases" => {
                let parsed = keyed::<D1Database>(value, &at, problems, |_, value, at, problems| {
                    part(value, at, problems)
                });
                if let Some((parsed, broken)) = parsed {
                    d1_databases = parsed;
                    broken_databases = broken;
                }
            }
            "workers" => {
                if let Some((parsed, _)) = keyed::<Worker>(value, &at, problems, worker) {
                    workers = parsed;
                }
            }
            "parity" => {
                if let Some(parsed) = part(value, &at, problems) {
                    parity = parsed;
                }
            }
            "capacity" => {
                if let Some(parsed) = part(value, &at, problems) {
                    capacity = parsed;
                }
            }
            _ => problems.push(unknown_field(&[], &key, MANIFEST_FIELDS)),
        }
    }
    let mut absent = Vec::new();
    for (field, present) in [("environment", &environment), ("account_id", &account_id)] {
        let path = vec![field.to_owned()];
        if present.is_none() {
            if !problems.iter().any(|p| p.path() == Some(&path[..])) {
                problems.push(missing_field(&[], field));
            }
            absent.push(path);
        }
    }
    let manifest = Manifest {
        environment: environment.unwrap_or_default(),
        account_id: account_id.unwrap_or_default(),
        d1_databases,
        workers,
        parity,
        capacity,
    };
    Some(Structure {
        manifest,
        broken_databases,
        complete: problems.len() == before,
        absent,
    })
}

/// A mapping of key → part, each part deserialised on its own by `each`. Returns the parts that
/// worked and the keys of those that did not; `None` when the value is not a mapping at all.
fn keyed<T>(
    value: Value,
    at: &[String],
    problems: &mut Vec<Problem>,
    each: fn(&str, Value, &[String], &mut Vec<Problem>) -> Option<T>,
) -> Option<(indexmap::IndexMap<String, T>, Vec<String>)> {
    let mapping = match value {
        Value::Mapping(mapping) => mapping,
        Value::Null => Mapping::new(),
        other => {
            problems.push(type_mismatch(at, &other, "a mapping of keys"));
            return None;
        }
    };
    let mut parsed = indexmap::IndexMap::new();
    let mut broken = Vec::new();
    for (key, value) in mapping {
        let key = match key {
            Value::String(key) => key,
            other => {
                problems.push(
                    Problem::error(
                        "manifest::type",
                        at.to_vec(),
                        format!("a key is {}, not a string", kind(&other)),
                    )
                    .label("expected string keys")
                    .help("keys are names such as `api` or `main`"),
                );
                continue;
            }
        };
        let mut child = at.to_vec();
        child.push(key.clone());
        match each(&key, value, &child, problems) {
            Some(part) => {
                parsed.insert(key, part);
            }
            None => broken.push(key),
        }
    }
    Some((parsed, broken))
}

/// A Worker, with each binding and each secret deserialised on its own.
fn worker(_key: &str, value: Value, at: &[String], problems: &mut Vec<Problem>) -> Option<Worker> {
    let mut value = value;
    let (bindings, secrets) = match &mut value {
        Value::Mapping(mapping) => (mapping.remove("bindings"), mapping.remove("secrets")),
        _ => (None, None),
    };
    let mut worker: Worker = part(value, at, problems)?;
    let mut child = at.to_vec();
    child.push("bindings".to_owned());
    if let Some((bindings, _)) = keyed(bindings.unwrap_or(Value::Null), &child, problems, binding) {
        worker.bindings = bindings.into_iter().collect();
    }
    child.pop();
    child.push("secrets".to_owned());
    worker.secrets = secret_entries(secrets.unwrap_or(Value::Null), &child, problems);
    Some(worker)
}

/// A binding, or `{ absent: true }`; an unknown `type` is reported on the `type` value.
fn binding(
    _name: &str,
    value: Value,
    at: &[String],
    problems: &mut Vec<Problem>,
) -> Option<BindingEntry> {
    if let Value::Mapping(mapping) = &value {
        if mapping.contains_key("absent") {
            if let Some(other) = mapping
                .keys()
                .filter_map(Value::as_str)
                .find(|key| *key != "absent")
            {
                let mut path = at.to_vec();
                path.push(other.to_owned());
                problems.push(
                    Problem::error(
                        "manifest::absent-with-fields",
                        path,
                        format!("a binding marked `absent` takes no other fields, but this one has `{other}`"),
                    )
                    .on_key()
                    .label("not allowed beside `absent`")
                    .help("to remove the binding, write only `absent: true`; to keep it, remove `absent`"),
                );
                return None;
            }
            return part::<AbsentBinding>(value, at, problems).map(BindingEntry::Absent);
        }
    }
    let has_type = matches!(&value, Value::Mapping(mapping) if mapping.contains_key("type"));
    let before = problems.len();
    let parsed = part(value, at, problems);
    for problem in &mut problems[before..] {
        if let (true, "manifest::unknown-variant", Location::Node(path, _)) =
            (has_type, problem.code, &mut problem.location)
        {
            if path.as_slice() == at {
                path.push("type".to_owned());
            }
        }
    }
    parsed.map(BindingEntry::Declared)
}

/// A Worker's `secrets`: each entry a name, or `{ name: NAME, absent: true }`.
fn secret_entries(value: Value, at: &[String], problems: &mut Vec<Problem>) -> Secrets {
    let entries = match value {
        Value::Sequence(entries) => entries,
        Value::Null => return Secrets::default(),
        other => {
            problems.push(type_mismatch(at, &other, "a list of secret names"));
            return Secrets::default();
        }
    };
    let mut secrets = Secrets::default();
    for (index, entry) in entries.into_iter().enumerate() {
        let mut child = at.to_vec();
        child.push(index.to_string());
        match entry {
            Value::String(name) => secrets.push(name),
            Value::Mapping(_) => {
                if let Some(spec) = part::<SecretSpec>(entry, &child, problems) {
                    secrets.push_entry(SecretEntry::Spec(spec));
                }
            }
            other => problems.push(type_mismatch(
                &child,
                &other,
                "a secret's name, or a mapping with `name`",
            )),
        }
    }
    secrets
}

/// Deserialise one part, reporting a failure at the path where it happened.
fn part<T: DeserializeOwned>(
    value: Value,
    at: &[String],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            let mut path = at.to_vec();
            for segment in err.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => path.push(index.to_string()),
                    serde_path_to_error::Segment::Map { key } => path.push(key.clone()),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => {}
                }
            }
            problems.push(serde_problem(path, &err.into_inner().to_string()));
            None
        }
    }
}

/// Turn serde's message into a diagnostic: unknown fields and variants get a did-you-mean.
fn serde_problem(path: NodePath, message: &str) -> Problem {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return unknown_field(&path, field, &quoted[1.min(quoted.len())..]);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return missing_field(&path, field);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let variant = rest.split('`').next().unwrap_or_default();
        let expected = &quoted[1.min(quoted.len())..];
        let problem = Problem::error(
            "manifest::unknown-variant",
            path,
            format!("unknown value `{variant}`"),
        )
        .label(format!("expected one of {}", list(expected)));
        return match did_you_mean(variant, expected.iter().copied()) {
            Some(close) => problem.help(format!("did you mean `{close}`?")),
            None => problem.help(format!("use one of {}", list(expected))),
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest
            .split_once(", expected ")
            .unwrap_or((rest, "another type"));
        let values;
        let expected = match expected {
            "a sequence" => "a list",
            "a map" => "a mapping",
            // The YAML library names its own type for an enum written as a number or a list.
            enumeration if enumeration.contains("enum") => {
                values = enum_values(&path)
                    .map(|values| format!("one of {}", list(&values)))
                    .unwrap_or_else(|| "one of the values the schema lists".to_owned());
                values.as_str()
            }
            other => other,
        };
        return Problem::error(
            "manifest::type",
            path,
            format!("wrong type: found {found}, expected {expected}"),
        )
        .label(format!("expected {expected}"))
        .help("see schemas/environment.schema.json for the type of each field");
    }
    Problem::error("manifest::type", path, message.to_owned())
        .label("here")
        .help("see schemas/environment.schema.json for the shape of a manifest")
}

/// The values of the enumerated field at `path`, for a message that names them.
fn enum_values(path: &[String]) -> Option<Vec<&'static str>> {
    use super::model::LocationHint;
    match path.last().map(String::as_str) {
        Some("location_hint") => Some(
            [
                LocationHint::Wnam,
                LocationHint::Enam,
                LocationHint::Weur,
                LocationHint::Eeur,
                LocationHint::Apac,
                LocationHint::Oc,
            ]
            .map(LocationHint::as_str)
            .to_vec(),
        ),
        _ => None,
    }
}

fn unknown_field(at: &[String], field: &str, expected: &[&str]) -> Problem {
    let mut path = at.to_vec();
    path.push(field.to_owned());
    let problem = Problem::error(
        "manifest::unknown-field",
        path,
        format!("unknown field `{field}`"),
    )
    .on_key()
    .label("unknown field");
    match did_you_mean(field, expected.iter().copied()) {
        Some(close) => problem.help(format!("did you mean `{close}`?")),
        None if expected.is_empty() => {
            problem.help("remove it: this mapping takes no other fields")
        }
        None => problem.help(format!("expected one of {}", list(expected))),
    }
}

fn missing_field(at: &[String], field: &str) -> Problem {
    Problem::error(
        "manifest::missing-field",
        at.to_vec(),
        format!("missing field `{field}`"),
    )
    .on_key()
    .label(format!("`{field}` missing here"))
    .help(format!(
        "add `{field}`; see schemas/environment.schema.json"
    ))
}

fn type_mismatch(at: &[String], found: &Value, expected: &str) -> Problem {
    Problem::error(
        "manifest::type",
        at.to_vec(),
        format!("wrong type: found {}, expected {expected}", kind(found)),
    )
    .label(format!("expected {expected}"))
    .help("see schemas/environment.schema.json for the type of each field")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> jiff::civil::Date {
        jiff::civil::Date::constant(2025, 6, 1)
    }

    fn codes(text: &str) -> Vec<(&'static str, usize)> {
        check_on("staging.yaml", "staging", text.as_bytes(), today())
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line))
            .collect()
    }

    const VALID: &str = "\
environment: staging
account_id: 0123456789abcdef0123456789abcdef
x-headers: &headers
  X-Frame-Options: DENY
d1_databases:
  main: { name: lms-db-staging }
workers:
  api:
    name: lms-api-staging
    compatibility_date: \"2024-12-01\"
    bindings:
      DB: { type: d1, database: main }
    headers:
      url: https://lms-api-staging.example.workers.dev/health
      require:
        <<: *headers
";

    #[test]
    fn a_valid_manifest_with_merge_keys_loads() {
        let checked = check_on("staging.yaml", "staging", VALID.as_bytes(), today());
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let manifest = checked.manifest.unwrap();
        let headers = manifest.workers["api"].headers.as_ref().unwrap();
        assert_eq!(headers.require["X-Frame-Options"], "DENY");
    }

    #[test]
    fn problems_in_two_workers_are_both_reported() {
        let text = VALID.replace("    bindings:", "    colour: red\n    bindings:")
            + "  viewer:\n    name: lms-viewer\n    compatibility_date: 5\n";
        let found = codes(&text);
        assert_eq!(
            found,
            [("manifest::unknown-field", 11), ("manifest::type", 20)]
        );
    }

    #[test]
    fn a_number_for_a_location_hint_names_the_values_not_the_yaml_library() {
        let text = VALID.replace(
            "{ name: lms-db-staging }",
            "{ name: lms-db-staging, location_hint: 3 }",
        );
        let checked = check_on("s.yaml", "staging", text.as_bytes(), today());
        let diagnostic = &checked.diagnostics[0];
        let said = format!("{} {}", diagnostic.message, diagnostic.label);
        assert!(said.contains("expected one of `wnam`, `enam`,"), "{said}");
        assert!(
            !said.contains("Value::") && !said.contains("Tagged"),
            "{said}"
        );
    }

    #[test]
    fn typo_in_d1_binding_field_suggests_database() {
        let checked = check_on(
            "s.yaml",
            "staging",
            VALID.replace("database: main", "databse: main").as_bytes(),
            today(),
        );
        let diagnostic = &checked.diagnostics[0];
        assert_eq!((diagnostic.line, diagnostic.column), (12, 23));
        assert_eq!(diagnostic.help.as_deref(), Some("did you mean `database`?"));
    }

    #[test]
    fn manifest_fields_match_the_schema() {
        let schema = serde_json::to_value(schemars::schema_for!(Manifest)).unwrap();
        let properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(properties, MANIFEST_FIELDS);
    }
}
