//! The values the stress test counts (every one must be dropped exactly
//! once), its panic payloads, and the thread-local its workers set.

use std::cell::Cell;
use std::fmt;
use std::panic::panic_any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The start of the message of every injected `String` panic.
pub const MARKER: &str = "stress-injected fault #";

thread_local! {
    /// Set by the `on_thread_start` hook of every pool of the stress test:
    /// the pool's unique id and the worker's index.
    pub static WORKER: Cell<Option<(u64, usize)>> = const { Cell::new(None) };
}

/// Locks, ignoring poisoning (a poisoned lock is reported by the check that
/// panicked).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The kinds of counted values.
#[derive(Clone, Copy, Debug)]
pub enum What {
    Input = 0,
    Output = 1,
    State = 2,
    Payload = 3,
    Capture = 4,
}

/// Names of the [`What`]s, by index.
pub const WHATS: [&str; 5] = [
    "input",
    "result",
    "map_init state",
    "Injected payload or error",
    "closure capture",
];

thread_local! {
    /// Set while the test's own code drops a value (see `exec::dispose`):
    /// the drops made while it is clear are the engine's.
    pub static DISPOSING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as the test's own drop of a value (see [`DISPOSING`]), even if
/// it panics.
pub fn disposing<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DISPOSING.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DISPOSING.with(|d| d.replace(true)));
    f()
}

/// Creations and drops of counted values, by [`What`].
#[derive(Debug, Default)]
pub struct Counters {
    pub made: [AtomicUsize; 5],
    pub dropped: [AtomicUsize; 5],
    /// Drops that panicked on purpose, by [`What`] and payload form
    /// (struct, `String`).
    pub fired: [[AtomicUsize; 2]; 5],
    /// Of those, the ones the engine made (not the test's own code).
    pub fired_by_engine: [AtomicUsize; 5],
    /// Set once a check failed: values whose drop panics stop panicking, so
    /// that the failed check's unwinding through them reports the failure
    /// instead of aborting the process.
    pub defused: AtomicBool,
}

/// A value whose creation and drop are counted, and whose drop panics if it
/// is armed with a fault code (with that fault's payload, see [`explode`]).
pub struct Counted {
    counters: Arc<Counters>,
    what: What,
    bomb: Option<u64>,
}

impl Counted {
    pub fn armed(counters: &Arc<Counters>, what: What, bomb: Option<u64>) -> Counted {
        counters.made[what as usize].fetch_add(1, Ordering::SeqCst);
        Counted {
            counters: Arc::clone(counters),
            what,
            bomb,
        }
    }

    /// The code its drop panics with, if it does (not once defused).
    pub fn bomb(&self) -> Option<u64> {
        self.bomb
            .filter(|_| !self.counters.defused.load(Ordering::SeqCst))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let what = self.what as usize;
        self.counters.dropped[what].fetch_add(1, Ordering::SeqCst);
        if let Some(code) = self.bomb() {
            self.counters.fired[what][(code % 2) as usize].fetch_add(1, Ordering::SeqCst);
            if !DISPOSING.with(Cell::get) {
                self.counters.fired_by_engine[what].fetch_add(1, Ordering::SeqCst);
            }
            explode(&self.counters, code);
        }
    }
}

/// Panics with the payload of fault `code`: a `String` if the code is odd,
/// an `Injected` if it is even.
pub fn explode(counters: &Arc<Counters>, code: u64) -> ! {
    if code % 2 == 1 {
        panic_any(format!("{MARKER}{code}"))
    } else {
        panic_any(Injected::new(counters, code))
    }
}

/// An input or a result.
pub struct Val {
    pub v: u64,
    counted: Counted,
}

impl Val {
    pub fn new(counters: &Arc<Counters>, v: u64, what: What) -> Val {
        Val::armed(counters, v, what, None)
    }

    /// A value whose drop panics with fault `bomb`, if any.
    pub fn armed(counters: &Arc<Counters>, v: u64, what: What, bomb: Option<u64>) -> Val {
        Val {
            v,
            counted: Counted::armed(counters, what, bomb),
        }
    }

    pub fn bomb(&self) -> Option<u64> {
        self.counted.bomb()
    }
}

/// The struct form of an injected fault: a panic payload, or the error of
/// `try_map`.
pub struct Injected {
    pub code: u64,
    counted: Counted,
}

impl Injected {
    pub fn new(counters: &Arc<Counters>, code: u64) -> Injected {
        Injected::armed(counters, code, None)
    }

    /// A payload whose drop panics with fault `bomb`, if any.
    pub fn armed(counters: &Arc<Counters>, code: u64, bomb: Option<u64>) -> Injected {
        Injected {
            code,
            counted: Counted::armed(counters, What::Payload, bomb),
        }
    }

    pub fn bomb(&self) -> Option<u64> {
        self.counted.bomb()
    }
}

impl fmt::Debug for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Injected({})", self.code)
    }
}

/// The per-thread state of `map_init`: counted, used by each item, and
/// perhaps panicking in its drop.
pub struct State {
    uses: u64,
    _counted: Counted,
}

impl State {
    pub fn new(counters: &Arc<Counters>, bomb: Option<u64>) -> State {
        State {
            uses: 0,
            _counted: Counted::armed(counters, What::State, bomb),
        }
    }

    pub fn use_once(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }
}

/// A value a closure of `spawn`, `scope`, `apply` or a join captures, whose
/// drop panics.
pub struct Capture(Counted);

impl Capture {
    pub fn new(counters: &Arc<Counters>, code: u64) -> Capture {
        Capture(Counted::armed(counters, What::Capture, Some(code)))
    }

    pub fn bomb(&self) -> Option<u64> {
        self.0.bomb()
    }
}

/// The payload of a failed check (the message is also in `Ctx::failures`).
#[derive(Debug)]
pub struct CheckFailed(pub String);

/// Deliberate mistakes, to show that the checks catch them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    None,
    /// Every call is checked against a wrong answer.
    WrongAnswers,
    /// One result is counted as made and never dropped (a leak).
    Leak,
    /// One drop is counted twice.
    DoubleDrop,
    /// Every worker handle is checked against a wrong worker index.
    WrongIndex,
    /// Item 0 of every call of the map family runs twice, the second result
    /// replacing the first (what a claim that overlaps the previous one
    /// does): the answers stay right.
    RunTwice,
    /// A panic of `try_map`'s `f` is turned into an error (what an engine
    /// that let an error win over a panic would return).
    PanicLost,
}
