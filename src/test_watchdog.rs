//! A watchdog for the unit tests that run the engine (a pool, sleeping
//! threads), for the mutation run (`tools/mutants.sh`): a mutant that hangs
//! such a test must fail it, not time the whole run out (a timeout proves
//! nothing about the tests). The integration tests have their own, per test
//! (`tests/common`); here one per process is enough, because the unit tests
//! finish within seconds.

use crate::sync::{thread, OnceLock};
use std::time::Duration;

/// Arms the process's watchdog, once, if `STEALPOOL_WATCHDOG_SECS` is set:
/// that many seconds after the first test that armed it started, the test
/// process exits with a failure (the tests that ran are listed above its
/// message; the one that hangs is among those not reported finished).
/// Without the variable it does nothing (`cargo test` waits as it always
/// did).
pub(crate) fn arm() {
    static ARMED: OnceLock<()> = OnceLock::new();
    ARMED.get_or_init(|| {
        let Some(secs) = std::env::var("STEALPOOL_WATCHDOG_SECS")
            .ok()
            .and_then(|secs| secs.parse::<u64>().ok())
        else {
            return;
        };
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(secs));
            eprintln!(
                "watchdog: the unit tests were still running {secs} s after the first \
                 one that runs the engine started (STEALPOOL_WATCHDOG_SECS): a test hangs"
            );
            std::process::exit(101);
        });
    });
}
