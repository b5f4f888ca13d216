//! Ctrl-C and SIGTERM during `lmsinfra apply`, against a sandbox that answers every request
//! after 500 ms so that a signal lands while a step is in flight: the step finishes, no other
//! starts, apply says how far it got and exits 130, and the next apply finishes the job. A
//! second signal stops at once. Ctrl-C is typed on a pseudo terminal, as a person would, and
//! sent as a signal, as a CI runner or `timeout` would. The same terminal shows that an apply
//! with nothing to do ends without asking. `rollback --all` stops between two Workers the same
//! way.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::apply::with_secrets;
use crate::support::{ACCOUNT_ID, Lmsinfra, Project, TOKEN, TestSandbox};

/// Long enough that no correct run comes near it; it only keeps a broken one from hanging.
const PATIENCE: Duration = Duration::from_secs(120);

/// A sandbox that answers every request after 500 ms.
fn slow_sandbox() -> TestSandbox {
    TestSandbox::with(|config| config.latency = Duration::from_millis(500))
}

/// Text a child writes, collected on a thread as it comes.
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<u8>>>);

impl Transcript {
    fn collect(&self, mut from: impl Read + Send + 'static) {
        let bytes = self.0.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // A pseudo terminal's master reads EIO once the child has closed its side.
            while let Ok(n) = from.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                bytes
                    .lock()
                    .expect("transcript")
                    .extend_from_slice(&buffer[..n]);
            }
        });
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("transcript")).into_owned()
    }

    /// Wait until the text contains `expected`; fail after [`PATIENCE`].
    fn wait_for(&self, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.text().contains(expected) {
            assert!(
                Instant::now() < deadline,
                "no {expected:?} in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Wait for the child's exit code; fail after [`PATIENCE`].
fn exit_code(child: &mut Child) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            return status.code().expect("lmsinfra exits, it is not killed");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lmsinfra was still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill has no memory effects; the pid is our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "the signal is sent");
}

/// `apply staging --auto-approve` with every secret, stderr collected, stdout discarded.
fn spawn_apply(sandbox: &TestSandbox) -> (Child, Transcript) {
    let mut child =
        with_secrets(Lmsinfra::new(sandbox).args(["apply", "staging", "--auto-approve"])).spawn();
    let stderr = Transcript::default();
    stderr.collect(child.stderr.take().expect("piped stderr"));
    (child, stderr)
}

/// The `N` and `M` of "interrupted after N of M steps".
fn steps_done(stderr: &str) -> (usize, usize) {
    let (_, rest) = stderr
        .split_once("interrupted after ")
        .unwrap_or_else(|| panic!("no interrupt message in:\n{stderr}"));
    let words: Vec<&str> = rest.split_whitespace().take(4).collect();
    match words.as_slice() {
        [done, "of", total, "steps;"] => (
            done.parse().expect("a number of steps"),
            total.parse().expect("a number of steps"),
        ),
        other => panic!("unexpected message {other:?} in:\n{stderr}"),
    }
}

fn apply_again_converges(sandbox: &TestSandbox) {
    let run = with_secrets(Lmsinfra::new(sandbox).args(["apply", "staging", "--auto-approve"]))
        .code(0)
        .run();
    assert!(
        run.stderr.contains("A fresh plan of staging is empty."),
        "{run}"
    );
}

#[test]
fn sigint_during_apply_finishes_the_step_in_flight_and_exits_130() {
    let sandbox = slow_sandbox();
    let (mut child, stderr) = spawn_apply(&sandbox);
    stderr.wait_for("[1/");
    signal(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child), 130, "{}", stderr.text());
    let text = stderr.text();
    let (done, total) = steps_done(&text);
    assert!(done >= 1 && done < total, "{text}");
    assert!(text.contains("run apply again to finish"), "{text}");
    // Steps run side by side, so the steps done need not be the first ones; each has its line
    // and no step that did not start has one.
    let lines = text
        .lines()
        .filter(|line| line.starts_with('[') && line.contains(&format!("/{total}] ")))
        .count();
    assert_eq!(lines, done, "one line per step done, none other:\n{text}");
    apply_again_converges(&sandbox);
}

#[test]
fn a_second_signal_stops_apply_at_once() {
    // Slower still, so the step in flight is far from done when the second signal comes.
    let sandbox = TestSandbox::with(|config| config.latency = Duration::from_secs(3));
    let (mut child, stderr) = spawn_apply(&sandbox);
    stderr.wait_for("[1/");
    signal(&child, libc::SIGTERM);
    stderr.wait_for("Interrupt received");
    signal(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child), 130, "{}", stderr.text());
    let text = stderr.text();
    assert!(text.contains("Interrupted again: stopping now"), "{text}");
    assert!(!text.contains("interrupted after"), "{text}");
    apply_again_converges(&sandbox);
}

/// A pseudo terminal: the master to type into and read from, the child's side for its stdin,
/// stdout and stderr.
fn pseudo_terminal() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers it is given; the name, termios
    // and window size pointers may be null.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "a pseudo terminal opens");
    // SAFETY: both descriptors were just opened and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Start `command` on a new pseudo terminal that is its controlling terminal, so Ctrl-C typed
/// on it reaches it as SIGINT.
fn spawn_on_terminal(mut command: Command) -> (Child, std::fs::File, Transcript) {
    let (master, slave) = pseudo_terminal();
    command.stdout(Stdio::from(slave.try_clone().expect("dup")));
    start_on_terminal(command, master, slave)
}

/// Start `command` with stdin and stderr on the terminal `slave`, whose other side is
/// `master`, as its controlling terminal; stdout is as `command` says.
fn start_on_terminal(
    mut command: Command,
    master: OwnedFd,
    slave: OwnedFd,
) -> (Child, std::fs::File, Transcript) {
    command
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    // SAFETY: between fork and exec this only calls async-signal-safe functions: a new session
    // with stdin (the terminal) as its controlling terminal.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("lmsinfra starts on the terminal");
    let terminal = std::fs::File::from(master);
    let transcript = Transcript::default();
    transcript.collect(terminal.try_clone().expect("dup"));
    (child, terminal, transcript)
}

/// `lmsinfra apply staging` with every secret, as a command, for a terminal.
fn apply_command(sandbox: &TestSandbox, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lmsinfra"));
    command
        .current_dir(crate::support::root())
        .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
        .env("NO_COLOR", "1")
        .args(["--color", "never", "apply", "staging"])
        .args(extra);
    for (i, name) in crate::apply::SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        command
            .env(&var, format!("value of {name}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    command
}

#[test]
fn ctrl_c_typed_on_the_terminal_interrupts_apply_after_the_approval() {
    let sandbox = slow_sandbox();
    let (mut child, mut terminal, transcript) = spawn_on_terminal(apply_command(&sandbox, &[]));
    transcript.wait_for("Only 'yes' will be accepted: ");
    let text = transcript.text();
    let plan_end = text.find("Plan: ").expect("the plan is shown");
    let prompt = text
        .find("Apply these changes")
        .expect("the question is asked");
    assert!(
        plan_end < prompt,
        "the question came before the plan:\n{text}"
    );
    terminal.write_all(b"yes\n").expect("the answer is typed");
    transcript.wait_for("[1/");
    terminal.write_all(&[0x03]).expect("Ctrl-C is typed");
    assert_eq!(exit_code(&mut child), 130, "{}", transcript.text());
    let text = transcript.text();
    let (done, total) = steps_done(&text);
    assert!(done >= 1 && done < total, "{text}");
    apply_again_converges(&sandbox);

    // Nothing left to do: on a terminal too, apply ends at once, writes nothing and asks nothing.
    let before = sandbox.sandbox().stats();
    let (mut child, _terminal, transcript) = spawn_on_terminal(apply_command(&sandbox, &[]));
    assert_eq!(exit_code(&mut child), 0, "{}", transcript.text());
    let text = transcript.text();
    assert!(text.contains("No changes."), "{text}");
    assert!(!text.contains("Apply these changes"), "{text}");
    let after = sandbox.sandbox().stats();
    // Plans read the migration ledgers with D1's query endpoint: not a write.
    let writes = crate::apply::writes;
    assert_eq!(writes(&before), writes(&after), "the second apply wrote");
}

#[test]
fn with_stdout_piped_the_question_still_comes_after_the_whole_plan() {
    let sandbox = TestSandbox::new();
    let (master, slave) = pseudo_terminal();
    let mut command = apply_command(&sandbox, &[]);
    command.stdout(Stdio::piped());
    let (mut child, mut terminal, transcript) = start_on_terminal(command, master, slave);
    let piped = Transcript::default();
    piped.collect(child.stdout.take().expect("piped stdout"));
    transcript.wait_for("Only 'yes' will be accepted: ");
    let text = transcript.text();
    let summary = text
        .find("Plan: ")
        .expect("the plan is shown on the terminal");
    let question = text.find("Apply these changes").expect("the question");
    assert!(summary < question, "{text}");
    terminal.write_all(b"no\n").expect("the answer is typed");
    assert_eq!(exit_code(&mut child), 1, "{}", transcript.text());
    assert!(
        transcript.text().contains("apply cancelled"),
        "{}",
        transcript.text()
    );
    assert!(
        piped.text().contains("Plan: "),
        "the pipe lost the plan: {}",
        piped.text()
    );
}

/// The `workers/message` of the deployment serving `script`.
fn serving_message(sandbox: &TestSandbox, script: &str) -> String {
    let path = format!("/accounts/{{account}}/workers/scripts/{script}/deployments");
    sandbox.get(&path)["deployments"][0]["annotations"]["workers/message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn sigint_during_rollback_of_every_worker_stops_before_the_next_and_names_it() {
    // Each rollback deployment is made at once but answered 3 s later: the signal lands while
    // the first Worker's deployment is in flight.
    let sandbox = TestSandbox::with(crate::client::faults(
        "after_create@create-deployment=1:3000ms",
    ));
    let project = Project::new();
    with_secrets(Lmsinfra::new(&sandbox).project(&project).args([
        "apply",
        "production",
        "--auto-approve",
        "--force-secrets",
    ]))
    .code(0)
    .run();
    // Both Workers change, so each has an earlier version to go back to.
    project.edit("production", |text| {
        text.replace(
            "https://lms-viewer.example.workers.dev\" }",
            "https://lms.example.com\" }",
        )
        .replace(
            "https://lms-api.example.workers.dev\" }",
            "https://api.lms.example.com\" }",
        )
    });
    Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "production", "--auto-approve", "--no-verify"])
        .code(0)
        .run();
    let viewer_before = serving_message(&sandbox, "lms-viewer");

    let mut child = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "rollback",
            "production",
            "--all",
            "--auto-approve",
            "--no-verify",
        ])
        .spawn();
    let stderr = Transcript::default();
    stderr.collect(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + PATIENCE;
    while !serving_message(&sandbox, "lms-api").starts_with("lmsinfra rollback") {
        assert!(
            Instant::now() < deadline,
            "no rollback of lms-api:\n{}",
            stderr.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child), 130, "{}", stderr.text());
    let text = stderr.text();
    assert!(text.contains("Rolled back worker.api (lms-api)"), "{text}");
    assert!(
        text.contains("rollback interrupted after worker.api; not started: worker.viewer"),
        "{text}"
    );
    assert!(
        text.contains("lmsinfra rollback production --worker viewer"),
        "{text}"
    );
    assert_eq!(serving_message(&sandbox, "lms-viewer"), viewer_before);
}

#[test]
fn sigint_during_a_restore_lets_the_restore_finish_and_exit_as_usual() {
    // The restore is answered 3 s after it arrives: the signal lands while it is in flight.
    let sandbox = TestSandbox::with(crate::client::faults("slow@restore=1:3000ms"));
    let found = sandbox.get("/accounts/{account}/d1/database?name=lms-db");
    let uuid = found[0]["uuid"].as_str().expect("the seeded database");
    let bookmark = sandbox.get(&format!(
        "/accounts/{{account}}/d1/database/{uuid}/time_travel/bookmark"
    ))["bookmark"]
        .as_str()
        .expect("a bookmark")
        .to_owned();
    let mut child = Lmsinfra::new(&sandbox)
        .args(["restore", "production", "--db", "main", "--bookmark"])
        .args([bookmark.as_str(), "--auto-approve"])
        .spawn();
    let stderr = Transcript::default();
    stderr.collect(child.stderr.take().expect("piped stderr"));
    stderr.wait_for("Every write after it is undone");
    // The write begins as soon as that is said; give it a moment to be on its way.
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    let output = child.wait_with_output().expect("restore ends");
    let text = stderr.text();
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("Interrupt received"), "{text}");
    // The one restore was answered (counted when it is), not cut off.
    let restores: u64 = sandbox
        .sandbox()
        .stats()
        .routes
        .iter()
        .filter(|(route, _)| route.ends_with("/time_travel/restore"))
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(restores, 1, "{text}");
}
