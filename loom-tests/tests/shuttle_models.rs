//! Shuttle schedules of bigger programs than loom can explore.
//!
//! Loom explores every interleaving, but only of tiny models. These tests run
//! the same shipped engine (through `src/sync.rs`, whose third backend is
//! shuttle's, and the stand-in deque of `src/deque/stand_in.rs`) under
//! shuttle's randomized schedulers, on programs of 4 workers and several
//! outside threads: PCT (probabilistic concurrency testing, which finds a bug
//! of depth `d` with a known probability per schedule) and a uniformly random
//! scheduler. Shuttle runs every atomic as `SeqCst`, so these schedules
//! complement the loom models (weak memory, small programs); they do not
//! replace them. `docs/verification.md` has the table and the replay recipe.
//!
//! ```sh
//! RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test --release -p stealpool-loom-tests --test shuttle_models
//! ```
//!
//! `STEALPOOL_SHUTTLE_SCHEDULES=N` sets the schedules per scheduler and model
//! (default 5000). A failing schedule is printed by shuttle as a string that
//! `STEALPOOL_SHUTTLE_REPLAY="<string>"` replays (with `--test-threads=1` and
//! the one model named, e.g. `-- shutdown_while_queued`).
#![cfg(all(shuttle, not(loom)))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, Runner};
use stealpool::Pool;

/// Schedules per scheduler and model unless `STEALPOOL_SHUTTLE_SCHEDULES`
/// says otherwise.
const DEFAULT_SCHEDULES: usize = 5000;

/// The PCT depth: the number of priority changes per schedule, which bounds
/// the depth of the bugs PCT is tuned to find (shuttle's own tests use 2-3).
const PCT_DEPTH: usize = 3;

/// Runs `model` under PCT and under the random scheduler, each for the
/// configured number of schedules, or replays one failing schedule when
/// `STEALPOOL_SHUTTLE_REPLAY` is set. Prints the schedules and time taken.
fn check<F>(name: &str, model: F)
where
    F: Fn() + Send + Sync + 'static,
{
    if let Ok(schedule) = std::env::var("STEALPOOL_SHUTTLE_REPLAY") {
        println!("shuttle {name}: replaying one schedule");
        shuttle::replay(model, &schedule);
        return;
    }
    let schedules = match std::env::var("STEALPOOL_SHUTTLE_SCHEDULES") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("STEALPOOL_SHUTTLE_SCHEDULES={text:?} is not a count")),
        Err(_) => DEFAULT_SCHEDULES,
    };
    let mutant = match stealpool::MUTANT {
        Some(mutant) => format!(" (mutant {mutant})"),
        None => String::new(),
    };
    println!("shuttle {name}{mutant}: {schedules} schedules per scheduler");
    let model = Arc::new(model);
    let started = Instant::now();
    let pct = Arc::clone(&model);
    Runner::new(PctScheduler::new(PCT_DEPTH, schedules), config()).run(move || pct());
    let random = Arc::clone(&model);
    Runner::new(RandomScheduler::new(schedules), config()).run(move || random());
    println!(
        "shuttle {name}{mutant}: {schedules} PCT (depth {PCT_DEPTH}) + {schedules} random schedules, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Shuttle's default configuration, without its warning that it runs every
/// atomic as `SeqCst` (the module documentation says so, and the loom models
/// cover the weaker orderings).
fn config() -> Config {
    let mut config = Config::new();
    config.silence_warnings = true;
    config
}

/// A pool of `threads` workers; building one cannot fail in a model.
fn pool(threads: usize) -> Pool {
    Pool::new(threads).expect("a pool of a few threads builds")
}

/// 4 workers, 3 outside submitters each using a different entry point
/// (`spawn` + `Task::join`, `apply`, `map`) at once: every task runs exactly
/// once, every result is right, every submitter's wait returns, and dropping
/// the pool joins every worker.
#[test]
fn three_submitters_four_workers() {
    check("three_submitters_four_workers", || {
        let pool = Arc::new(pool(4));
        let runs = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..3)
            .map(|who| {
                let pool = Arc::clone(&pool);
                let runs = Arc::clone(&runs);
                shuttle::thread::spawn(move || match who {
                    0 => {
                        let tasks: Vec<_> = (0..3u64)
                            .map(|i| {
                                let runs = Arc::clone(&runs);
                                pool.spawn(move || {
                                    runs.fetch_add(1, Ordering::Relaxed);
                                    i * 10
                                })
                            })
                            .collect();
                        let sum: u64 = tasks.into_iter().map(|task| task.join()).sum();
                        assert_eq!(sum, 30);
                    }
                    1 => {
                        let value = pool.apply(|| {
                            runs.fetch_add(1, Ordering::Relaxed);
                            7
                        });
                        assert_eq!(value, 7);
                    }
                    _ => {
                        let squares = pool.map_chunked(&[1u64, 2, 3, 4], 1, |x| {
                            runs.fetch_add(1, Ordering::Relaxed);
                            x * x
                        });
                        assert_eq!(squares, [1, 4, 9, 16]);
                    }
                })
            })
            .collect();
        for submitter in submitters {
            submitter.join().expect("a submitter panicked");
        }
        assert_eq!(runs.load(Ordering::Relaxed), 3 + 1 + 4);
        drop(pool);
    });
}

/// A map whose items each run an inner map, on 3 workers, called from
/// outside: waiting workers run other chunks, results come back in order.
#[test]
fn nested_map() {
    check("nested_map", || {
        let pool = pool(3);
        let outer = pool.map_chunked(&[1u64, 2, 3], 1, |&x| {
            pool.map_chunked(&[x, x + 1], 1, |y| y * 10)
                .iter()
                .sum::<u64>()
        });
        assert_eq!(outer, [30, 50, 70]);
    });
}

/// fib(5) by `join` on 4 workers: every join promotes under a model checker,
/// so halves are taken back and stolen in every mix, and the sum is right.
#[test]
fn join_tree() {
    fn fib(pool: &Pool, n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let (a, b) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
        a + b
    }
    check("join_tree", || {
        let pool = pool(4);
        assert_eq!(pool.apply(|| fib(&pool, 5)), 5);
    });
}

/// A scope whose tasks spawn tasks, on 3 workers: the scope returns only
/// after every task, the grandchildren included, ran, and their writes to the
/// caller's stack are visible to the caller.
#[test]
fn scope_spawns_recursively() {
    check("scope_spawns_recursively", || {
        let pool = pool(3);
        let mut slots = [0u64; 4];
        pool.scope(|s| {
            for (i, slot) in slots.iter_mut().enumerate() {
                s.spawn(move || s.spawn(move || *slot = i as u64 + 1));
            }
        });
        assert_eq!(slots, [1, 2, 3, 4]);
    });
}

/// An `imap` on 2 workers whose consumer takes two results and drops the
/// iterator: the results come in order, and dropping it returns (no batch is
/// waited for forever, none runs after the pool is gone).
///
/// The window bounds what the drop can leave behind. Under a model checker
/// every batch holds one item and the default window stays at
/// `DEFAULT_WINDOW_PER_THREAD` (32) per thread, 64 here: the first `next()`
/// takes 64 items from the input and returns one; the second takes one more
/// to fill the window again and returns the next. So exactly 65 items were
/// taken when the iterator is dropped, 63 of them still in flight: each of
/// those may already have run, or may still run on a worker that started its
/// batch before it saw the drop, but no item beyond them can ever run.
#[test]
fn imap_dropped_early() {
    const WINDOW: usize = 2 * stealpool::DEFAULT_WINDOW_PER_THREAD;
    const TAKEN: usize = WINDOW + 1;
    check("imap_dropped_early", || {
        let pool = pool(2);
        let taken = Arc::new(AtomicUsize::new(0));
        let pulled = Arc::clone(&taken);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        let input = (0u64..200).inspect(move |_| {
            pulled.fetch_add(1, Ordering::Relaxed);
        });
        let mut results = pool.imap(input, move |x| {
            counter.fetch_add(1, Ordering::Relaxed);
            x * 2
        });
        assert_eq!(results.next(), Some(0));
        assert_eq!(results.next(), Some(2));
        drop(results);
        drop(pool);
        // The consumer pulls the input itself, so this count is exact.
        assert_eq!(
            taken.load(Ordering::Relaxed),
            TAKEN,
            "imap dropped early: the window let other than {TAKEN} items be taken"
        );
        // The two results returned ran; at most the items taken did. (The
        // pool's drop joined its workers, so every batch that will ever run
        // has run.)
        let ran = ran.load(Ordering::Relaxed);
        assert!(
            (2..=TAKEN).contains(&ran),
            "imap dropped early: {ran} items ran, {TAKEN} were taken"
        );
    });
}

/// `imap_unordered` with a window of one on 2 workers, consumed by an outside
/// thread: the consumer waits on the completion queue once per item, and
/// every wait is woken (the lost wake-up of `tests/imap_unordered_wakeup.rs`
/// is a deadlock here).
#[test]
fn imap_unordered_waits_in_a_row() {
    check("imap_unordered_waits_in_a_row", || {
        let pool = pool(2);
        let mut got: Vec<u64> = pool
            .imap_unordered(1u64..=6, |x| x * 10)
            .window(1)
            .collect();
        got.sort_unstable();
        // The exact multiset: each result once (a sum accepts others).
        assert_eq!(got, [10, 20, 30, 40, 50, 60]);
    });
}

/// Four tasks spawned back to back on 4 workers, each blocked until all four
/// have started (a barrier): every worker must be woken for them, by the
/// spawner's wake-ups or by the baton a searching worker passes on. A task
/// left queued while a worker sleeps is a deadlock.
#[test]
fn burst_wakes_every_worker() {
    check("burst_wakes_every_worker", || {
        let pool = pool(4);
        let barrier = Arc::new(shuttle::sync::Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                pool.spawn(move || {
                    barrier.wait();
                })
            })
            .collect();
        for task in tasks {
            task.join();
        }
    });
}

/// An ordered `imap` that outlives its pool (2 workers): another thread
/// consumes it while the pool is dropped, so its submissions of batches race
/// with the pool's closing. Every result still arrives, in order (a batch
/// the closing pool refuses runs on the consumer; one it accepted runs on a
/// worker before the workers exit), and the drop joins every worker.
#[test]
fn imap_outlives_its_pool() {
    check("imap_outlives_its_pool", || {
        let pool = pool(2);
        let results = pool.imap(1u64..=6, |x| x * 3).window(2);
        let consumer = shuttle::thread::spawn(move || results.collect::<Vec<u64>>());
        drop(pool);
        let all = consumer.join().expect("the consumer panicked");
        assert_eq!(all, [3, 6, 9, 12, 15, 18]);
    });
}

/// Dropping a 4-worker pool while spawned tasks are still queued: every task
/// accepted before the drop runs, and every worker is joined.
#[test]
fn shutdown_while_queued() {
    check("shutdown_while_queued", || {
        let pool = pool(4);
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let runs = Arc::clone(&runs);
                pool.spawn(move || {
                    runs.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        drop(pool);
        assert_eq!(runs.load(Ordering::Relaxed), 4);
        for task in tasks {
            task.join();
        }
    });
}

/// An `on_thread_exit` hook pulls from an `Imap` of its own pool (the one
/// way a hook can give that pool work); after the drop, the main thread
/// drains the rest. The hook's batches must run on the hook's thread: one
/// left on the exiting worker's deque would never run, and the main
/// thread's `next()` would wait for it forever.
#[test]
fn exit_hook_work_runs_on_the_hook() {
    check("exit_hook_work_runs_on_the_hook", || {
        type Slot = shuttle::sync::Mutex<Option<stealpool::Imap<u64>>>;
        let slot: Arc<Slot> = Arc::new(shuttle::sync::Mutex::new(None));
        let pulled = Arc::new(shuttle::sync::Mutex::new(Vec::new()));
        let pool = {
            let (slot, pulled) = (Arc::clone(&slot), Arc::clone(&pulled));
            Pool::builder()
                .threads(2)
                .on_thread_exit(move |_| {
                    if let Some(imap) = slot.lock().unwrap().as_mut() {
                        pulled.lock().unwrap().extend(imap.next());
                    }
                })
                .build()
                .expect("a pool of a few threads builds")
        };
        *slot.lock().unwrap() = Some(pool.imap(1u64..=6, |x| x * 3).window(3));
        drop(pool);
        let mut seen = pulled.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one result per exit hook");
        let rest = slot.lock().unwrap().take().expect("the iterator is back");
        seen.extend(rest);
        assert_eq!(seen, [3, 6, 9, 12, 15, 18]);
    });
}
