//! Randomized stress test of the whole public API.
//!
//! A seeded generator (`stress/gen.rs`) writes random programs: pools of 1 to
//! 4 threads; `map` (also with a fixed chunk size), `try_map`, `for_each`, `map_init`,
//! `apply`, `spawn` + `Task::join`, `join`, `scope` + `Scope::spawn`, `imap`,
//! `imap_unordered`, `in_worker` and `Worker::join` calls (the latter through
//! `in_worker`, or on the handle an item was given, passed down), nested
//! inside each other's items at random depths and across pools; panics (with
//! `String` and struct payloads) and errors injected in items, in `imap`
//! inputs, in `map_init`'s `init` and in `scope` bodies; values whose `Drop`
//! panics: `map_init` states, results (of the map family, `apply`, the
//! joins, `in_worker`, tasks, `imap`), struct panic payloads, values captured
//! by the closures of `spawn`, `scope`, `apply` and the joins, and `imap`
//! inputs; the calls made from up to 8 plain threads at once and from inside
//! workers; and pools dropped (from the driver, from a third thread, or from
//! one of their own workers) while another thread still holds their `Task`s
//! and an `Imap`; and locks held across nested calls (`Node::locked`: the
//! items of such a call hold its lock across their nested call, which is
//! safe only because a waiting worker runs only its own call's work).
//!
//! Every program (`stress/driver.rs`, `stress/exec.rs`) checks that every
//! call, at every depth, returns its sequential answer or re-raises one of
//! the faults that may win, with its payload (a map-family call in which `f`
//! panicked re-raises one of the panics `f` actually raised: a panic wins
//! over `try_map`'s error and over a result's drop); that every input,
//! result, state, error, payload and capture is dropped exactly once, and
//! that every value whose drop panics that the test gets back panics with
//! its own code when the test drops it (one at a time, under
//! `catch_unwind`: a `Vec` of two such values aborts when dropped, by Rust's
//! own rule, and the test never drops one while its thread unwinds); that
//! no item runs twice, and every item that must run (every item of a call
//! that returned, every task) ran exactly once; that every item runs where
//! it may and sees the thread-local its worker's `on_thread_start` set; that
//! every worker handle names the thread it is used on; that every worker's
//! hooks ran and no thread is left behind; and, by a watchdog, that nothing
//! hangs.
//!
//! Environment:
//! - `STEALPOOL_STRESS_SEED=<seed>` replays exactly the program of that seed
//!   (a failure prints it);
//! - `STEALPOOL_STRESS_SECS=<n>` runs for `n` seconds (a soak) instead of the
//!   CI budget of about 70 s;
//! - `STEALPOOL_UNDER_VALGRIND=1` makes the programs small and the watchdog
//!   patient (see `.ci/memcheck`).

#[path = "stress/answers.rs"]
mod answers;
mod common;
#[path = "stress/driver.rs"]
mod driver;
#[path = "stress/exec.rs"]
mod exec;
#[path = "stress/gen.rs"]
mod gen;
#[path = "stress/streams.rs"]
mod streams;
#[path = "stress/tally.rs"]
mod tally;
#[path = "stress/values.rs"]
mod values;
#[path = "stress/workers.rs"]
mod workers;

use gen::{Limits, Program};
use std::io::Write as _;
use std::panic;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tally::Tally;
use values::{CheckFailed, Injected, Sabotage, MARKER};

/// The CI run's time budget, in seconds.
const CI_SECS: f64 = 70.0;
/// Programs a CI run makes at least, whatever the time (39 consecutive seeds
/// cover every forced choice of the generator, see `gen::generate`).
const MIN_PROGRAMS: u64 = 100;
const MIN_PROGRAMS_UNDER_VALGRIND: u64 = 39;

/// How the run is set up, from the environment.
struct Settings {
    valgrind: bool,
    limits: Limits,
    /// The watchdog of one program.
    timeout: Duration,
    secs: f64,
    min_programs: u64,
}

fn settings() -> Settings {
    let valgrind = std::env::var_os("STEALPOOL_UNDER_VALGRIND").is_some_and(|v| v == "1");
    let secs = std::env::var("STEALPOOL_STRESS_SECS").ok().map(|s| {
        s.trim()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("STEALPOOL_STRESS_SECS must be a number, not {s:?}"))
    });
    if valgrind {
        Settings {
            valgrind,
            limits: Limits::SMALL,
            timeout: Duration::from_secs(600),
            secs: secs.unwrap_or(20.0),
            min_programs: MIN_PROGRAMS_UNDER_VALGRIND,
        }
    } else {
        Settings {
            valgrind,
            limits: Limits::NORMAL,
            timeout: Duration::from_secs(60),
            secs: secs.unwrap_or(CI_SECS),
            min_programs: MIN_PROGRAMS,
        }
    }
}

/// Keeps the injected panics (and the failed checks, which the driver
/// reports itself) quiet; every other panic is reported as usual.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let injected = payload.is::<Injected>()
                || payload.is::<CheckFailed>()
                || common::panic_message(payload).is_some_and(|m| m.starts_with(MARKER));
            if !injected {
                default(info);
            }
        }));
    });
}

/// The seed of the program the main test runs now (for [`on_crash`]).
static CURRENT_SEED: AtomicU64 = AtomicU64::new(NO_SEED);
const NO_SEED: u64 = u64::MAX;

/// A crash (a bug that aborts, or corrupts memory) cannot be reported by the
/// test: this handler says which seed was running, then passes the signal on
/// to the handler it replaced (std's, which reports stack overflows) or, if
/// there was none, lets it take its default action.
extern "C" fn on_crash(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let seed = CURRENT_SEED.load(Ordering::Relaxed);
    if seed != NO_SEED {
        // Only async-signal-safe calls: the message is put together by hand
        // and written at once (several threads may crash together).
        let mut message = [0u8; 160];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if len < message.len() {
                    message[len] = b;
                    len += 1;
                }
            }
        };
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = seed;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        put(b"\nstress: the process crashed running a program; replay it with STEALPOOL_STRESS_SEED=");
        put(&digits[at..]);
        put(b"\n");
        // SAFETY: writing a valid buffer to stderr.
        unsafe { libc::write(2, message.as_ptr().cast(), len) };
    }
    let Some(previous) = PREVIOUS_HANDLERS.get().and_then(|all| {
        CRASH_SIGNALS
            .iter()
            .position(|&s| s == signal)
            .map(|i| &all[i])
    }) else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler != libc::SIG_DFL
        && handler != libc::SIG_IGN
        && previous.sa_flags & libc::SA_SIGINFO != 0
    {
        // SAFETY: an SA_SIGINFO handler takes these three arguments.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        handler(signal, info, context);
    } else {
        // Back to what it was; a fault then strikes again on return, and
        // `abort` raises SIGABRT again itself.
        // SAFETY: reinstalling the action read at install time.
        unsafe { libc::sigaction(signal, previous, std::ptr::null_mut()) };
    }
}

const CRASH_SIGNALS: [libc::c_int; 5] = [
    libc::SIGABRT,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

/// The actions [`on_crash`] replaced, by the index of their signal in
/// [`CRASH_SIGNALS`].
static PREVIOUS_HANDLERS: OnceLock<Vec<libc::sigaction>> = OnceLock::new();

/// Installs [`on_crash`] for the crash signals, once, on the alternate
/// signal stack (where std's handlers run too, so that a stack overflow can
/// still be reported).
fn report_seed_on_crash() {
    PREVIOUS_HANDLERS.get_or_init(|| {
        CRASH_SIGNALS
            .iter()
            .map(|&signal| {
                // SAFETY: plain-data structs, valid when zeroed.
                let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
                let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
                action.sa_sigaction = on_crash as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                // SAFETY: `on_crash` makes only async-signal-safe calls;
                // both structs are valid.
                let rc = unsafe {
                    libc::sigemptyset(&mut action.sa_mask);
                    libc::sigaction(signal, &action, &mut previous)
                };
                assert_eq!(rc, 0, "sigaction({signal}) failed");
                previous
            })
            .collect()
    });
}

/// Runs the program of `seed` under a watchdog.
fn run_seed(
    seed: u64,
    settings: &Settings,
    tally: &Arc<Tally>,
    sabotage: Sabotage,
) -> Result<(), String> {
    let program = gen::generate(seed, settings.limits);
    let rendezvous = Duration::from_secs(settings.limits.rendezvous_secs);
    let tally = Arc::clone(tally);
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("stress-{seed}"))
        .spawn(move || {
            let _ = tx.send(driver::run_program(program, rendezvous, &tally, sabotage));
        })
        .expect("cannot start a program's thread");
    match rx.recv_timeout(settings.timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the program did not finish within {} s: a deadlock or a hang \
             (its threads are left behind)",
            settings.timeout.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the program's thread panicked outside the checks".to_owned())
        }
    }
}

/// A failure report: what went wrong, how to replay it, and the program.
fn report(seed: u64, settings: &Settings, problem: &str) -> String {
    let program: Program = gen::generate(seed, settings.limits);
    // The programs under valgrind are the small ones.
    let valgrind = if settings.valgrind {
        "STEALPOOL_UNDER_VALGRIND=1 "
    } else {
        ""
    };
    format!(
        "stress: the program of seed {seed} failed:\n{problem}\n\
         replay exactly this program with:\n  \
         {valgrind}STEALPOOL_STRESS_SEED={seed} cargo test --test stress random_programs\n\
         {program}"
    )
}

/// Random programs, for a time budget (about 70 s, at least 100 programs)
/// or one replayed seed: every call gives its sequential answer or one of the
/// faults that may win, with its payload, at every depth; every value is
/// dropped once; nothing hangs; and, over a whole run, every kind of call,
/// every fault site and payload form, nesting, calls from workers and across
/// pools, concurrent plain callers and every way of dropping a pool that
/// still has work held elsewhere were exercised.
#[test]
fn random_programs_match_their_sequential_answers() {
    quiet_injected_panics();
    let settings = settings();
    let tally = Arc::new(Tally::default());
    if let Ok(seed) = std::env::var("STEALPOOL_STRESS_SEED") {
        let seed: u64 = seed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("STEALPOOL_STRESS_SEED must be a u64, not {seed:?}"));
        let program = gen::generate(seed, settings.limits);
        let _ = writeln!(std::io::stderr(), "stress: replaying\n{program}");
        report_seed_on_crash();
        CURRENT_SEED.store(seed, Ordering::Relaxed);
        if let Err(problem) = run_seed(seed, &settings, &tally, Sabotage::None) {
            panic!("{}", report(seed, &settings, &problem));
        }
        let _ = writeln!(
            std::io::stderr(),
            "stress: seed {seed} passed; {}",
            tally.summary()
        );
        return;
    }
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let base = gen::mix(clock, u64::from(std::process::id())) >> 20;
    let start = Instant::now();
    let mut programs = 0u64;
    report_seed_on_crash();
    while programs < settings.min_programs || start.elapsed().as_secs_f64() < settings.secs {
        let seed = base + programs;
        CURRENT_SEED.store(seed, Ordering::Relaxed);
        if let Err(problem) = run_seed(seed, &settings, &tally, Sabotage::None) {
            panic!("{}", report(seed, &settings, &problem));
        }
        programs += 1;
    }
    CURRENT_SEED.store(NO_SEED, Ordering::Relaxed);
    let _ = writeln!(
        std::io::stderr(),
        "stress: {programs} programs in {:.1} s, seeds {base}..={} \
         (replay one with STEALPOOL_STRESS_SEED=<seed>); {}",
        start.elapsed().as_secs_f64(),
        base + programs - 1,
        tally.summary()
    );
    let mut missing: Vec<String> = tally
        .coverage()
        .into_iter()
        .filter(|(_, count)| *count == 0)
        .map(|(name, _)| name)
        .collect();
    let most_callers = tally.most_callers.load(Ordering::Relaxed);
    if most_callers < settings.limits.max_callers {
        missing.push(format!(
            "a program with {} plain callers (at most {most_callers})",
            settings.limits.max_callers
        ));
    }
    if settings.valgrind {
        // A few small programs under valgrind check memory, not coverage.
        if !missing.is_empty() {
            let _ = writeln!(std::io::stderr(), "stress: not exercised: {missing:?}");
        }
        return;
    }
    assert!(
        missing.is_empty(),
        "the generator never produced: {missing:?} (seeds {base}..{})",
        base + programs
    );
}

/// The checks are not vacuous: the same kind of programs, checked against
/// wrong answers or wrong worker indices, with one result leaked or one
/// drop counted twice, with an item of each map call run twice, or with a
/// panic of `try_map`'s `f` turned into an error, are reported as failures.
#[test]
fn the_checks_catch_wrong_answers_leaks_and_double_drops() {
    quiet_injected_panics();
    let settings = Settings {
        limits: Limits::SMALL,
        ..settings()
    };
    let tally = Arc::new(Tally::default());
    // Seeds 11, 12, 24 and 25 start with an `in_worker` or a `Worker::join`
    // (see `gen::generate`).
    for (sabotage, symptom, seeds) in [
        (Sabotage::WrongAnswers, ", expected ", [0, 1, 2, 3]),
        (Sabotage::Leak, "result values made", [0, 1, 2, 3]),
        (Sabotage::DoubleDrop, "result values made", [0, 1, 2, 3]),
        (
            Sabotage::WrongIndex,
            "got the handle of worker",
            [11, 12, 24, 25],
        ),
        // Seeds 0 to 3 start with a `Map`, `MapChunked`, `TryMap` and
        // `ForEach`.
        (Sabotage::RunTwice, "item 0 ran 2 times", [0, 1, 2, 3]),
        // Seeds 28, 67, 106 and 145 start with a `TryMap` whose item
        // panics. (The lost panic's error may itself lose to the panic of a
        // result's drop.)
        (
            Sabotage::PanicLost,
            "though f panicked in this call",
            [28, 67, 106, 145],
        ),
    ] {
        for seed in seeds {
            match run_seed(seed, &settings, &tally, sabotage) {
                Ok(()) => panic!("seed {seed} with {sabotage:?} passed its checks"),
                Err(problem) => assert!(
                    problem.contains(symptom),
                    "seed {seed} with {sabotage:?} failed for another reason: {problem}"
                ),
            }
        }
        assert!(
            run_seed(4, &settings, &tally, Sabotage::None).is_ok(),
            "seed 4 failed without sabotage"
        );
    }
}
