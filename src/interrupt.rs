//! Ctrl-C and SIGTERM while a command changes the account.
//!
//! Dying at once would leave a spinner on the screen and a Worker half-configured with no word
//! of what was done. So a command that writes (apply; rollback, restore and rotate as they
//! come) calls [`watch`] before its first write and [`requested`] before starting each further
//! one: the first signal lets the write in flight finish and starts no more, and the command
//! then says how far it got and exits 130 ([`EXIT_CODE`]). A second signal stops the process at
//! once, for when the write in flight hangs.
//!
//! The flag is process-wide because a signal is: there is one per process, whichever command
//! runs.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{SignalKind, signal};

/// The exit code after an interrupt: 128 + SIGINT, as shells report it.
pub(crate) const EXIT_CODE: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a Ctrl-C or SIGTERM arrived since [`watch`]: start no further write.
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// From now on, a first Ctrl-C or SIGTERM sets [`requested`] and says so on stderr; a second
/// exits 130 at once. The handlers run on `runtime`, which must outlive the writes.
pub(crate) fn watch(runtime: &tokio::runtime::Runtime) -> std::io::Result<()> {
    let _entered = runtime.enter();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    runtime.spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                anstream::eprintln!("\nInterrupted again: stopping now, in the middle of a step.");
                std::process::exit(i32::from(EXIT_CODE));
            }
            anstream::eprintln!(
                "\nInterrupt received: finishing the step in flight and starting no more (interrupt again to stop at once)."
            );
        }
    });
    Ok(())
}
