//! A lock held across a pool call: the deadlocks that a waiting thread
//! running other work would cause (rayon #592, #1251), one test per kind of
//! wait. Each outer item takes one shared `Mutex` and, holding it, makes an
//! inner parallel call; the outer items are queued jobs, so a thread that
//! picked one up while waiting for its inner call would take the lock a
//! second time on the same thread and hang. Every test repeats the pattern
//! with a fresh pool under a per-attempt watchdog, and checks the exact sum.
//!
//! Before isolation (b2aedd6 with this file, 200 attempts per run), every
//! test hung: the nested map at attempt 0, 4 and 0, the join tree at 0, 0
//! and 2, the scope at 10, 0 and 0, `Task::join` at 0, 0 and 0, the call on
//! another pool at 18, 0 and 20, `imap` at 8, 14, 2, 4 and 2, the `OnceLock`
//! initializer at 19, 34 and 0. `STEALPOOL_ISOLATION_ATTEMPTS=N` runs N
//! attempts per test.

mod common;

use common::{watchdog, watchdog_each};
use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;
use stealpool::Pool;

/// Attempts per test (each a fresh pool), and the limit per attempt.
const ATTEMPTS: usize = 30;
const SECS: u64 = 5;
/// Outer items, and inner items per outer item.
const OUTER: u64 = 32;
const INNER: u64 = 4_000;

/// About 0.1 µs of work; one item in 512 also sleeps a little, so that a
/// call's last chunks keep its caller waiting now and then.
fn work(x: u64) -> u64 {
    if x % 512 == 511 {
        thread::sleep(Duration::from_micros(30));
    }
    let mut h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for _ in 0..8 {
        h = black_box(h.rotate_left(5) ^ 0x51);
    }
    h & 0xff
}

/// The sum the inner call of outer item `i` must return, for inner calls of
/// `inner` items (outer item `i` maps `i * inner..(i + 1) * inner`).
fn expected_inner(i: u64, inner: u64) -> u64 {
    (i * inner..(i + 1) * inner).map(work).sum()
}

fn expected_total(inner: u64) -> u64 {
    (0..OUTER).map(|i| expected_inner(i, inner)).sum()
}

/// Runs `outer` over the outer items on `pool`, from inside the pool (its
/// caller a worker) on even attempts and from a plain thread on odd ones;
/// each item adds `inner(i)` into the locked total, computed with the lock
/// held, which must be `expected_inner(i, inner_len)`.
fn locked_loop(
    attempt: usize,
    pool: &Arc<Pool>,
    inner_len: u64,
    inner: impl Fn(u64) -> u64 + Sync,
) {
    let total = Mutex::new(0u64);
    let items: Vec<u64> = (0..OUTER).collect();
    let body = || {
        pool.for_each(&items, |&i| {
            let mut guard = total.lock().expect("no item panicked");
            *guard += inner(i);
        })
    };
    if attempt % 2 == 0 {
        pool.apply(body);
    } else {
        body();
    }
    assert_eq!(
        total.into_inner().expect("no item panicked"),
        expected_total(inner_len)
    );
}

fn new_pool(threads: usize) -> Arc<Pool> {
    Arc::new(Pool::new(threads).expect("a pool"))
}

/// A lock held across a nested `map`.
#[test]
fn a_lock_across_a_nested_map() {
    watchdog_each(ATTEMPTS, SECS, "lock across map", |attempt| {
        let pool = new_pool(8);
        locked_loop(attempt, &pool, INNER, |i| {
            let input: Vec<u64> = (i * INNER..(i + 1) * INNER).collect();
            pool.map(&input, |&x| work(x)).iter().sum()
        });
    });
}

/// Inner items per task spawned in
/// [`a_lock_across_a_nested_map_whose_items_spawn_tasks`].
const ITEMS_PER_TASK: u64 = 512;

/// A lock held across a nested `map` whose items spawn tasks that take the
/// same lock. A task is a job of no call, pushed on the deque of the thread
/// that ran the item: often the waiter's own, under the inner call's
/// tickets. A waiter on the inner call must set it aside, not run it: a
/// wait that took the rule of a wait on another pool (which accepts the
/// pool's unrelated jobs and refuses only the enclosing calls' ones) would
/// take the lock a second time. The outer items alone cannot tell that
/// rule from the right one: both refuse them.
#[test]
fn a_lock_across_a_nested_map_whose_items_spawn_tasks() {
    watchdog_each(ATTEMPTS, SECS, "lock across map with tasks", |attempt| {
        let pool = new_pool(8);
        let total = Arc::new(Mutex::new(0u64));
        let tasks = Mutex::new(Vec::new());
        let items: Vec<u64> = (0..OUTER).collect();
        let body = || {
            pool.for_each(&items, |&i| {
                let mut guard = total.lock().expect("no item panicked");
                let input: Vec<u64> = (i * INNER..(i + 1) * INNER).collect();
                let inner: u64 = pool
                    .map(&input, |&x| {
                        if x % ITEMS_PER_TASK == 0 {
                            let total = Arc::clone(&total);
                            let task =
                                pool.spawn(move || *total.lock().expect("no item panicked") += 1);
                            tasks.lock().expect("no item panicked").push(task);
                        }
                        work(x)
                    })
                    .iter()
                    .sum();
                *guard += inner;
            })
        };
        if attempt % 2 == 0 {
            pool.apply(body);
        } else {
            body();
        }
        let tasks = tasks.into_inner().expect("no item panicked");
        let spawned = tasks.len() as u64;
        assert_eq!(spawned, OUTER * INNER / ITEMS_PER_TASK);
        tasks.into_iter().for_each(|task| task.join());
        assert_eq!(
            *total.lock().expect("no task panicked"),
            expected_total(INNER) + spawned
        );
    });
}

fn join_sum(pool: &Pool, range: std::ops::Range<u64>) -> u64 {
    if range.end - range.start <= 16 {
        return range.map(work).sum();
    }
    let mid = range.start + (range.end - range.start) / 2;
    let (a, b) = pool.join(
        || join_sum(pool, range.start..mid),
        || join_sum(pool, mid..range.end),
    );
    a + b
}

/// A lock held across a tree of `join`s.
#[test]
fn a_lock_across_a_join_tree() {
    watchdog_each(ATTEMPTS, SECS, "lock across join", |attempt| {
        let pool = new_pool(8);
        locked_loop(attempt, &pool, INNER, |i| {
            join_sum(&pool, i * INNER..(i + 1) * INNER)
        });
    });
}

/// A lock held across a `scope` whose tasks do the inner work.
#[test]
fn a_lock_across_a_scope() {
    watchdog_each(ATTEMPTS, SECS, "lock across scope", |attempt| {
        let pool = new_pool(8);
        locked_loop(attempt, &pool, INNER, |i| {
            const TASKS: u64 = 16;
            let parts: Vec<Mutex<u64>> = (0..TASKS).map(|_| Mutex::new(0)).collect();
            pool.scope(|s| {
                for (t, part) in parts.iter().enumerate() {
                    s.spawn(move || {
                        let per = INNER / TASKS;
                        let start = i * INNER + t as u64 * per;
                        *part.lock().expect("no task panicked") =
                            (start..start + per).map(work).sum();
                    });
                }
            });
            parts
                .into_iter()
                .map(|part| part.into_inner().expect("no task panicked"))
                .sum()
        });
    });
}

/// A lock held across `Task::join` of a task spawned under it.
#[test]
fn a_lock_across_a_task_join() {
    watchdog_each(ATTEMPTS, SECS, "lock across Task::join", |attempt| {
        let pool = new_pool(8);
        let spawner = Arc::clone(&pool);
        locked_loop(attempt, &pool, INNER, move |i| {
            let task = spawner.spawn(move || (i * INNER..(i + 1) * INNER).map(work).sum());
            // Give an idle worker time to take the task, so that the join
            // waits for it.
            thread::sleep(Duration::from_micros(100));
            task.join()
        });
    });
}

/// Items per outer item in the `imap` test: half through an `imap`, half
/// through an `imap_unordered`. Fewer than [`INNER`]: until an iterator has
/// timed a batch, each of its items is a task of its own.
const IMAP_INNER: u64 = 128;

/// An `imap` item: [`work`], and the first item of each iterator sleeps
/// 300 µs. That first batch (one item) is the oldest task on the consumer's
/// deque, so an idle worker steals it; the consumer runs the other batches
/// itself and then waits for it, which is when a waiting thread goes looking
/// for other work.
fn imap_work(x: u64) -> u64 {
    if x % (IMAP_INNER / 2) == 0 {
        thread::sleep(Duration::from_micros(300));
    }
    work(x)
}

/// A lock held while an `imap` (in order) and an `imap_unordered` are
/// consumed.
#[test]
fn a_lock_across_imap() {
    watchdog_each(ATTEMPTS, SECS, "lock across imap", |attempt| {
        let pool = new_pool(8);
        let inner_pool = Arc::clone(&pool);
        locked_loop(attempt, &pool, IMAP_INNER, move |i| {
            let range = i * IMAP_INNER..(i + 1) * IMAP_INNER;
            let half = range.start + IMAP_INNER / 2;
            let ordered: u64 = inner_pool.imap(range.start..half, imap_work).sum();
            let unordered: u64 = inner_pool.imap_unordered(half..range.end, imap_work).sum();
            ordered + unordered
        });
    });
}

/// A `OnceLock` whose initializer calls the pool, raced by many outer items
/// that all need its value (rayon #1251): the initializing thread, waiting
/// for its map, must not start another outer item, which would enter the
/// same initializer again (std's `OnceLock` deadlocks on that). Item 0 does
/// not need the value: the caller runs the first item alone before it asks
/// the pool for help (the drive's solo start), so an initializer run by item
/// 0 would finish before any other outer item could be queued.
#[test]
fn a_once_lock_initializer_that_calls_the_pool() {
    watchdog_each(ATTEMPTS * 2, SECS, "OnceLock initializer", |attempt| {
        let pool = new_pool(8);
        let cell: OnceLock<u64> = OnceLock::new();
        let items: Vec<u64> = (0..64).collect();
        let body = || {
            pool.map(&items, |&i| {
                // Each item's own part, long enough for the caller to ask
                // for help after item 0.
                thread::sleep(Duration::from_micros(50));
                if i == 0 {
                    return work(i);
                }
                let base = *cell.get_or_init(|| {
                    let input: Vec<u64> = (0..INNER).collect();
                    pool.options()
                        .chunk_size(64)
                        .map(&input, |&x| work(x))
                        .iter()
                        .sum()
                });
                base + i
            })
        };
        let out = if attempt % 2 == 0 {
            pool.apply(body)
        } else {
            body()
        };
        let base = expected_inner(0, INNER);
        let expected: Vec<u64> = items
            .iter()
            .map(|&i| if i == 0 { work(0) } else { base + i })
            .collect();
        assert_eq!(out, expected);
    });
}

/// Two pools: the outer items run on `a` and, holding the lock, call a `map`
/// on `b`. The worker of `a` that waits for `b` must not start another item
/// of the loop around it.
#[test]
fn a_lock_across_a_call_on_another_pool() {
    watchdog_each(
        ATTEMPTS,
        SECS,
        "lock across another pool's map",
        |attempt| {
            let a = new_pool(8);
            let b = new_pool(4);
            locked_loop(attempt, &a, INNER, |i| {
                let input: Vec<u64> = (i * INNER..(i + 1) * INNER).collect();
                b.map(&input, |&x| work(x)).iter().sum()
            });
            // And from a plain thread that is not the test's.
            let c = Arc::clone(&a);
            thread::spawn(move || {
                let total: u64 = c.map(&[1u64, 2, 3], |&x| x).iter().sum();
                assert_eq!(total, 6);
            })
            .join()
            .expect("the plain thread");
        },
    );
}

/// A lock held inside one half of a `join`, across a call on another pool:
/// `a` takes the lock and calls `B.apply`; `b` takes the same lock. Pool A
/// has one worker, so `b` (which `a`'s nested joins get promoted to the
/// deque by the heartbeat) can only run on `a`'s thread: after `a` returns,
/// or, if the foreign wait of `a` took it, inside that wait, where its lock
/// hangs. The join's call encloses the wait, which refuses `b`.
///
/// Before `a` ran inside the join's call (isolation at 1abd032), the first
/// attempt hung.
#[test]
fn a_lock_in_a_joins_first_half_across_a_call_on_another_pool() {
    watchdog_each(
        ATTEMPTS,
        SECS,
        "lock in a join's a across another pool's apply",
        |_| {
            let a = new_pool(1);
            let b = new_pool(1);
            let lock = Mutex::new(0u64);
            let (x, y) = a.join(
                || {
                    let mut guard = lock.lock().expect("no half panicked");
                    // Joins for 300 µs: the heartbeat promotes the pending
                    // `b` of the join around them to the deque.
                    let start = std::time::Instant::now();
                    let mut sum = 0;
                    while start.elapsed() < Duration::from_micros(300) {
                        let (p, q) = a.join(|| work(1), || work(2));
                        sum += p + q;
                    }
                    *guard += b.apply(|| work(3));
                    sum
                },
                || {
                    *lock.lock().expect("no half panicked") += 1;
                    work(4)
                },
            );
            assert!(x > 0);
            assert_eq!(y, work(4));
            assert_eq!(lock.into_inner().expect("no half panicked"), work(3) + 1);
        },
    );
}

/// Nested joins `depth` deep on `a`, the deepest calling `b.apply(f)`.
fn joins_then_apply(a: &Pool, b: &Pool, depth: usize, f: &(dyn Fn() + Sync)) {
    if depth == 0 {
        b.apply(f);
        return;
    }
    a.join(|| joins_then_apply(a, b, depth - 1, f), || {});
}

/// A foreign wait more calls deep than its slot's atomics list
/// (`isolation::SHOWN_ENCLOSING`) refuses the jobs of calls around it: the
/// scope's task, and the `b` of an outer join if the heartbeat promoted
/// it. It sets each aside, and sleeps until its call on the other pool
/// ends. The publisher of a set-aside job (the waiter itself here) must
/// judge the wait exactly, with the list of its other enclosing calls, or
/// it pokes the waiter for the job it has just refused: the waiter takes it
/// back, refuses it again and spins for the whole wait.
///
/// Each refused job is taken and set aside again once per search round
/// before the waiter sleeps (25): 52 set-asides here, whether the wait
/// lasts 200 ms or 1 s. Judged from the atomics alone (at 1abd032), a
/// 200 ms wait set the task aside 77,164 times.
#[test]
fn a_deep_foreign_wait_sets_a_refused_task_aside_once() {
    watchdog(20, || {
        let a = Pool::new(1).expect("a pool");
        let b = Pool::new(1).expect("a pool");
        let ran = std::sync::atomic::AtomicBool::new(false);
        a.apply(|| {
            a.scope(|s| {
                s.spawn(|| ran.store(true, std::sync::atomic::Ordering::Relaxed));
                joins_then_apply(&a, &b, 12, &|| thread::sleep(Duration::from_millis(200)));
            });
        });
        assert!(ran.load(std::sync::atomic::Ordering::Relaxed));
        let set_aside = a.stats().set_aside;
        assert!(
            (1..=200).contains(&set_aside),
            "the refused jobs were set aside {set_aside} times in a 200 ms wait \
             (once per search round before the waiter sleeps is right: more is \
             a waiter spinning on them)"
        );
    });
}

/// Two deep foreign waits on the two workers of one pool, both inside a
/// scope whose task neither may run (the scope encloses both waits): the
/// task is set aside, and each waiter must be told exactly that it refuses
/// it. Judged from the showing's atomics alone (the scope's call is past
/// the 8 enclosing calls they list), each waiter looked as if it accepted
/// the task: each set it aside with a poke for the other, which took it,
/// refused it and poked back, both at full speed for the whole wait.
///
/// The scope's body goes 12 joins down and calls B; so does a first task,
/// which the body's wait refuses too and sets aside for the other worker.
/// Judged from the atomics alone (the mutant `deep_waits_over_accept`),
/// the tasks were set aside 71,052 times in the 200 ms the waits last.
#[test]
fn two_deep_foreign_waits_do_not_pass_a_refused_task_back_and_forth() {
    watchdog(20, || {
        let a = Pool::new(2).expect("a pool");
        let b = Pool::new(2).expect("a pool");
        let leaves = Mutex::new(Vec::new());
        let leaf = || {
            leaves
                .lock()
                .expect("no leaf panicked")
                .push(thread::current().id());
            thread::sleep(Duration::from_millis(200));
        };
        a.apply(|| {
            a.scope(|s| {
                s.spawn(|| joins_then_apply(&a, &b, 12, &leaf));
                s.spawn(|| {});
                joins_then_apply(&a, &b, 12, &leaf);
            });
        });
        let leaves = leaves.into_inner().expect("no leaf panicked");
        let set_aside = a.stats().set_aside;
        assert_eq!(leaves.len(), 2);
        assert!(
            set_aside <= 400,
            "the tasks were set aside {set_aside} times while two deep waits lasted \
             200 ms (a few times per search round before each waiter sleeps is \
             right: more is the waiters passing one back and forth)"
        );
    });
}

/// A foreign wait inside a job that another foreign wait ran: the outer
/// item of a a fixed-chunk `map` on pool P holds the lock across a call on Q; the
/// waiting worker of P runs an unrelated task (spawned on P from outside),
/// which calls R and waits again. That second wait must refuse the map's
/// ticket too (the map encloses the first wait, lower on the same thread):
/// it would run item 1, which takes the lock a second time on the thread.
/// P's other worker is kept busy, so only the waiting worker can take the
/// ticket.
///
/// Before a foreign wait refused what the foreign waits below it refuse
/// (at e65a6a3), the first attempt hung.
#[test]
fn a_wait_inside_a_job_run_by_a_foreign_wait_refuses_what_that_wait_refuses() {
    watchdog_each(
        10,
        SECS,
        "lock across a foreign wait that runs a job that waits again",
        |_| {
            let p = Pool::new(2).expect("a pool");
            let q = Pool::new(1).expect("a pool");
            let r = Arc::new(Pool::new(1).expect("a pool"));
            let lock = Mutex::new(0u64);
            // One worker of P sleeps through the attempt.
            let busy = p.spawn(|| thread::sleep(Duration::from_millis(150)));
            thread::sleep(Duration::from_millis(5));
            let (holding, held) = std::sync::mpsc::channel();
            thread::scope(|s| {
                s.spawn(|| {
                    p.apply(|| {
                        p.options().chunk_size(1).map(&[0u64, 1, 2, 3], |&i| {
                            let mut total = lock.lock().expect("no item panicked");
                            if i == 0 {
                                let _ = holding.send(());
                            }
                            *total += q.apply(|| {
                                thread::sleep(Duration::from_millis(30));
                                i
                            });
                        })
                    });
                });
                held.recv().expect("item 0 holds the lock");
                let r = Arc::clone(&r);
                drop(p.spawn(move || r.apply(|| thread::sleep(Duration::from_millis(10)))));
            });
            busy.join();
            assert_eq!(lock.into_inner().expect("no item panicked"), 6);
        },
    );
}

/// A lock held across a wait on another pool's task and another pool's
/// `imap`: the calls of a task and of an `Imap` are roots, so the awaited
/// call's ancestors say nothing of what encloses the wait; the wait must
/// refuse the calls its worker works in (the outer map's), or the worker
/// of A waiting for B starts another outer item, which takes the lock again.
///
/// Before a foreign wait refused the calls its worker works in (at
/// 8a45757), the first attempt hung.
#[test]
fn a_lock_across_a_task_or_imap_of_another_pool() {
    watchdog_each(
        ATTEMPTS,
        SECS,
        "lock across another pool's task and imap",
        |attempt| {
            let a = new_pool(2);
            let b = new_pool(2);
            let total = Mutex::new(0u64);
            let items: Vec<u64> = (0..16).collect();
            a.apply(|| {
                a.options().chunk_size(1).map(&items, |&i| {
                    let mut total = total.lock().expect("no item panicked");
                    *total += if attempt % 2 == 0 {
                        b.spawn(move || {
                            thread::sleep(Duration::from_micros(500));
                            i
                        })
                        .join()
                    } else {
                        b.imap(vec![i, i], |x| {
                            thread::sleep(Duration::from_micros(250));
                            x
                        })
                        .sum::<u64>()
                            / 2
                    };
                })
            });
            assert_eq!(total.into_inner().expect("no item panicked"), 120);
        },
    );
}
