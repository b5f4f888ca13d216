//! `lmsinfra migrate status|new|down|baseline`: a database's migrations beyond what `plan` and
//! `apply` do with them.

use std::io::IsTerminal;

use serde_json::json;

use crate::account::Account;
use crate::cli::{
    DiagnosticFormat, MigrateBaselineArgs, MigrateCommand, MigrateDownArgs, MigrateNewArgs,
    MigrateStatusArgs,
};
use crate::cloudflare::Client;
use crate::error::{Error, Outcome};
use crate::manifest::model::{D1Database, Migrations};
use crate::manifest::{self, Manifest};
use crate::migrations::{self, Ledger, MigrationSet, State, ledger};
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn migrate(
    settings: &Settings,
    printer: Printer,
    command: MigrateCommand,
) -> Result<Outcome, Error> {
    match command {
        MigrateCommand::Status(args) => status(settings, printer, args),
        MigrateCommand::New(args) => new(settings, printer, args),
        MigrateCommand::Down(args) => down(settings, printer, args),
        MigrateCommand::Baseline(args) => baseline(settings, printer, args),
    }
}

fn refused(message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::MigrateRefused {
        message: message.into(),
        help: help.into(),
    }
}

/// The database `key` of `desired` and its migrations configuration.
fn database<'a>(
    desired: &'a Manifest,
    key: &str,
) -> Result<(&'a D1Database, &'a Migrations), Error> {
    let db = desired.d1_databases.get(key).ok_or_else(|| {
        let keys: Vec<&str> = desired.d1_databases.keys().map(String::as_str).collect();
        refused(
            format!("{} declares no database `{key}`", desired.environment),
            format!("use one of its keys: {}", keys.join(", ")),
        )
    })?;
    let config = db.migrations.as_ref().ok_or_else(|| {
        refused(
            format!("d1_databases.{key} declares no migrations"),
            format!("add `migrations: {{ directory: migrations }}` to d1_databases.{key}"),
        )
    })?;
    Ok((db, config))
}

/// The live database's id and ledger; `None` when the database does not exist yet.
fn read_ledger(
    account: &Account,
    db: &D1Database,
    config: &Migrations,
) -> Result<Option<(String, Ledger)>, Error> {
    let client = &account.client;
    account.runtime.block_on(async {
        let Some(found) = client.find_d1(&db.name).await? else {
            return Ok(None);
        };
        let ledger = ledger::read(client, &found.uuid, &config.table).await?;
        Ok(Some((found.uuid, ledger)))
    })
}

fn status(
    settings: &Settings,
    printer: Printer,
    args: MigrateStatusArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let keys: Vec<String> = match &args.db {
        Some(key) => {
            database(&desired, key)?;
            vec![key.clone()]
        }
        None => desired
            .d1_databases
            .iter()
            .filter(|(_, db)| db.migrations.is_some() && !db.absent)
            .map(|(key, _)| key.clone())
            .collect(),
    };
    let account = Account::connect(settings, &desired)?;
    let mut blocked = false;
    let mut report = Vec::new();
    let mut text = Vec::new();
    for key in &keys {
        let (db, config) = database(&desired, key)?;
        let set = migrations::read_set(&settings.dir, &config.directory)?;
        let live = read_ledger(&account, db, config)?;
        let exists = live.is_some();
        let ledger = live.map(|(_, ledger)| ledger).unwrap_or_default();
        let statuses = migrations::status(&set, &ledger);
        blocked |= statuses.iter().any(|s| s.state.blocks());
        text.push(format!(
            "d1.{key} ({}{}), ledger {}:",
            db.name,
            if exists { "" } else { ", not created yet" },
            config.table
        ));
        if statuses.is_empty() {
            text.push("  no migrations".to_owned());
        }
        for s in &statuses {
            text.push(format!(
                "  {:<12} {}{}",
                word(&s.state),
                s.name,
                detail(&s.state)
            ));
        }
        report.push(json!({
            "key": key,
            "name": db.name,
            "table": config.table,
            "exists": exists,
            "migrations": statuses,
        }));
    }
    let out = match args.format {
        DiagnosticFormat::Text => text.join("\n"),
        DiagnosticFormat::Json => serde_json::to_string_pretty(
            &json!({ "environment": desired.environment, "databases": report }),
        )
        .unwrap_or_default(),
    };
    printer.data(&out)?;
    Ok(if blocked {
        Outcome::Blocked
    } else {
        Outcome::Success
    })
}

fn word(state: &State) -> &'static str {
    match state {
        State::Applied => "applied",
        State::Pending => "pending",
        State::OutOfOrder { .. } => "OUT-OF-ORDER",
        State::Edited { .. } => "EDITED",
        State::Partial => "PARTIAL",
        State::Renamed { .. } => "RENAMED",
        State::Missing { .. } => "MISSING",
    }
}

fn detail(state: &State) -> String {
    match state {
        State::Applied | State::Pending => String::new(),
        State::OutOfOrder { after } => format!(": numbered below {after}, which is applied"),
        State::Edited { recorded } => {
            format!(": edited after it was applied (SHA-256 then: {recorded})")
        }
        State::Partial => ": partially applied: started over the query endpoint and not recorded as applied; some of its statements may have run".to_owned(),
        State::Renamed { from } => format!(": the content of {from}, which is applied under that name"),
        State::Missing { renamed_to: Some(new) } => format!(": applied, and renamed to {new}"),
        State::Missing { renamed_to: None } => ": applied, but no file has this name".to_owned(),
    }
}

fn new(settings: &Settings, printer: Printer, args: MigrateNewArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let (_, config) = database(&desired, &args.db)?;
    let name = args.name.trim().replace(' ', "_");
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(refused(
            format!("`{}` cannot be part of a file name", args.name),
            "name the migration with letters, digits, `_` and `-`",
        ));
    }
    let dir = settings.dir.join(&config.directory);
    std::fs::create_dir_all(&dir).map_err(|source| Error::FileWrite {
        path: dir.clone(),
        source,
    })?;
    let set = migrations::read_set(&settings.dir, &config.directory)?;
    let number = format!("{:04}", set.next_number());
    let path = dir.join(format!("{number}_{name}.sql"));
    let header = format!(
        "-- Migration number: {number} \t {}\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, header.as_bytes()))
        .map_err(|source| Error::FileWrite {
            path: path.clone(),
            source,
        })?;
    printer.data(&path.display().to_string())?;
    Ok(Outcome::Success)
}

fn confirmed(printer: Printer, question: &str, auto_approve: bool) -> Result<(), Error> {
    if auto_approve {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::ApprovalNeeded);
    }
    printer.prompt(format_args!("\n{question} Only 'yes' will be accepted: "));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| Error::Answer { source })?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::ApplyCancelled)
    }
}

fn down(settings: &Settings, printer: Printer, args: MigrateDownArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let (db, config) = database(&desired, &args.db)?;
    let set = migrations::read_set(&settings.dir, &config.directory)?;
    let account = Account::connect(settings, &desired)?;
    let Some((uuid, ledger)) = read_ledger(&account, db, config)? else {
        return Err(refused(
            format!("{} does not exist: there is nothing to undo", db.name),
            "run `lmsinfra apply` to create it",
        ));
    };
    // Newest first: by the ledger's ids, which increase as migrations are applied.
    let mut undo: Vec<&migrations::Applied> = ledger
        .applied
        .iter()
        .filter(|a| migrations::files::number_of(&a.name).is_some_and(|n| n > args.to))
        .collect();
    undo.sort_by_key(|a| std::cmp::Reverse(a.id));
    if undo.is_empty() {
        printer.status(format_args!(
            "Nothing to undo: no migration numbered above {} is applied to {}.",
            args.to, db.name
        ));
        return Ok(Outcome::Success);
    }
    let oldest = undo.last().map(|a| a.name.as_str()).unwrap_or_default();
    let missing: Vec<&str> = undo
        .iter()
        .map(|a| a.name.as_str())
        .filter(|name| !set.downs.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        let bookmark = ledger.facts(oldest).and_then(|f| f.bookmark_before.clone());
        let help = match bookmark {
            Some(bookmark) => format!(
                "Time Travel can bring {} back to the moment before {oldest} ran, losing every write since: `lmsinfra restore {} --db {} --bookmark {bookmark}`; or write {}",
                db.name,
                desired.environment,
                args.db,
                down_paths(&set, &missing)
            ),
            None => format!(
                "write {}; lmsinfra recorded no bookmark before {oldest} ran (it was applied by another tool), so `lmsinfra restore {} --db {} --timestamp T` with a time before it is the other way back",
                down_paths(&set, &missing),
                desired.environment,
                args.db
            ),
        };
        return Err(refused(
            format!(
                "{} has no down file; nothing was changed",
                missing.join(", ")
            ),
            help,
        ));
    }
    let names: Vec<&str> = undo.iter().map(|a| a.name.as_str()).collect();
    printer.status(format_args!(
        "migrate down {} on {}: undo {}",
        args.environment,
        db.name,
        names.join(", then ")
    ));
    confirmed(
        printer,
        &format!("Undo these migrations on {}?", db.name),
        args.auto_approve,
    )?;
    let client: &Client = &account.client;
    account.runtime.block_on(async {
        let bookmark = client.d1_bookmark(&uuid).await?;
        printer.notice(format_args!(
            "{} is at bookmark {bookmark}; to undo this down with its data: lmsinfra restore {} --db {} --bookmark {bookmark}",
            db.name, desired.environment, args.db
        ));
        for name in &names {
            let down = &set.downs[*name];
            let text = std::str::from_utf8(&down.bytes).map_err(|_| {
                refused(
                    format!("{} is not UTF-8 text", down.path.display()),
                    "run `lmsinfra validate` for the file's diagnostics",
                )
            })?;
            client
                .import_d1(&uuid, ledger::down_file(&config.table, name, text).as_bytes())
                .await?;
            printer.status(format_args!("undid {name}"));
        }
        Ok::<_, Error>(())
    })?;
    Ok(Outcome::Success)
}

fn down_paths(set: &MigrationSet, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            let stem = name.strip_suffix(".sql").unwrap_or(name);
            set.directory
                .join("down")
                .join(format!("{stem}.down.sql"))
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn baseline(
    settings: &Settings,
    printer: Printer,
    args: MigrateBaselineArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let (db, config) = database(&desired, &args.db)?;
    let schema = std::fs::read(&args.schema).map_err(|source| Error::MigrateRefused {
        message: format!("cannot read {}: {source}", args.schema.display()),
        help: "give the schema file the database was made from".to_owned(),
    })?;
    let schema_text = String::from_utf8(schema.clone()).map_err(|_| {
        refused(
            format!("{} is not UTF-8 text", args.schema.display()),
            "give a SQL text file",
        )
    })?;
    let wanted = migrations::check::schema_of(&schema_text).map_err(|message| {
        refused(
            format!(
                "{} does not run in SQLite: {message}",
                args.schema.display()
            ),
            "fix the schema file",
        )
    })?;
    let set = migrations::read_set(&settings.dir, &config.directory)?;
    let account = Account::connect(settings, &desired)?;
    let Some((uuid, ledger)) = read_ledger(&account, db, config)? else {
        return Err(refused(
            format!("{} does not exist", db.name),
            "a new database needs no baseline: apply runs its migrations",
        ));
    };
    if !ledger.applied.is_empty() {
        return Err(refused(
            format!("{} already has migrations in {}", db.name, config.table),
            format!(
                "see `lmsinfra migrate status {} --db {}`",
                desired.environment, args.db
            ),
        ));
    }
    let client = &account.client;
    let live = account
        .runtime
        .block_on(client.read_d1(&uuid, migrations::check::LIVE_SCHEMA))?;
    let live = migrations::check::live_schema(&live, &config.table);
    let differences = migrations::check::compare(&wanted, &live);
    if !differences.is_empty() {
        return Err(refused(
            format!(
                "{}'s live schema differs from {}:\n{}",
                db.name,
                args.schema.display(),
                differences.join("\n")
            ),
            "nothing was recorded; bring the database or the file in line, then run baseline again",
        ));
    }
    let existing = set.migrations.iter().find(|m| m.bytes == schema);
    let migration = match existing {
        Some(m) => m.clone(),
        None => {
            let path = set
                .directory
                .join(format!("{:04}_baseline.sql", set.next_number()));
            std::fs::create_dir_all(&set.directory).map_err(|source| Error::FileWrite {
                path: set.directory.clone(),
                source,
            })?;
            std::fs::write(&path, &schema).map_err(|source| Error::FileWrite {
                path: path.clone(),
                source,
            })?;
            printer.status(format_args!("wrote {}", path.display()));
            migrations::read_set(&settings.dir, &config.directory)?
                .migrations
                .into_iter()
                .find(|m| m.bytes == schema)
                .ok_or_else(|| refused("the baseline file vanished", "run baseline again"))?
        }
    };
    account.runtime.block_on(async {
        let bookmark = client.d1_bookmark(&uuid).await?;
        let file = ledger::baseline_file(&config.table, &migration, &bookmark);
        client.import_d1(&uuid, file.as_bytes()).await?;
        Ok::<_, Error>(())
    })?;
    printer.status(format_args!(
        "recorded {} as applied to {} without running it",
        migration.name, db.name
    ));
    Ok(Outcome::Success)
}
