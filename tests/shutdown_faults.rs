//! Shutdown and faults: a pool dropped while other threads still scope,
//! spawn and join on it (everything accepted completes, every worker is
//! joined, nothing leaks); a pool dropped on one of its own workers (the drop
//! returns, the other workers are joined, the dropping worker is detached and
//! exits after its job, queued work completes); a worker that cannot be
//! started once others have (`BuildError::Spawn`, and the started ones ran
//! both hooks and are gone); and the thread-local state `on_thread_start`
//! sets, seen by every kind of job. Everything that could hang runs under a
//! watchdog.

#[path = "shutdown_faults/address_space.rs"]
mod address_space;
mod common;

use address_space::AddressSpaceLimit;
use common::{spin, status_bytes, threads_left_after, unique_prefix, watchdog, DropCount};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::sync::{MutexGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, BuildError, Pool, Task};

const WATCHDOG_SECS: u64 = 60;
/// How long a joined thread may take to leave `/proc/self/task`.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// The test that lowers the process's address-space limit runs alone: every
/// other test holds this lock shared, that one exclusively.
static ADDRESS_SPACE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    ADDRESS_SPACE.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    ADDRESS_SPACE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the hooks of a pool saw.
#[derive(Default)]
struct Hooks {
    starts: AtomicUsize,
    exits: AtomicUsize,
    /// The indices of the workers whose `on_thread_exit` ran, in order.
    exited: Mutex<Vec<usize>>,
}

/// A pool of `threads` workers named `prefix<i>`, counting its hooks.
fn counted_pool(threads: usize, prefix: &str, hooks: &Arc<Hooks>) -> Pool {
    let (name, start, exit) = (prefix.to_owned(), Arc::clone(hooks), Arc::clone(hooks));
    Pool::builder()
        .threads(threads)
        .thread_name(move |i| format!("{name}{i}"))
        .on_thread_start(move |_| {
            start.starts.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_exit(move |i| {
            lock(&exit.exited).push(i);
            exit.exits.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("cannot build the pool")
}

/// Waits up to `GONE_WITHIN` for `done()`.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > GONE_WITHIN {
            return done();
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Four plain threads share a pool through `Arc`s. Each runs a scope whose
/// 64 tasks borrow its stack and spawn a kept task each (from the workers,
/// onto their deques), then spawns 50 slow detached tasks and lets go of the
/// pool. The main thread lets go of its handle while the scopes run, so the
/// pool is really dropped by whichever plain thread lets go last, with
/// spawned work still queued. Once all four have returned: every accepted
/// job has run exactly once (the drop ran the queue), every kept task is
/// finished and joins with its value after the pool is gone, every value was
/// dropped once, both hooks ran on each worker and no worker is left.
#[test]
fn dropping_a_pool_while_others_scope_and_spawn_completes_the_accepted_work() {
    let _shared = shared();
    watchdog(WATCHDOG_SECS, || {
        const THREADS: usize = 4;
        const SCOPED: usize = 64;
        const DETACHED: usize = 50;
        let prefix = unique_prefix("sd");
        let hooks = Arc::new(Hooks::default());
        let pool = Arc::new(counted_pool(3, &prefix, &hooks));
        let ran = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let in_scope = Arc::new(Barrier::new(THREADS + 1));
        let (kept_tx, kept_rx) = mpsc::channel::<(u64, Task<DropCount>)>();
        let threads: Vec<thread::JoinHandle<usize>> = (0..THREADS as u64)
            .map(|t| {
                let (pool, ran, drops) = (Arc::clone(&pool), Arc::clone(&ran), Arc::clone(&drops));
                let (in_scope, kept_tx) = (Arc::clone(&in_scope), kept_tx.clone());
                thread::spawn(move || {
                    let mut squares = vec![0u64; SCOPED];
                    pool.scope(|s| {
                        for (i, slot) in squares.iter_mut().enumerate() {
                            let (pool, ran, drops, kept_tx) =
                                (&pool, &ran, &drops, kept_tx.clone());
                            s.spawn(move || {
                                spin(Duration::from_micros(20));
                                *slot = (i * i) as u64;
                                ran.fetch_add(1, Ordering::SeqCst);
                                let id = t * 1000 + i as u64;
                                let (ran, drops) = (Arc::clone(ran), Arc::clone(drops));
                                let task = pool.spawn(move || {
                                    spin(Duration::from_micros(50));
                                    ran.fetch_add(1, Ordering::SeqCst);
                                    DropCount(drops, id)
                                });
                                kept_tx.send((id, task)).expect("the receiver is alive");
                            });
                        }
                        // The main thread lets go of its handle now.
                        in_scope.wait();
                    });
                    assert!(
                        squares
                            .iter()
                            .enumerate()
                            .all(|(i, &x)| x == (i * i) as u64),
                        "a scoped task's write is missing"
                    );
                    for k in 0..DETACHED as u64 {
                        let (ran, drops) = (Arc::clone(&ran), Arc::clone(&drops));
                        drop(pool.spawn(move || {
                            spin(Duration::from_micros(100));
                            ran.fetch_add(1, Ordering::SeqCst);
                            drop(DropCount(drops, k));
                        }));
                    }
                    // The last thread here drops the pool, its queue still full.
                    drop(pool);
                    2 * SCOPED + DETACHED
                })
            })
            .collect();
        drop(kept_tx);
        in_scope.wait();
        drop(pool);
        let accepted: usize = threads
            .into_iter()
            .map(|t| t.join().expect("a plain thread panicked"))
            .sum();
        // The pool is gone: its drop ran everything queued.
        assert_eq!(
            ran.load(Ordering::SeqCst),
            accepted,
            "accepted jobs that did not run by the time the pool was dropped"
        );
        assert_eq!(hooks.starts.load(Ordering::SeqCst), 3);
        assert_eq!(
            hooks.exits.load(Ordering::SeqCst),
            3,
            "a worker was not joined"
        );
        let mut joined = 0;
        for (id, task) in kept_rx {
            assert!(
                task.is_finished(),
                "task {id} unfinished after the pool's drop"
            );
            let value = task.join();
            assert_eq!(value.1, id);
            joined += 1;
        }
        assert_eq!(joined, THREADS * SCOPED);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            THREADS * (SCOPED + DETACHED),
            "values of tasks not dropped exactly once"
        );
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(left.is_empty(), "workers left after the drop: {left:?}");
    });
}

/// Plain threads blocked in `Task::join` and in an `Imap`'s `next()` when
/// the pool is dropped by another thread: the drop finishes their work, so
/// they wake with the right values.
#[test]
fn threads_blocked_on_a_pool_wake_when_it_is_dropped() {
    let _shared = shared();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let prefix = unique_prefix("bw");
            let hooks = Arc::new(Hooks::default());
            let pool = counted_pool(threads, &prefix, &hooks);
            let release = Arc::new(AtomicBool::new(false));
            // Occupy every worker until released.
            let blockers: Vec<Task<()>> = (0..threads)
                .map(|_| {
                    let release = Arc::clone(&release);
                    pool.spawn(move || {
                        while !release.load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_micros(200));
                        }
                    })
                })
                .collect();
            let queued: Vec<Task<u64>> = (0..20u64).map(|i| pool.spawn(move || i * 7)).collect();
            let imap = pool.imap(0..100u64, |x| x + 1).window(4);
            let joiner =
                thread::spawn(move || queued.into_iter().map(Task::join).collect::<Vec<_>>());
            let consumer = thread::spawn(move || imap.collect::<Vec<u64>>());
            // Let them block, then drop the pool from a third thread.
            thread::sleep(Duration::from_millis(20));
            let dropper = thread::spawn(move || drop(pool));
            thread::sleep(Duration::from_millis(5));
            release.store(true, Ordering::SeqCst);
            dropper.join().expect("the drop panicked");
            let joined = joiner.join().expect("the joiner panicked");
            assert_eq!(joined, (0..20).map(|i| i * 7).collect::<Vec<u64>>());
            let consumed = consumer.join().expect("the consumer panicked");
            assert_eq!(consumed, (1..=100).collect::<Vec<u64>>());
            blockers.into_iter().for_each(Task::join);
            assert_eq!(hooks.exits.load(Ordering::SeqCst), threads);
            let left = threads_left_after(&prefix, GONE_WITHIN);
            assert!(left.is_empty(), "workers left after the drop: {left:?}");
        }
    });
}

/// What the dropping task saw.
struct DroppedOnWorker {
    /// Its worker.
    worker: usize,
    /// An `Imap` created before the drop and consumed after it.
    squares: Vec<u64>,
    /// Tasks spawned on its own deque before the drop, joined after it.
    own: Vec<u64>,
    /// `current_thread_index()` after the drop.
    index_after: Option<usize>,
}

fn drop_on_own_worker(threads: usize) {
    let prefix = unique_prefix("ow");
    let hooks = Arc::new(Hooks::default());
    let pool = counted_pool(threads, &prefix, &hooks);
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<Task<u64>> = (0..100u64)
        .map(|i| {
            let ran = Arc::clone(&ran);
            pool.spawn(move || {
                spin(Duration::from_micros(100));
                ran.fetch_add(1, Ordering::SeqCst);
                i * 3
            })
        })
        .collect();
    let slot: Arc<Mutex<Option<Pool>>> = Arc::new(Mutex::new(None));
    let (taker, counter) = (Arc::clone(&slot), Arc::clone(&ran));
    let dropper = pool.spawn(move || {
        let pool = loop {
            let taken = lock(&taker).take();
            match taken {
                Some(pool) => break pool,
                None => thread::yield_now(),
            }
        };
        let worker = current_thread_index().expect("a task runs on a worker");
        let own: Vec<Task<u64>> = (0..20u64)
            .map(|i| {
                let ran = Arc::clone(&counter);
                pool.spawn(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    1000 + i
                })
            })
            .collect();
        let imap = pool.imap(0..50u64, |x| x * x).window(4);
        drop(pool);
        DroppedOnWorker {
            worker,
            squares: imap.collect(),
            own: own.into_iter().map(Task::join).collect(),
            index_after: current_thread_index(),
        }
    });
    // The dropper holds the last handle from here on.
    *lock(&slot) = Some(pool);
    let seen = dropper.join();
    assert_eq!(
        seen.index_after,
        Some(seen.worker),
        "the dropping job left its worker"
    );
    assert_eq!(seen.squares, (0..50u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(seen.own, (1000..1020u64).collect::<Vec<_>>());
    let values: Vec<u64> = queued.into_iter().map(Task::join).collect();
    assert_eq!(values, (0..100u64).map(|i| i * 3).collect::<Vec<_>>());
    assert_eq!(ran.load(Ordering::SeqCst), 120);
    // Every worker, detached by the drop, exits on its own: each once.
    assert!(
        eventually(|| hooks.exits.load(Ordering::SeqCst) == threads),
        "{threads} threads: a detached worker never exited (exits: {:?})",
        lock(&hooks.exited)
    );
    let mut exited = lock(&hooks.exited).clone();
    exited.sort_unstable();
    assert_eq!(
        exited,
        (0..threads).collect::<Vec<_>>(),
        "a worker exited twice or never"
    );
    let left = threads_left_after(&prefix, GONE_WITHIN);
    assert!(left.is_empty(), "workers left after the drop: {left:?}");
}

/// A pool whose last handle a task of its own drops (design.md, Shutdown):
/// the drop returns on that worker without joining any worker (all are
/// detached); the task then goes on as a job of the pool: it consumes an
/// `Imap` made before the drop and joins tasks it queued on its own deque
/// before the drop. Every task queued from outside completes, and every
/// worker exits on its own (its `on_thread_exit` runs once, its thread
/// goes). With 1, 2 and 4 threads.
#[test]
fn a_pool_dropped_on_its_own_worker_detaches_every_worker() {
    let _shared = shared();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            drop_on_own_worker(threads);
        }
    });
}

/// A task drops the last handle of its pool while a task on *another*
/// worker is blocked joining it: the drop must return. The first version of
/// `Pool::drop` joined the other workers when dropped on one of its own, so
/// it waited for worker A, whose job waited in `Task::join` for the very task
/// that was dropping the pool on worker B: this test hung every time (20 s
/// watchdog). Now such a drop joins no worker.
#[test]
fn a_pool_dropped_by_a_task_that_another_worker_joins_returns() {
    let _shared = shared();
    watchdog(20, || {
        let pool = Pool::new(2).expect("cannot build the pool");
        let slot: Arc<Mutex<Option<Pool>>> = Arc::new(Mutex::new(None));
        let joining = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Task<()>>();
        let (flag, started) = (Arc::clone(&joining), Arc::clone(&running));
        let joiner = pool.spawn(move || {
            let dropper = rx.recv().expect("the dropper's handle");
            // Join only once the dropper runs on the other worker (else this
            // worker could take it from its deque and run it inline).
            while !started.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            flag.store(true, Ordering::SeqCst);
            dropper.join();
        });
        let (taker, flag, started) = (
            Arc::clone(&slot),
            Arc::clone(&joining),
            Arc::clone(&running),
        );
        let dropper = pool.spawn(move || {
            started.store(true, Ordering::SeqCst);
            while !flag.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            // Let the joiner get into its wait.
            thread::sleep(Duration::from_millis(20));
            let pool = lock(&taker).take();
            drop(pool);
        });
        tx.send(dropper).expect("the joiner is alive");
        *lock(&slot) = Some(pool);
        joiner.join();
    });
}

/// The third of eight workers cannot be started: the address-space limit
/// leaves room for two 1 GiB stacks only (`tests/build.rs` covers a stack
/// too big for even the first worker, and panics of `thread_name` after some
/// started). `build` returns `BuildError::Spawn`, and the workers started
/// before it ran `on_thread_start` and `on_thread_exit` once each (they were
/// stopped and joined) and are gone. Skipped under valgrind, whose own
/// allocator runs out of room under the lowered limit and ends the run.
#[test]
fn a_worker_that_cannot_start_gives_spawn_after_stopping_the_started_ones() {
    if std::env::var_os("STEALPOOL_UNDER_VALGRIND").is_some_and(|v| v == "1") {
        eprintln!("skipped under valgrind: the lowered limit starves valgrind's own allocator");
        return;
    }
    let _alone = exclusive();
    watchdog(WATCHDOG_SECS, || {
        const STACK: usize = 1 << 30;
        let prefix = unique_prefix("as");
        let hooks = Arc::new(Hooks::default());
        let names = Arc::new(AtomicUsize::new(0));
        let (name, asked) = (prefix.clone(), Arc::clone(&names));
        let (start, exit) = (Arc::clone(&hooks), Arc::clone(&hooks));
        let builder = Pool::builder()
            .threads(8)
            .stack_size(STACK)
            .thread_name(move |i| {
                asked.fetch_add(1, Ordering::SeqCst);
                format!("{name}{i}")
            })
            .on_thread_start(move |_| {
                start.starts.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_exit(move |i| {
                lock(&exit.exited).push(i);
                exit.exits.fetch_add(1, Ordering::SeqCst);
            });
        // Room for two stacks and some slack (thread arenas, guard pages),
        // not for a third stack.
        let size = usize::try_from(status_bytes("VmSize:")).expect("the address space fits usize");
        let limit = size + 2 * STACK + STACK / 2;
        let result = {
            let _limit = AddressSpaceLimit::lower_to(limit);
            builder.build()
        };
        let err = match result {
            Ok(pool) => panic!(
                "all {} workers started under a limit of {limit} bytes",
                pool.threads()
            ),
            Err(err) => err,
        };
        assert!(
            matches!(err, BuildError::Spawn(_)),
            "expected Spawn, got {err:?}"
        );
        let asked = names.load(Ordering::SeqCst);
        let (starts, exits) = (
            hooks.starts.load(Ordering::SeqCst),
            hooks.exits.load(Ordering::SeqCst),
        );
        assert!(
            (2..8).contains(&asked),
            "the build failed at worker {} of 8: no worker was started before the failure, \
             so this test proves nothing (is the limit too tight?)",
            asked - 1
        );
        assert_eq!(
            starts,
            asked - 1,
            "every worker started before the failure runs on_thread_start"
        );
        assert_eq!(exits, starts, "a started worker was not stopped and joined");
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(
            left.is_empty(),
            "workers left after the failed build: {left:?}"
        );
    });
}

thread_local! {
    /// Set by `on_thread_start` of the pools below: (pool tag, index).
    static TAG: Cell<Option<(u32, usize)>> = const { Cell::new(None) };
}

/// A pool whose `on_thread_start` tags its workers with `tag`.
fn tagged_pool(tag: u32, threads: usize) -> Pool {
    Pool::builder()
        .threads(threads)
        .on_thread_start(move |i| TAG.with(|t| t.set(Some((tag, i)))))
        .build()
        .expect("cannot build the pool")
}

/// What the jobs saw: (kind, what went wrong).
type Problems = Mutex<Vec<(&'static str, String)>>;

/// Checks the tag of the calling thread: it matches `current_thread_index()`
/// and is pool `tag`'s, or, where `caller` is given (the map family may run
/// items on the calling thread), the caller's own tag.
fn check_tag(
    problems: &Problems,
    kind: &'static str,
    tag: u32,
    caller: Option<Option<(u32, usize)>>,
) {
    let seen = TAG.with(Cell::get);
    let index = current_thread_index();
    let ok = seen.map(|(_, i)| i) == index
        && (seen.is_some_and(|(t, _)| t == tag) || caller.is_some_and(|c| c == seen));
    if !ok {
        lock(problems).push((
            kind,
            format!("tag {seen:?}, current_thread_index() {index:?}"),
        ));
    }
}

/// Every kind of job of pool A sees the thread-local its worker's
/// `on_thread_start` set, keyed by `current_thread_index()`: map (items slow
/// enough to recruit the workers), a fixed-chunk map, try_map, for_each, map_init
/// (`init` and items), apply, spawn, join, scope (and tasks spawned by
/// tasks), imap and imap_unordered; called from a plain thread and from a
/// worker of pool B (whose own tag the map family's items see when they run
/// on the caller). Two pools keep their tags apart.
#[test]
fn on_thread_start_state_is_seen_by_every_kind_of_job() {
    let _shared = shared();
    watchdog(WATCHDOG_SECS, || {
        const A: u32 = 1;
        let a = Arc::new(tagged_pool(A, 3));
        let b = tagged_pool(2, 2);
        let problems: Arc<Problems> = Arc::default();
        let exercise = |a: &Arc<Pool>, problems: &Arc<Problems>| {
            let caller = Some(TAG.with(Cell::get));
            let p: &Problems = problems;
            let input: Vec<u64> = (0..400).collect();
            let slow = |kind| {
                move |x: &u64| {
                    spin(Duration::from_micros(10));
                    check_tag(p, kind, A, caller);
                    *x
                }
            };
            assert_eq!(a.map(&input, slow("map")), input);
            assert_eq!(
                a.options().chunk_size(7).map(&input, slow("chunk_size")),
                input
            );
            let tried: Result<Vec<u64>, ()> = a.try_map(&input, |x| Ok(slow("try_map")(x)));
            assert_eq!(tried, Ok(input.clone()));
            a.for_each(&input, |x| {
                slow("for_each")(x);
            });
            let inited = a.map_init(
                &input,
                || check_tag(p, "map_init's init", A, caller),
                |(), x| slow("map_init")(x),
            );
            assert_eq!(inited, input);
            a.apply(|| check_tag(p, "apply", A, None));
            a.join(
                || check_tag(p, "join a", A, None),
                || check_tag(p, "join b", A, None),
            );
            a.scope(|s| {
                for _ in 0..20 {
                    s.spawn(move || {
                        check_tag(p, "scope", A, None);
                        s.spawn(move || check_tag(p, "scope (nested)", A, None));
                    });
                }
            });
            let tasks: Vec<Task<()>> = (0..20)
                .map(|_| {
                    let problems = Arc::clone(problems);
                    a.spawn(move || check_tag(&problems, "spawn", A, None))
                })
                .collect();
            tasks.into_iter().for_each(Task::join);
            for unordered in [false, true] {
                let problems = Arc::clone(problems);
                let f = move |x: u64| {
                    check_tag(&problems, "imap", A, None);
                    x
                };
                let mut out: Vec<u64> = if unordered {
                    a.imap_unordered(0..100u64, f).collect()
                } else {
                    a.imap(0..100u64, f).collect()
                };
                out.sort_unstable();
                assert_eq!(out, (0..100).collect::<Vec<u64>>());
            }
        };
        exercise(&a, &problems);
        b.apply(|| {
            assert!(TAG.with(Cell::get).is_some_and(|(t, _)| t == 2), "B's tag");
            exercise(&a, &problems);
        });
        let problems = lock(&problems);
        assert!(
            problems.is_empty(),
            "jobs that did not see their worker's tag: {problems:?}"
        );
    });
}
