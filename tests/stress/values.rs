//! The values the stress test counts (every one must be dropped exactly
//! once), its panic payloads, and the thread-local its workers set.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
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
}

/// Names of the [`What`]s, by index.
pub const WHATS: [&str; 4] = [
    "input",
    "result",
    "map_init state",
    "Injected payload or error",
];

/// Creations and drops of counted values, by [`What`].
#[derive(Debug, Default)]
pub struct Counters {
    pub made: [AtomicUsize; 4],
    pub dropped: [AtomicUsize; 4],
}

/// A value whose creation and drop are counted.
pub struct Counted {
    counters: Arc<Counters>,
    what: What,
}

impl Counted {
    pub fn new(counters: &Arc<Counters>, what: What) -> Counted {
        counters.made[what as usize].fetch_add(1, Ordering::SeqCst);
        Counted {
            counters: Arc::clone(counters),
            what,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counters.dropped[self.what as usize].fetch_add(1, Ordering::SeqCst);
    }
}

/// An input or a result.
pub struct Val {
    pub v: u64,
    _counted: Counted,
}

impl Val {
    pub fn new(counters: &Arc<Counters>, v: u64, what: What) -> Val {
        Val {
            v,
            _counted: Counted::new(counters, what),
        }
    }
}

/// The struct form of an injected fault: a panic payload, or the error of
/// `try_map`.
pub struct Injected {
    pub code: u64,
    _counted: Counted,
}

impl Injected {
    pub fn new(counters: &Arc<Counters>, code: u64) -> Injected {
        Injected {
            code,
            _counted: Counted::new(counters, What::Payload),
        }
    }
}

impl fmt::Debug for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Injected({})", self.code)
    }
}

/// The per-thread state of `map_init`: counted, and used by each item.
pub struct State {
    uses: u64,
    _counted: Counted,
}

impl State {
    pub fn new(counters: &Arc<Counters>) -> State {
        State {
            uses: 0,
            _counted: Counted::new(counters, What::State),
        }
    }

    pub fn use_once(&mut self) -> u64 {
        self.uses += 1;
        self.uses
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
