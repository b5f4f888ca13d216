//! Local inputs lmsinfra reads are bounded and never echoed: environment files must be regular
//! files inside the project, secret values never come back in a diagnostic or a usage error,
//! and saved plans and secret files are size-capped and refused when they are devices.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Lmsinfra, Project, Run, TestSandbox, wait_within};

/// A value that must never be printed.
const CANARY: &str = "c4nary-7d1f0e-hunter2";

/// Long enough for a slow machine, far shorter than forever.
const PATIENCE: Duration = Duration::from_secs(30);

/// `lmsinfra --color never ARGS` in `project`, without credentials, stdin closed; fails the
/// test if it runs longer than [`PATIENCE`].
fn lmsinfra(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lmsinfra"));
    command
        .current_dir(project)
        .args(["--color", "never"])
        .args(args)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("lmsinfra starts");
    Run::from(wait_within(child, PATIENCE))
}

/// stderr with miette's line wrapping undone, for `contains` checks on long messages.
fn said(run: &Run) -> String {
    run.stderr
        .lines()
        .map(|line| line.trim_start().trim_start_matches("| ").trim_start())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Neither output holds the canary, nor a piece of it (miette may wrap a line at a dash).
fn assert_no_canary(run: &Run) {
    for piece in CANARY.split('-') {
        assert!(!run.stdout.contains(piece), "the canary was printed: {run}");
        assert!(!run.stderr.contains(piece), "the canary was printed: {run}");
    }
}

/// The commands that read an environment's manifest.
const READERS: [&[&str]; 3] = [
    &["validate"],
    &["plan", "staging"],
    &["apply", "staging", "--auto-approve"],
];

#[test]
fn an_environment_file_linked_outside_the_project_is_not_read() {
    let project = Project::new();
    let outside = tempfile::tempdir().expect("temp dir");
    let secret = outside.path().join("environ");
    std::fs::write(&secret, format!("TOKEN={CANARY}\nenvironment: staging\n")).expect("written");
    std::fs::remove_file(project.manifest("staging")).expect("staging removed");
    std::os::unix::fs::symlink(&secret, project.manifest("staging")).expect("symlink");
    for args in READERS {
        let run = lmsinfra(project.path(), args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_no_canary(&run);
        assert!(
            said(&run).contains("outside the project"),
            "{args:?}: {run}"
        );
        assert!(
            said(&run).contains("manifest::not-a-regular-file"),
            "{args:?}: {run}"
        );
    }
}

#[test]
fn an_environment_file_linked_to_the_process_environment_is_not_read() {
    let project = Project::new();
    std::fs::remove_file(project.manifest("staging")).expect("staging removed");
    std::os::unix::fs::symlink("/proc/self/environ", project.manifest("staging")).expect("symlink");
    for args in READERS {
        let run = lmsinfra(project.path(), args, &[("CLOUDFLARE_API_TOKEN", CANARY)]);
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_no_canary(&run);
        assert!(
            said(&run).contains("outside the project"),
            "{args:?}: {run}"
        );
    }
}

#[test]
fn an_environment_file_that_is_a_fifo_is_refused_at_once() {
    let project = Project::new();
    std::fs::remove_file(project.manifest("staging")).expect("staging removed");
    let path = std::ffi::CString::new(
        project
            .manifest("staging")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("a path without NUL");
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    for args in READERS {
        let run = lmsinfra(project.path(), args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert!(
            said(&run).contains("is a FIFO, not a regular file"),
            "{args:?}: {run}"
        );
    }
}

#[test]
fn an_environment_file_linked_inside_the_project_is_read() {
    let project = Project::new();
    let kept = project.path().join("shared");
    std::fs::create_dir(&kept).expect("shared/");
    std::fs::rename(project.manifest("staging"), kept.join("staging.yaml")).expect("moved");
    std::os::unix::fs::symlink("../shared/staging.yaml", project.manifest("staging"))
        .expect("symlink");
    let run = lmsinfra(project.path(), &["validate"], &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.stderr, "2 environments valid\n");
}

/// Staging with `CANARY` pasted into a binding on a line that has an error of its own.
fn staging_holding_the_canary(project: &Project) {
    project.edit("staging", |text| {
        text.replacen(
            "    bindings:\n",
            &format!(
                "    bindings:\n      PASTED: {{ type: plain_text, text: \"{CANARY}\", txt: 1 }}\n"
            ),
            1,
        )
    });
}

#[test]
fn apply_never_quotes_a_manifest_line_holding_a_secret_value() {
    let project = Project::new();
    staging_holding_the_canary(&project);
    let apply = [
        "apply",
        "staging",
        "--auto-approve",
        "--secret",
        "TALLY_WEBHOOK_SECRET=env:LMSINFRA_TEST_VALUE",
    ];
    let run = lmsinfra(project.path(), &apply, &[("LMSINFRA_TEST_VALUE", CANARY)]);
    assert_eq!(run.code, 1, "{run}");
    assert_no_canary(&run);
    assert!(said(&run).contains("unknown field `txt`"), "{run}");
    assert!(said(&run).contains("line withheld"), "{run}");
    // The same value from a file.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), format!("{CANARY}\n")).expect("written");
    let from_file = format!("TALLY_WEBHOOK_SECRET=file:{}", file.path().display());
    let run = lmsinfra(
        project.path(),
        &["apply", "staging", "--auto-approve", "--secret", &from_file],
        &[],
    );
    assert_eq!(run.code, 1, "{run}");
    assert_no_canary(&run);
}

#[test]
fn no_diagnostic_quotes_the_api_token() {
    let project = Project::new();
    staging_holding_the_canary(&project);
    for args in READERS {
        let run = lmsinfra(project.path(), args, &[("CLOUDFLARE_API_TOKEN", CANARY)]);
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_no_canary(&run);
        assert!(said(&run).contains("line withheld"), "{args:?}: {run}");
    }
}

#[test]
fn a_secret_value_typed_where_an_argument_was_expected_is_never_quoted_back() {
    let project = Project::new();
    let typed: [&[&str]; 6] = [
        &[
            "apply",
            "staging",
            &format!("TALLY_WEBHOOK_SECRET={CANARY}"),
        ],
        &[
            "apply",
            "staging",
            "--secret",
            "TALLY_WEBHOOK_SECRET",
            CANARY,
        ],
        &["apply", "staging", "--secret", &format!("env:{CANARY}")],
        &["apply", "staging", "--secret", &format!("file:{CANARY}")],
        &[
            "apply",
            "staging",
            &format!("--secret=TALLY_WEBHOOK_SECRET={CANARY}"),
        ],
        &["apply", "staging", "--auto-approve", CANARY],
    ];
    for args in typed {
        let run = lmsinfra(project.path(), args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_no_canary(&run);
        assert!(said(&run).contains("NAME=env:VAR"), "{args:?}: {run}");
    }
}

#[test]
fn a_usage_error_without_a_value_still_names_the_argument() {
    let project = Project::new();
    let run = lmsinfra(project.path(), &["plan", "staging", "--formt", "json"], &[]);
    assert_eq!(run.code, 1, "{run}");
    assert!(said(&run).contains("--formt"), "{run}");
}

#[test]
fn a_secret_file_that_is_a_device_or_too_large_is_refused_at_once() {
    let project = Project::new();
    let large = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(large.path(), "x".repeat(100 * 1024)).expect("written");
    for (path, says) in [
        (
            Path::new("/dev/zero"),
            "is a character device, not a regular file",
        ),
        (large.path(), "larger than 64 KiB"),
        (project.path(), "is a directory"),
    ] {
        let secret = format!("TALLY_WEBHOOK_SECRET=file:{}", path.display());
        let run = lmsinfra(
            project.path(),
            &["apply", "staging", "--auto-approve", "--secret", &secret],
            &[],
        );
        assert_eq!(run.code, 1, "{path:?}: {run}");
        assert!(said(&run).contains(says), "{path:?}: {run}");
    }
}

#[test]
fn a_secret_from_stdin_is_capped() {
    let project = Project::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(project.path())
        .args(["--color", "never", "apply", "staging", "--auto-approve"])
        .args(["--secret", "TALLY_WEBHOOK_SECRET=stdin"])
        .env_remove("CLOUDFLARE_API_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lmsinfra starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // An endless stream, like `yes | lmsinfra …`: written until lmsinfra stops reading.
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let chunk = [b'y'; 8192];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let run = Run::from(wait_within(child, PATIENCE));
    writer.join().expect("the writer ends when the pipe closes");
    assert_eq!(run.code, 1, "{run}");
    assert!(said(&run).contains("larger than 64 KiB"), "{run}");
}

#[test]
fn a_saved_plan_that_is_a_device_or_too_large_is_refused_at_once() {
    let sandbox = TestSandbox::new();
    let large = tempfile::NamedTempFile::new().expect("temp file");
    let file = std::fs::File::create(large.path()).expect("created");
    file.set_len(11 * 1024 * 1024)
        .expect("a sparse 11 MiB file");
    for (path, says) in [
        (
            Path::new("/dev/zero"),
            "is a character device, not a regular file",
        ),
        (large.path(), "larger than 10 MiB"),
    ] {
        let run = Run::from(
            Lmsinfra::new(&sandbox)
                .args(["apply", "staging", "--auto-approve", "--plan"])
                .arg(path)
                .output_within(PATIENCE),
        );
        assert_eq!(run.code, 1, "{path:?}: {run}");
        assert!(said(&run).contains(says), "{path:?}: {run}");
    }
}

#[test]
fn import_refuses_an_environment_name_that_leaves_environments() {
    let outer = tempfile::tempdir().expect("temp dir");
    let project = outer.path().join("project");
    std::fs::create_dir(&project).expect("project/");
    std::fs::write(
        project.join("wrangler.toml"),
        "name = \"lms-api\"\naccount_id = \"0123456789abcdef0123456789abcdef\"\n\
         compatibility_date = \"2024-12-01\"\n\n[env.\"../../x\"]\nname = \"lms-api-x\"\n",
    )
    .expect("wrangler.toml written");
    let run = lmsinfra(&project, &["import", "wrangler.toml"], &[]);
    assert_eq!(run.code, 1, "{run}");
    assert!(said(&run).contains("\"../../x\""), "{run}");
    assert!(said(&run).contains("cannot name a manifest"), "{run}");
    assert!(!outer.path().join("x.yaml").exists());
    assert!(
        !project.join("environments").exists(),
        "nothing was written"
    );
}

#[test]
fn a_secret_file_that_is_a_pipe_is_read() {
    // `--secret NAME=file:<(pass show …)` hands over a pipe; it must stay usable.
    let project = Project::new();
    let fifo = project.path().join("secret.fifo");
    let path = std::ffi::CString::new(fifo.clone().into_os_string().into_encoded_bytes())
        .expect("a path without NUL");
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, format!("{CANARY}\n")))
    };
    let secret = format!("TALLY_WEBHOOK_SECRET=file:{}", fifo.display());
    let run = lmsinfra(
        project.path(),
        &["apply", "staging", "--auto-approve", "--secret", &secret],
        &[],
    );
    // Should lmsinfra not have opened the pipe, this lets the writer finish instead of hanging.
    let _reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("the FIFO opens")
    };
    writer
        .join()
        .expect("the writer ends")
        .expect("the pipe was written");
    // The secret was read; apply stops later, for want of a token.
    assert_eq!(run.code, 1, "{run}");
    assert!(!said(&run).contains("--secret"), "{run}");
    assert!(said(&run).contains("CLOUDFLARE_API_TOKEN"), "{run}");
    assert_no_canary(&run);
}
