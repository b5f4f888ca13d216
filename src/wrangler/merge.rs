//! Sections into a wrangler configuration file that may already exist: a project keeps one file
//! for every environment, with keys lmsinfra does not manage (`main`, `triggers`, an
//! `observability` the manifest does not declare, …) and, in JSONC, comments. Writing one environment must keep all of that, so the file is
//! edited in place: only the managed keys of the written sections change.
//!
//! Production is written twice: at the top level, which plain `wrangler deploy` reads, and as
//! `env.production`, which `wrangler deploy --env production` needs (wrangler refuses an `--env`
//! without a section).
//!
//! A file that cannot be read, or whose section describes another Worker, is not merged into
//! (that would clobber it) unless the caller asks to replace it whole.

use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::{Map, Value};

use super::export::{MANAGED, Section, WHEN_DECLARED};
use super::{Config, Error};

/// What wrangler's own configurations name as their schema.
const SCHEMA: &str = "./node_modules/wrangler/config-schema.json";

/// How a configuration file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// `wrangler.json` and `wrangler.jsonc`: JSON with comments, edited keeping its comments.
    Json,
    /// `wrangler.toml`.
    Toml,
}

impl Syntax {
    /// The syntax wrangler reads from a file with this name.
    pub(crate) fn of(path: &std::path::Path) -> Syntax {
        if path.extension().is_some_and(|ext| ext == "toml") {
            Syntax::Toml
        } else {
            Syntax::Json
        }
    }
}

/// A configuration file as it is before the write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Existing<'a> {
    /// The file, for messages.
    pub(crate) path: &'a std::path::Path,
    /// Its text.
    pub(crate) text: &'a str,
}

/// The text of the configuration that holds `sections` and `main`, starting from `existing`
/// (a new file when `None`). Refused when merging would clobber what the file says.
pub(crate) fn merge(
    syntax: Syntax,
    existing: Option<Existing<'_>>,
    sections: &[Section],
    main: Option<&str>,
) -> Result<String, Error> {
    if let Some(existing) = existing {
        refuse_clobbering(syntax, existing, sections)?;
    }
    match syntax {
        Syntax::Json => Ok(merge_json(existing.map(|e| e.text), sections, main)),
        Syntax::Toml => merge_toml(existing, sections, main),
    }
}

/// Refuse a file that is not a configuration lmsinfra can read, a TOML file with comments (TOML
/// is rewritten whole, which would drop them), and a section that names another Worker.
fn refuse_clobbering(
    syntax: Syntax,
    existing: Existing<'_>,
    sections: &[Section],
) -> Result<(), Error> {
    let refuse = |reason: String| Error::WouldClobber {
        path: existing.path.to_owned(),
        reason,
    };
    let table = parse(syntax, existing.text).map_err(|reason| {
        refuse(format!(
            "is not a wrangler configuration lmsinfra can read ({reason})"
        ))
    })?;
    if syntax == Syntax::Toml && existing.text.lines().any(|l| l.trim().starts_with('#')) {
        return Err(refuse(
            "has comments, which rewriting a TOML file would drop (a wrangler.jsonc keeps them)"
                .to_owned(),
        ));
    }
    let config = Config {
        path: existing.path.to_owned(),
        table,
    };
    let top_name = config.table.get("name").and_then(Value::as_str);
    for section in sections {
        let wanted = section.fields.get("name").and_then(Value::as_str);
        let present = config
            .resolve(&section.environment)
            .ok()
            .flatten()
            .and_then(|worker| worker.name);
        // A new `[env.NAME]` belongs to the file's Worker when its name extends the top
        // level's (`lms-api` → `lms-api-staging`).
        let other_worker = match (&present, top_name) {
            (Some(present), _) => wanted.is_some_and(|w| w != present),
            (None, Some(top)) => wanted.is_some_and(|w| !w.starts_with(top)),
            (None, None) => false,
        };
        if let (true, Some(wanted)) = (other_worker, wanted) {
            let place = if section.is_top_level() || present.is_none() {
                "its top level".to_owned()
            } else {
                format!("[env.{}]", section.environment)
            };
            let present = present.unwrap_or_else(|| top_name.unwrap_or_default().to_owned());
            return Err(refuse(format!(
                "describes the Worker {present} in {place}, not {wanted}"
            )));
        }
    }
    Ok(())
}

/// A configuration's top-level table, or why it is not one.
fn parse(syntax: Syntax, text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = match syntax {
        Syntax::Toml => toml::from_str(text).map_err(|e| e.message().to_owned())?,
        Syntax::Json => jsonc_parser::parse_to_serde_value(text, &Default::default())
            .map_err(|e| e.kind().to_string())?,
    };
    match value {
        Value::Object(table) => Ok(table),
        _ => Err("the top level is not an object".to_owned()),
    }
}

fn merge_json(existing: Option<&str>, sections: &[Section], main: Option<&str>) -> String {
    let parsed = existing.and_then(|text| CstRootNode::parse(text, &Default::default()).ok());
    let root = match parsed {
        Some(root) => root,
        None => {
            let root =
                CstRootNode::parse("{\n}\n", &Default::default()).expect("an empty object parses");
            root.object_value_or_set()
                .append("$schema", CstInputValue::String(SCHEMA.to_owned()));
            root
        }
    };
    let top = root.object_value_or_set();
    if let Some(main) = main {
        set_json(&top, "main", &Value::String(main.to_owned()));
    }
    let place = |object: &CstObject, section: &Section| {
        for key in MANAGED {
            match section.fields.get(key) {
                Some(value) => set_json(object, key, value),
                None => {
                    if let Some(prop) = object.get(key) {
                        prop.remove();
                    }
                }
            }
        }
        for key in WHEN_DECLARED {
            if let Some(value) = section.fields.get(key) {
                set_json(object, key, value);
            }
        }
    };
    for section in sections {
        // The top level first, so a new file lists its keys before `env`.
        if section.is_top_level() {
            place(&top, section);
        }
        let env = top
            .object_value_or_set("env")
            .object_value_or_set(&section.environment);
        place(&env, section);
    }
    let mut text = root.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Set `key` of `object` to `value`, in place when it exists (keeping its comments), else last.
fn set_json(object: &CstObject, key: &str, value: &Value) {
    let input = input_value(value);
    match object.get(key) {
        Some(prop) => prop.set_value(input),
        None => {
            object.append(key, input);
        }
    }
}

fn input_value(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input_value).collect()),
        Value::Object(map) => CstInputValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), input_value(v)))
                .collect(),
        ),
    }
}

fn merge_toml(
    existing: Option<Existing<'_>>,
    sections: &[Section],
    main: Option<&str>,
) -> Result<String, Error> {
    let mut table = match existing {
        Some(existing) => parse(Syntax::Toml, existing.text).unwrap_or_default(),
        None => Map::new(),
    };
    if let Some(main) = main {
        table.insert("main".into(), Value::String(main.to_owned()));
    }
    for section in sections {
        let place = |object: &mut Map<String, Value>| {
            for key in MANAGED {
                match section.fields.get(key) {
                    Some(value) => {
                        object.insert(key.to_owned(), value.clone());
                    }
                    None => {
                        object.shift_remove(key);
                    }
                }
            }
            for key in WHEN_DECLARED {
                if let Some(value) = section.fields.get(key) {
                    object.insert(key.to_owned(), value.clone());
                }
            }
        };
        if section.is_top_level() {
            place(&mut table);
        }
        let envs = object_entry(&mut table, "env");
        place(object_entry(envs, &section.environment));
    }
    toml::to_string_pretty(&table).map_err(|e| Error::Read {
        path: existing.map(|e| e.path.to_owned()).unwrap_or_default(),
        reason: e.to_string(),
    })
}

/// The object at `key` of `map`, made an empty one when it is missing or not an object.
fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let entry = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("made an object above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(environment: &str, name: &str, mode: &str) -> Section {
        let fields = json!({
            "name": name,
            "compatibility_date": "2024-12-01",
            "compatibility_flags": ["nodejs_compat"],
            "vars": { "MODE": mode },
            "routes": [],
        });
        Section {
            environment: environment.to_owned(),
            fields: fields.as_object().expect("object").clone(),
        }
    }

    fn value(syntax: Syntax, text: &str) -> Value {
        Value::Object(parse(syntax, text).expect("the written configuration parses"))
    }

    #[test]
    fn a_second_environment_joins_the_first_and_keeps_comments_and_other_keys() {
        let path = std::path::Path::new("wrangler.jsonc");
        let first = merge(
            Syntax::Json,
            None,
            &[section("production", "lms-api", "prod")],
            Some("index.js"),
        )
        .unwrap();
        let edited = first.replacen(
            "{",
            "{\n  // deployed by the LMS team\n  \"triggers\": { \"crons\": [\"0 * * * *\"] },",
            1,
        );
        let existing = Existing {
            path,
            text: &edited,
        };
        let both = merge(
            Syntax::Json,
            Some(existing),
            &[section("staging", "lms-api-staging", "staging")],
            None,
        )
        .unwrap();
        assert!(both.contains("// deployed by the LMS team"), "{both}");
        let both = value(Syntax::Json, &both);
        assert_eq!(both["name"], "lms-api");
        assert_eq!(both["env"]["production"]["name"], "lms-api");
        assert_eq!(both["main"], "index.js");
        assert_eq!(both["triggers"], json!({ "crons": ["0 * * * *"] }));
        assert_eq!(both["env"]["staging"]["name"], "lms-api-staging");
        assert_eq!(both["env"]["staging"]["vars"], json!({ "MODE": "staging" }));
    }

    #[test]
    fn a_managed_key_the_manifest_leaves_out_is_removed() {
        let text = r#"{ "name": "lms-api", "kv_namespaces": [{ "binding": "OLD", "id": "1" }], "main": "a.js" }"#;
        let existing = Existing {
            path: std::path::Path::new("wrangler.json"),
            text,
        };
        let merged = merge(
            Syntax::Json,
            Some(existing),
            &[section("production", "lms-api", "prod")],
            None,
        )
        .unwrap();
        let merged = value(Syntax::Json, &merged);
        assert!(merged.get("kv_namespaces").is_none(), "{merged}");
        assert_eq!(merged["main"], "a.js");
    }

    #[test]
    fn workers_logs_are_written_when_declared_and_kept_when_not() {
        let text = r#"{ "name": "lms-api", "observability": { "enabled": false, "logs": { "invocation_logs": true } } }"#;
        for syntax in [Syntax::Json, Syntax::Toml] {
            let text = match syntax {
                Syntax::Json => text.to_owned(),
                Syntax::Toml => toml::to_string(&value(Syntax::Json, text)).unwrap(),
            };
            let existing = |text| Existing {
                path: std::path::Path::new("wrangler.json"),
                text,
            };
            let undeclared = section("production", "lms-api", "prod");
            let kept = merge(
                syntax,
                Some(existing(&text)),
                std::slice::from_ref(&undeclared),
                None,
            )
            .unwrap();
            assert_eq!(
                value(syntax, &kept)["observability"],
                json!({ "enabled": false, "logs": { "invocation_logs": true } }),
                "{kept}"
            );
            let mut declared = undeclared;
            declared
                .fields
                .insert("observability".into(), json!({ "enabled": true }));
            let written = merge(syntax, Some(existing(&text)), &[declared], None).unwrap();
            assert_eq!(
                value(syntax, &written)["observability"],
                json!({ "enabled": true }),
                "{written}"
            );
        }
    }

    #[test]
    fn a_section_of_another_worker_or_an_unreadable_file_is_not_clobbered() {
        let path = std::path::Path::new("wrangler.json");
        for (text, reason) in [
            (
                r#"{ "name": "lms-viewer" }"#,
                "describes the Worker lms-viewer in its top level",
            ),
            (
                r#"{ "name": "lms-api", "env": { "staging": { "name": "lms-viewer-staging" } } }"#,
                "describes the Worker lms-viewer-staging in [env.staging]",
            ),
            ("{ not json", "is not a wrangler configuration"),
        ] {
            let err = merge(
                Syntax::Json,
                Some(Existing { path, text }),
                &[section("staging", "lms-api-staging", "staging")],
                None,
            )
            .unwrap_err();
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn toml_is_merged_and_refused_only_when_it_has_comments() {
        let path = std::path::Path::new("wrangler.toml");
        let text = "name = \"lms-api\"\nmain = \"index.js\"\n";
        let merged = merge(
            Syntax::Toml,
            Some(Existing { path, text }),
            &[section("staging", "lms-api-staging", "staging")],
            None,
        )
        .unwrap();
        let merged = value(Syntax::Toml, &merged);
        assert_eq!(merged["main"], "index.js");
        assert_eq!(merged["env"]["staging"]["routes"], json!([]));
        let commented = format!("# ours\n{text}");
        let err = merge(
            Syntax::Toml,
            Some(Existing {
                path,
                text: &commented,
            }),
            &[section("staging", "lms-api-staging", "staging")],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("has comments"), "{err}");
    }
}
