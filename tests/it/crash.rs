//! An apply killed part-way leaves an account that the next apply finishes, without duplicates
//! and without losing anything.
//!
//! How the process is stopped after k writes: each step is one write request (create database,
//! patch settings with the secrets, patch Workers Logs). The sandbox calls its observer once a
//! request has taken effect and before the answer goes out, so an observer that counts answered
//! writes sends SIGKILL to the real `lmsinfra apply` process when the k-th one is answered. The
//! process dies with the k-th write done and unacknowledged — the worst moment, since it never
//! learned that its last create succeeded. Independent steps run side by side, so a write sent
//! beside the k-th may be done too; no write that needed the k-th's answer was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use lmsinfra_sandbox::Exchange;
use serde_json::Value;

use crate::support::{Lmsinfra, TestSandbox, binding_names_by_script};

const SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

/// Staging of the audited account: create the database, patch the API Worker's settings with
/// its four secrets, patch its Workers Logs.
const STEPS: usize = 3;

fn apply_staging(sandbox: &TestSandbox) -> Lmsinfra {
    let mut args = vec![
        "apply".to_owned(),
        "staging".to_owned(),
        "--auto-approve".to_owned(),
    ];
    for name in SECRETS {
        args.push("--secret".to_owned());
        args.push(format!("{name}=env:CRASH_{name}"));
    }
    let mut command = Lmsinfra::new(sandbox).args(args);
    for name in SECRETS {
        command = command.env(&format!("CRASH_{name}"), format!("value of {name}"));
    }
    command
}

fn read_state(sandbox: &TestSandbox) -> Value {
    let text = std::fs::read_to_string(sandbox.state_path()).expect("state file");
    serde_json::from_str(&text).expect("state JSON")
}

#[test]
fn apply_killed_after_any_step_converges_on_the_next_run_without_duplicates_or_losses() {
    for k in 1..=STEPS {
        let child_pid = Arc::new(AtomicI32::new(0));
        let writes = Arc::new(AtomicUsize::new(0));
        let (pid, counted) = (child_pid.clone(), writes.clone());
        let sandbox = TestSandbox::with(move |config| {
            config.observer = Some(Arc::new(move |exchange: &Exchange| {
                let is_write = exchange.method != "GET" && (200..300).contains(&exchange.status);
                if is_write && counted.fetch_add(1, Ordering::SeqCst) + 1 == k {
                    // The pid is stored right after spawning, long before apply's first write.
                    let mut target = pid.load(Ordering::SeqCst);
                    for _ in 0..1000 {
                        if target > 0 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        target = pid.load(Ordering::SeqCst);
                    }
                    if target > 0 {
                        // SAFETY: `target` is the apply process this test spawned, not reaped.
                        unsafe { libc::kill(target, libc::SIGKILL) };
                    }
                }
            }));
        });
        let before = binding_names_by_script(&read_state(&sandbox));

        let child = apply_staging(&sandbox).spawn();
        child_pid.store(child.id() as i32, Ordering::SeqCst);
        let killed = child.wait_with_output().expect("apply ends");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&killed.status),
            Some(libc::SIGKILL),
            "apply should be killed after write {k}: {killed:?}"
        );
        child_pid.store(-1, Ordering::SeqCst);
        // Steps run side by side: a write sent beside the k-th may still be answered.
        assert!(
            writes.load(Ordering::SeqCst) >= k,
            "writes done when killed"
        );

        let again = apply_staging(&sandbox).output();
        assert!(
            again.status.success(),
            "apply after a kill at step {k} fails:\n{}",
            String::from_utf8_lossy(&again.stderr)
        );
        let plan = Lmsinfra::new(&sandbox)
            .args(["plan", "staging", "--detailed-exitcode", "--no-probe"])
            .output();
        assert_eq!(plan.status.code(), Some(0), "plan after a kill at step {k}");

        let state = read_state(&sandbox);
        let staging_databases = state["account"]["d1_databases"]
            .as_array()
            .expect("databases")
            .iter()
            .filter(|d| d["name"] == "lms-db-staging")
            .count();
        assert_eq!(
            staging_databases, 1,
            "databases named lms-db-staging after a kill at step {k}"
        );
        let after = binding_names_by_script(&state);
        for (script, names) in &before {
            let kept = &after[script];
            let lost: Vec<_> = names.difference(kept).collect();
            assert!(
                lost.is_empty(),
                "{script} lost {lost:?} after a kill at step {k}"
            );
        }
    }
}
