//! Workload B of the benchmarks: an environment of 200 Workers (a d1 binding, a plain-text
//! binding and two secrets each) and 50 D1 databases, and an account to run it against.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub const ACCOUNT_ID: &str = "0123456789abcdef0123456789abcdef";
pub const WORKERS: usize = 200;
pub const DATABASES: usize = 50;
/// The environment's name: `environments/bench.yaml`.
pub const ENVIRONMENT: &str = "bench";
/// The secrets every Worker requires.
pub const SECRETS: [&str; 2] = ["API_SECRET", "SIGNING_KEY"];

/// The name of Worker `i`.
pub fn worker_name(i: usize) -> String {
    format!("bench-worker-{i:03}")
}

/// Write `environments/bench.yaml` into `dir` and the seed of an account for it, and return the
/// seed's path. With `as_declared` the account already matches the manifest (a plan finds
/// nothing to do); without, the scripts exist with no bindings or secrets and the databases do
/// not exist (an apply creates 50 databases and writes every Worker).
pub fn generate(dir: &Path, as_declared: bool) -> PathBuf {
    let databases: Vec<(String, String)> = (0..DATABASES)
        .map(|i| {
            (
                format!("bench-db-{i:03}"),
                format!("00000000-0000-4000-8000-{i:012}"),
            )
        })
        .collect();
    let mut yaml = format!(
        "environment: {ENVIRONMENT}\naccount_id: {ACCOUNT_ID}\nd1_databases:\n{}workers:\n",
        databases
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("  db{i:03}: {{ name: {name} }}\n"))
            .collect::<String>()
    );
    let mut scripts = serde_json::Map::new();
    for i in 0..WORKERS {
        let name = worker_name(i);
        let db = i % DATABASES;
        let origin = format!("https://{name}.example.workers.dev");
        yaml.push_str(&format!(
            "  w{i:03}:\n    name: {name}\n    compatibility_date: \"2024-12-01\"\n    bindings:\n      DB: {{ type: d1, database: db{db:03} }}\n      ORIGIN: {{ type: plain_text, text: \"{origin}\" }}\n    secrets: [{}]\n",
            SECRETS.join(", ")
        ));
        let module =
            format!("export default {{ fetch() {{ return new Response(\"{name}\"); }} }};");
        let (bindings, secrets) = if as_declared {
            (
                json!([
                    {"name": "DB", "type": "d1", "database_id": databases[db].1},
                    {"name": "ORIGIN", "type": "plain_text", "text": origin},
                    {"name": SECRETS[0], "type": "secret_text"},
                    {"name": SECRETS[1], "type": "secret_text"},
                ]),
                json!({SECRETS[0]: "0".repeat(64), SECRETS[1]: "1".repeat(64)}),
            )
        } else {
            (json!([]), json!({}))
        };
        scripts.insert(
            name,
            json!({
                "created_on": "2024-12-02T09:30:00Z",
                "modified_on": "2024-12-02T09:30:00Z",
                "main_module": "worker.js",
                "modules": [{"name": "worker.js", "content_type": "application/javascript+module", "content": module}],
                "settings": {"compatibility_date": "2024-12-01", "compatibility_flags": []},
                "bindings": bindings,
                "secrets": secrets,
            }),
        );
    }
    let d1: Vec<Value> = if as_declared {
        databases
            .iter()
            .map(|(name, uuid)| {
                json!({"uuid": uuid, "name": name, "created_at": "2024-11-15T10:00:00Z"})
            })
            .collect()
    } else {
        Vec::new()
    };
    let seed = json!({
        "account": {
            "id": ACCOUNT_ID,
            "name": "Bench",
            "created_on": "2024-11-01T08:00:00Z",
            "subdomain": "example",
            "scripts": scripts,
            "d1_databases": d1,
        },
        "user": {"id": "fedcba9876543210fedcba9876543210", "email": "ops@example.com"},
    });
    std::fs::create_dir_all(dir.join("environments")).expect("environments folder");
    std::fs::write(dir.join(format!("environments/{ENVIRONMENT}.yaml")), yaml)
        .expect("manifest written");
    let seed_path = dir.join("seed.json");
    std::fs::write(&seed_path, serde_json::to_vec(&seed).expect("JSON")).expect("seed written");
    seed_path
}
