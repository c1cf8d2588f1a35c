//! What the models share: running a model with explicit bounds, and a value
//! whose every access loom checks for data races.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Instant;

use stealpool::Pool;

/// Runs `model` under loom with `preemptions` as the preemption bound, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise. The other bounds are loom's
/// defaults or its environment variables (`LOOM_MAX_BRANCHES`, 1,000 by
/// default, makes a livelock fail fast).
///
/// Prints the bound, the number of executions explored and the time taken.
pub fn check<F>(name: &str, preemptions: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    let bound = builder.preemption_bound;
    let bound_text = bound.map_or_else(|| "none".to_string(), |b| b.to_string());
    let mutant = match stealpool::model_hooks::MUTANT {
        Some(mutant) => format!(" (mutant {mutant})"),
        None => String::new(),
    };
    println!("model {name}{mutant}: exploring, preemption bound {bound_text}");
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    println!(
        "model {name}{mutant}: preemption bound {bound_text}, {} executions, {:.1} s",
        executions.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

/// Runs `caller` with `pool` on a new thread outside the pool, joins that
/// thread, then drops the pool on the model's main thread.
///
/// Why the older models call from a thread of their own: the engine wakes
/// a caller outside the pool just after it publishes the caller's latch,
/// so the caller may already be past its wait when the wake-up arrives,
/// and loom 0.7 fails the model if an `unpark` reaches a thread blocked on
/// a mutex or in a join (loom issue #249), which a main thread that goes on
/// to drop the pool can be. Under loom an outside waiter now parks on a
/// token of its own (`src/sync.rs`, `parking`), so calls from the main
/// thread work (model 21, `calls_from_the_models_main_thread`, and a
/// user's models, `loom-example/`); the models written before keep this
/// helper so that their bounds and execution counts stay as documented.
pub fn from_outside<F>(pool: Pool, caller: F)
where
    F: FnOnce(&Pool) + Send + 'static,
{
    let pool = Arc::new(pool);
    let shared = Arc::clone(&pool);
    loom::thread::spawn(move || caller(&shared))
        .join()
        .expect("the caller thread panicked");
    let pool = Arc::try_unwrap(pool).unwrap_or_else(|_| unreachable!("the caller kept the pool"));
    drop(pool);
}

/// Installs (once) a panic hook that stays silent for the panics a model
/// provokes on purpose (whose message is exactly `expected`), and reports
/// every other panic as the default hook does.
pub fn quiet_expected_panics(expected: &'static str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message != Some(expected) {
                default(info);
            }
        }));
    });
}

/// A value in a `loom::cell::UnsafeCell`: loom counts its creation as a write
/// by the creating thread and checks every later access, so reading or
/// writing it on a thread that is not ordered after that write (or after a
/// concurrent access) fails the model with "Causality violation".
#[derive(Debug)]
pub struct Tracked<T>(loom::cell::UnsafeCell<T>);

impl<T: Copy> Tracked<T> {
    /// A new value, written by the calling thread.
    pub fn new(value: T) -> Tracked<T> {
        Tracked(loom::cell::UnsafeCell::new(value))
    }

    /// Reads the value (a checked read access).
    pub fn get(&self) -> T {
        // SAFETY: loom checks that no write races with this read.
        self.0.with(|value| unsafe { *value })
    }

    /// Overwrites the value (a checked write access).
    pub fn set(&self, value: T) {
        // SAFETY: loom checks that no access races with this write.
        self.0.with_mut(|slot| unsafe { *slot = value });
    }
}

// SAFETY: every access goes through loom's checked `with`/`with_mut`, which
// fail the model on a data race instead of letting it happen.
unsafe impl<T: Send> Sync for Tracked<T> {}
