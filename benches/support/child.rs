//! What the benchmarks measure of the real binary: exit status, wall time and peak RSS.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Run the real binary to completion, its stderr going to `stderr`, and return its exit
/// status, wall time and peak RSS (bytes), read with `wait4`.
pub fn run(stderr: Stdio, command: &mut Command) -> (i32, Duration, u64) {
    run_within(stderr, command, None).expect("no time limit")
}

/// [`run`], but a child still running after `limit` is killed and `None` returned, so that one
/// slow configuration cannot hold a whole benchmark up.
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, so that its resource usage can be read"
)]
pub fn run_within(
    stderr: Stdio,
    command: &mut Command,
    limit: Option<Duration>,
) -> Option<(i32, Duration, u64)> {
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the binary starts");
    let pid = child.id() as libc::pid_t;
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = limit.map(|limit| {
        std::thread::spawn(move || {
            let expired = finished.recv_timeout(limit).is_err();
            if expired {
                // SAFETY: the child is not reaped before this thread is joined, so `pid` is
                // still our child's (alive, or a zombie a signal cannot hurt).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            expired
        })
    });
    // SAFETY: an all-zero siginfo is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child to end without reaping it; `info` is a live local.
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    let elapsed = start.elapsed();
    let _ = done.send(());
    let killed = watchdog.is_some_and(|w| w.join().expect("the watchdog ends"));
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, ended but not yet reaped; both pointers are to live
    // locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 reaps the child");
    if killed {
        return None;
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Linux reports ru_maxrss in KiB.
    Some((code, elapsed, usage.ru_maxrss as u64 * 1024))
}
