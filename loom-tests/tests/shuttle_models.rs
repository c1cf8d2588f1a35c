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
    check_schedules(name, DEFAULT_SCHEDULES, model);
}

/// As [`check`], with `default` schedules per scheduler unless
/// `STEALPOOL_SHUTTLE_SCHEDULES` says otherwise: for a model whose schedule
/// of interest is rare enough that 5,000 would miss it now and then.
fn check_schedules<F>(name: &str, default: usize, model: F)
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
        Err(_) => default,
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
                        let squares = pool.options().chunk_size(1).map(&[1u64, 2, 3, 4], |x| {
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
        let outer = pool.options().chunk_size(1).map(&[1u64, 2, 3], |&x| {
            pool.options()
                .chunk_size(1)
                .map(&[x, x + 1], |y| y * 10)
                .iter()
                .sum::<u64>()
        });
        assert_eq!(outer, [30, 50, 70]);
    });
}

/// Isolation, on 4 workers: the items of an outer map (called from inside
/// the pool) each hold one shuttle `Mutex` across an inner call, a
/// fixed-chunk `map` (`options().chunk_size(1)`) or a `join` by turns. Each
/// inner item spawns a task that takes the same mutex, then yields a few
/// times, so that while one thread runs it the caller of the inner call
/// waits with the task on its own deque (or another's). A waiter that ran
/// the task, or another outer item, would lock the mutex a second time on
/// its own thread: shuttle reports the deadlock (mutant
/// `waiter_runs_foreign`). Every sum is right and every task ran once.
///
/// The spawned task is what makes the mutant's failure likely: the outer
/// map's wave hands its tickets to the other workers, which steal the oldest
/// job first, so a waiter rarely finds an outer item still queued.
#[test]
fn locks_held_across_nested_calls() {
    check("locks_held_across_nested_calls", || {
        let pool = pool(4);
        let lock = Arc::new(shuttle::sync::Mutex::new(0u64));
        let tasks = shuttle::sync::Mutex::new(Vec::new());
        let inner_item = |y: u64| {
            let lock = Arc::clone(&lock);
            let task = pool.spawn(move || *lock.lock().expect("no item panicked") += 1000);
            tasks.lock().expect("no item panicked").push(task);
            for _ in 0..INNER_ITEM_YIELDS {
                shuttle::thread::yield_now();
            }
            y * 10
        };
        let outer = pool.apply(|| {
            pool.options().chunk_size(1).map(&[1u64, 2], |&x| {
                let mut total = lock.lock().expect("no item panicked");
                let inner = if x % 2 == 0 {
                    pool.options()
                        .chunk_size(1)
                        .map(&[x, x + 1], |&y| inner_item(y))
                        .iter()
                        .sum::<u64>()
                } else {
                    let (a, b) = pool.join(|| inner_item(x), || inner_item(x + 1));
                    a + b
                };
                *total += inner;
                inner
            })
        });
        let tasks = std::mem::take(&mut *tasks.lock().expect("no item panicked"));
        assert_eq!(tasks.len(), 4);
        tasks.into_iter().for_each(|task| task.join());
        assert_eq!(outer, [30, 50]);
        assert_eq!(*lock.lock().expect("no item panicked"), 4080);
    });
}

/// How many times an inner item of `locks_held_across_nested_calls` yields
/// after spawning its task: enough for the inner call's caller to finish its
/// own chunk and look for work while another thread runs this one.
const INNER_ITEM_YIELDS: usize = 8;

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

/// A flag that threads block on until it is set: a shuttle mutex and
/// condition variable, so that a thread waiting on it forever is a deadlock
/// that shuttle reports.
#[derive(Default)]
struct Flag {
    set: shuttle::sync::Mutex<bool>,
    changed: shuttle::sync::Condvar,
}

impl Flag {
    fn set(&self) {
        *self.set.lock().expect("no thread panicked") = true;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let mut set = self.set.lock().expect("no thread panicked");
        while !*set {
            set = self.changed.wait(set).expect("no thread panicked");
        }
    }
}

/// A job set aside reaches an idle worker, on 3 workers. A job of a worker
/// (`apply` from the main thread) opens a `scope` whose body blocks until its
/// task has started elsewhere, then waits for the scope: a wait that runs
/// only the scope's work. The task, on a second worker, spawns a task of no
/// call (`Pool::spawn`: a root) and blocks until that one has run. The
/// waiting worker may take the root task (from the second worker's deque or
/// the injector) and must set it aside; only the third worker can run it.
/// The publisher's wake-up went to that worker, which may have searched
/// while the waiter held the task, found nothing and gone back to sleep: the
/// set-aside must announce the task again (`WorkerThread::set_aside`, then
/// `Sleep::new_work`), or it stays on the injector while every worker
/// sleeps or blocks.
///
/// Kills `set_aside_unannounced` (`deadlock! blocked tasks`): the schedule
/// needs the waiter descheduled while it holds the task, about one PCT
/// schedule in 3,000 (the mutant's first failure came after 0.1 to 0.4 s of
/// 5,000-schedule runs, and one run in six of 5,000 PCT and 5,000 random
/// schedules missed it), so this model runs 30,000 schedules per scheduler.
#[test]
fn set_aside_job_reaches_an_idle_worker() {
    check_schedules("set_aside_job_reaches_an_idle_worker", 30_000, || {
        let pool = pool(3);
        let started = Flag::default();
        let ran = Arc::new(Flag::default());
        pool.apply(|| {
            pool.scope(|s| {
                s.spawn(|| {
                    started.set();
                    let done = Arc::clone(&ran);
                    // Detached: the flag says when it has run.
                    drop(pool.spawn(move || done.set()));
                    ran.wait();
                });
                started.wait();
            });
        });
    });
}

/// Scopes nested `depth` deep on `a` (each a call, none with a task), the
/// deepest calling `b.apply(leaf)`.
fn scopes_then_apply(a: &Pool, b: &Pool, depth: usize, leaf: &(dyn Fn() + Sync)) {
    if depth == 0 {
        b.apply(leaf);
        return;
    }
    a.scope(|_| scopes_then_apply(a, b, depth - 1, leaf));
}

/// Foreign waits deeper than their slot's atomics list (9 calls and more)
/// refuse a task of a call around them, the scope's, and must be judged
/// exactly by whoever sets it aside. On 2 workers of A, the two halves of a
/// join inside a scope each go 10 nested scopes down (calls that publish no
/// job) and call `apply` on B, whose closure blocks until a releaser
/// thread, woken by the first closure, has yielded 40 times; the first half
/// spawns a task of the outer scope before it goes down. Both waits refuse
/// the task. Judged exactly, each waiter sets it aside a few times before
/// it sleeps (at most 8 in 40,000 schedules); judged from the atomics
/// alone, each poked itself (and the other) back to the task it had just
/// set aside, for as long as the closures block.
///
/// Kills `deep_waits_over_accept` (`deep waits set the task aside`, 160
/// times in the first failing schedule).
#[test]
fn deep_waits_refuse_a_task_once() {
    check_schedules("deep_waits_refuse_a_task_once", 1000, || {
        let a = Arc::new(pool(2));
        let b = pool(2);
        let started = Arc::new(Flag::default());
        let release = Arc::new(Flag::default());
        let releaser = {
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            shuttle::thread::spawn(move || {
                started.wait();
                for _ in 0..40 {
                    shuttle::thread::yield_now();
                }
                release.set();
            })
        };
        let leaf = || {
            started.set();
            release.wait();
        };
        a.apply(|| {
            a.scope(|s| {
                a.join(
                    || {
                        s.spawn(|| {});
                        scopes_then_apply(&a, &b, 10, &leaf);
                    },
                    || scopes_then_apply(&a, &b, 10, &leaf),
                );
            });
        });
        releaser.join().expect("the releaser");
        let set_aside = a.stats().set_aside;
        assert!(
            set_aside <= 20,
            "deep waits set the task aside {set_aside} times: judged exactly, each \
             waiter refuses it a few times before it sleeps"
        );
    });
}

/// A foreign wait inside a job that another foreign wait ran refuses what
/// that wait refuses. On pool P (2 workers), one worker is held by a task
/// until the end; the other runs a a fixed-chunk `map` (`options().chunk_size(n)`) over 3 items from `apply`,
/// whose item 0 holds a shuttle `Mutex` across `apply` on Q (1 worker),
/// whose closure blocks until a task spawned on P from outside has called
/// `apply` on R (1 worker) and returned. Only the map's worker can run that
/// task, inside its wait on Q; the task's own wait on R must then refuse
/// the map's ticket, as the wait on Q does: running it would run item 1,
/// which takes the mutex again on the same thread.
///
/// Kills `nested_wait_forgets_below` (`tried to acquire a Mutex it already
/// holds`).
#[test]
fn nested_foreign_waits_refuse_the_outer_loop() {
    check_schedules("nested_foreign_waits_refuse_the_outer_loop", 1000, || {
        let p = Arc::new(pool(2));
        let q = pool(1);
        let r = Arc::new(pool(1));
        let end = Arc::new(Flag::default());
        let holding = Arc::new(Flag::default());
        let task_done = Arc::new(Flag::default());
        let lock = Arc::new(shuttle::sync::Mutex::new(0u32));
        let blocker = {
            let end = Arc::clone(&end);
            p.spawn(move || end.wait())
        };
        let mapper = {
            let (p, holding, task_done, lock) = (
                Arc::clone(&p),
                Arc::clone(&holding),
                Arc::clone(&task_done),
                Arc::clone(&lock),
            );
            shuttle::thread::spawn(move || {
                p.apply(|| {
                    p.options().chunk_size(1).map(&[0u32, 1, 2], |&i| {
                        let mut total = lock.lock().expect("no item panicked");
                        if i == 0 {
                            holding.set();
                            q.apply(|| task_done.wait());
                        }
                        *total += i;
                    })
                })
            })
        };
        holding.wait();
        {
            let (r, task_done) = (Arc::clone(&r), Arc::clone(&task_done));
            drop(p.spawn(move || {
                r.apply(|| ());
                task_done.set();
            }));
        }
        mapper.join().expect("the mapper");
        end.set();
        blocker.join();
        assert_eq!(*lock.lock().expect("no item panicked"), 3);
    });
}

/// A lock held across `Task::join` on another pool. On pool A (2 workers),
/// from `apply`, a a fixed-chunk `map` (`options().chunk_size(n)`) over 3 items, each holding one shuttle
/// `Mutex` while it spawns a task on pool B (1 worker) and joins it. A's
/// worker waiting for the task waits on a root call (a task's), whose
/// ancestors say nothing; it must refuse the map's ticket because it works
/// inside the map, or it starts another item on its own thread, which
/// takes the mutex again.
///
/// Kills `foreign_wait_ignores_its_context` (`tried to acquire a Mutex it
/// already holds`).
#[test]
fn lock_across_a_task_join_on_another_pool() {
    check("lock_across_a_task_join_on_another_pool", || {
        let a = pool(2);
        let b = pool(1);
        let total = shuttle::sync::Mutex::new(0u32);
        a.apply(|| {
            a.options().chunk_size(1).map(&[1u32, 2, 3], |&i| {
                let mut total = total.lock().expect("no item panicked");
                *total += b.spawn(move || i).join();
            })
        });
        assert_eq!(*total.lock().expect("no item panicked"), 6);
    });
}

/// A waiter's job queued behind jobs it refuses, in the deque of a worker
/// that blocks until the waiter has run it. On 2 workers, from `apply`, a
/// `scope` spawns task B and blocks until B has started (so the other
/// worker runs it), then waits for the scope: a wait that takes only the
/// scope's jobs. B spawns 4 detached tasks (roots, which the wait refuses)
/// and then the scope's task J, all on its own deque, and blocks until J
/// has run. The waiter must steal past the 4 roots (setting each aside) to
/// reach J; if it takes one job per victim per search, it sets aside one
/// root a search, spends its rounds and sleeps with J still queued, and no
/// publication pokes it again: the stress test hung this way (seed
/// 156359923735, a worker blocked on a lock that the waiter held).
///
/// Kills `waiter_steals_once_per_victim` (`deadlock! blocked tasks`).
#[test]
fn waiter_steals_past_refused_jobs() {
    check_schedules("waiter_steals_past_refused_jobs", 1000, || {
        let pool = pool(2);
        let started = Flag::default();
        let j_ran = Flag::default();
        let roots_ran = Arc::new(AtomicUsize::new(0));
        pool.apply(|| {
            pool.scope(|s| {
                s.spawn(|| {
                    started.set();
                    for _ in 0..4 {
                        let roots_ran = Arc::clone(&roots_ran);
                        drop(pool.spawn(move || {
                            roots_ran.fetch_add(1, Ordering::Relaxed);
                        }));
                    }
                    s.spawn(|| j_ran.set());
                    j_ran.wait();
                });
                started.wait();
            });
        });
        drop(pool);
        assert_eq!(roots_ran.load(Ordering::Relaxed), 4);
    });
}
