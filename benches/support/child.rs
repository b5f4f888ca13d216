//! What both benchmarks measure of the real binary: exit status, wall time and peak RSS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run the real binary to completion, its stderr going to `stderr`, and return its exit
/// status, wall time and peak RSS (bytes), read with `wait4`.
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, so that its resource usage can be read"
)]
pub fn run(stderr: Stdio, command: &mut Command) -> (i32, Duration, u64) {
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the binary starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(reaped, pid, "wait4 reaps the child");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Linux reports ru_maxrss in KiB.
    (code, elapsed, usage.ru_maxrss as u64 * 1024)
}
