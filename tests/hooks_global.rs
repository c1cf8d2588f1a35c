//! Builder hooks, `current_thread_index` and the global pool:
//! `on_thread_start` runs exactly once per worker, on that worker, before its
//! first job (a thread-local it sets is seen by every job); `on_thread_exit`
//! runs exactly once per worker, after its last job, by the time the pool's
//! drop returns; a panicking hook leaves the worker alive;
//! `current_thread_index` is `None` off the pools and `Some(i < threads)` on
//! them; `global()` is one `&'static Pool` that works from many threads.
//! Everything that could hang runs under a watchdog.

mod common;

use common::{quiet_expected_panics, watchdog, EXPECTED};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, global, Pool, Task};

const WATCHDOG_SECS: u64 = 60;

thread_local! {
    /// Set by the `on_thread_start` hook of the pools that use it.
    static HOOK_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// What a hook saw: the index it was given, `current_thread_index()` inside
/// it, and its thread.
type HookLog = Arc<Mutex<Vec<(usize, Option<usize>, ThreadId)>>>;

fn record(log: &HookLog) -> impl Fn(usize) + Send + Sync + 'static {
    let log = Arc::clone(log);
    move |i| {
        log.lock()
            .unwrap()
            .push((i, current_thread_index(), thread::current().id()));
    }
}

/// Checks that `log` has one entry per worker `0..n`, each seen on a worker
/// with its own index.
fn check_once_per_worker(log: &HookLog, n: usize, what: &str) {
    let log = log.lock().unwrap();
    let mut indices: Vec<usize> = log.iter().map(|e| e.0).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..n).collect::<Vec<_>>(),
        "{what}: not exactly once per worker"
    );
    for &(i, seen, _) in log.iter() {
        assert_eq!(seen, Some(i), "{what}({i}) did not run on worker {i}");
    }
    let threads: HashSet<ThreadId> = log.iter().map(|e| e.2).collect();
    assert_eq!(threads.len(), n, "{what}: two workers on one thread");
    assert!(
        !threads.contains(&thread::current().id()),
        "{what} ran on the thread that built or dropped the pool"
    );
}

#[test]
fn on_thread_start_runs_once_per_worker_on_that_worker() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 3, 4] {
            let log: HookLog = Arc::default();
            let pool = Pool::builder()
                .threads(threads)
                .on_thread_start(record(&log))
                .build()
                .unwrap();
            // Run some work so that every worker is surely up, then stop it.
            let _ = pool.map(&[1, 2, 3], |x| x + 1);
            drop(pool);
            check_once_per_worker(&log, threads, "on_thread_start");
        }
    });
}

#[test]
fn on_thread_start_runs_before_the_first_job() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            // A slow hook: jobs queued at once must still wait for it.
            let pool = Arc::new(
                Pool::builder()
                    .threads(threads)
                    .on_thread_start(|i| {
                        thread::sleep(Duration::from_millis(30));
                        HOOK_INDEX.with(|h| h.set(Some(i)));
                    })
                    .build()
                    .unwrap(),
            );
            let unset = Arc::new(AtomicUsize::new(0));
            let on_workers = Arc::new(AtomicUsize::new(0));
            let check = {
                let unset = Arc::clone(&unset);
                let on_workers = Arc::clone(&on_workers);
                move || {
                    if let Some(i) = current_thread_index() {
                        on_workers.fetch_add(1, Ordering::SeqCst);
                        if HOOK_INDEX.with(Cell::get) != Some(i) {
                            unset.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            };
            // Spawned tasks, queued before any hook can have finished.
            let tasks: Vec<Task<()>> = (0..200)
                .map(|_| {
                    let check = check.clone();
                    pool.spawn(move || {
                        thread::sleep(Duration::from_micros(100));
                        check();
                    })
                })
                .collect();
            // A map whose items are slow enough to recruit the workers.
            let input: Vec<u32> = (0..2000).collect();
            pool.map(&input, |_| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
                check();
            });
            // Scope tasks and join halves.
            pool.scope(|s| {
                for _ in 0..100 {
                    let check = check.clone();
                    s.spawn(check);
                }
            });
            pool.join(check.clone(), check.clone());
            tasks.into_iter().for_each(Task::join);
            assert!(
                on_workers.load(Ordering::SeqCst) >= 200,
                "tasks ran off the pool"
            );
            assert_eq!(
                unset.load(Ordering::SeqCst),
                0,
                "jobs ran on a worker before its on_thread_start hook finished"
            );
            assert_eq!(
                HOOK_INDEX.with(Cell::get),
                None,
                "the hook ran on the caller"
            );
        }
    });
}

#[test]
fn on_thread_exit_runs_once_per_worker_after_the_last_job() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let starts: HookLog = Arc::default();
            let exits: HookLog = Arc::default();
            let pool = Pool::builder()
                .threads(threads)
                .on_thread_start(record(&starts))
                .on_thread_exit(record(&exits))
                .build()
                .unwrap();
            let _ = pool.map(&[1, 2, 3], |x| x * 2);
            // Detached tasks still queued when the pool is dropped.
            let finished = Arc::new(AtomicUsize::new(0));
            for _ in 0..threads * 4 {
                let finished = Arc::clone(&finished);
                drop(pool.spawn(move || {
                    thread::sleep(Duration::from_millis(10));
                    finished.fetch_add(1, Ordering::SeqCst);
                }));
            }
            assert!(exits.lock().unwrap().is_empty(), "an exit hook ran early");
            drop(pool);
            assert_eq!(finished.load(Ordering::SeqCst), threads * 4);
            check_once_per_worker(&exits, threads, "on_thread_exit");
            // Each exit ran on the thread its start ran on.
            let starts = starts.lock().unwrap();
            for &(i, _, thread) in exits.lock().unwrap().iter() {
                let start = starts.iter().find(|e| e.0 == i).unwrap();
                assert_eq!(start.2, thread, "worker {i} exited on another thread");
            }
        }
    });
}

/// Work that an `on_thread_exit` hook submits to its own pool (the only way
/// is through an `Imap` of that pool that outlived it) runs on the hook's
/// thread, as for any thread once the pool is dropping: the exiting worker
/// has drained its deque and will not look at it again. Before this rule,
/// the hook's `next()` left batches on the exiting worker's deque, and a
/// later `next()` waited for them forever.
#[test]
fn work_submitted_from_on_thread_exit_runs_and_nothing_hangs() {
    type Slot = Arc<Mutex<Option<stealpool::Imap<u64>>>>;
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let slot: Slot = Arc::default();
            let pulled = Arc::new(Mutex::new(Vec::new()));
            let pool = {
                let slot = Arc::clone(&slot);
                let pulled = Arc::clone(&pulled);
                Pool::builder()
                    .threads(threads)
                    .on_thread_exit(move |_| {
                        // Each exiting worker takes one result and puts the
                        // iterator back.
                        let mut slot = slot.lock().unwrap();
                        if let Some(imap) = slot.as_mut() {
                            pulled.lock().unwrap().extend(imap.next());
                        }
                    })
                    .build()
                    .unwrap()
            };
            let imap = pool.imap(0..100u64, |x| {
                thread::sleep(Duration::from_micros(200));
                x * 2
            });
            *slot.lock().unwrap() = Some(imap.window(8));
            drop(pool);
            let mut seen = pulled.lock().unwrap().clone();
            assert_eq!(seen.len(), threads, "one result per exit hook");
            let rest = slot.lock().unwrap().take().unwrap();
            seen.extend(rest);
            assert_eq!(seen, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        }
    });
}

#[test]
fn on_thread_exit_of_a_one_thread_pool_sees_its_last_job() {
    watchdog(WATCHDOG_SECS, || {
        let job_done = Arc::new(AtomicBool::new(false));
        let seen_at_exit = Arc::new(Mutex::new(None));
        let pool = {
            let job_done = Arc::clone(&job_done);
            let seen_at_exit = Arc::clone(&seen_at_exit);
            Pool::builder()
                .threads(1)
                .on_thread_exit(move |_| {
                    *seen_at_exit.lock().unwrap() = Some(job_done.load(Ordering::SeqCst));
                })
                .build()
                .unwrap()
        };
        let flag = Arc::clone(&job_done);
        drop(pool.spawn(move || {
            thread::sleep(Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
        }));
        drop(pool);
        assert_eq!(
            *seen_at_exit.lock().unwrap(),
            Some(true),
            "on_thread_exit ran before the worker's last job"
        );
    });
}

#[test]
fn a_panicking_hook_does_not_kill_the_worker() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let exits = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&exits);
            let pool = Pool::builder()
                .threads(threads)
                .on_thread_start(|i| panic!("{EXPECTED}: start hook of worker {i}"))
                .on_thread_exit(move |i| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    panic!("{EXPECTED}: exit hook of worker {i}");
                })
                .build()
                .unwrap();
            // Every worker still runs jobs: apply, spawn, map, scope.
            assert!(pool.apply(current_thread_index).is_some());
            let tasks: Vec<_> = (0..100u32).map(|i| pool.spawn(move || i * 2)).collect();
            let sum: u32 = tasks.into_iter().map(Task::join).sum();
            assert_eq!(sum, 9900);
            let input: Vec<u32> = (0..1000).collect();
            assert_eq!(pool.map(&input, |x| x + 1)[999], 1000);
            // All workers serve: block each one in a task until all started.
            let barrier = Arc::new(Barrier::new(threads));
            let indices: Vec<Option<usize>> = (0..threads)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    pool.spawn(move || {
                        barrier.wait();
                        current_thread_index()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(Task::join)
                .collect();
            let distinct: HashSet<_> = indices.iter().collect();
            assert_eq!(distinct.len(), threads, "a worker is missing: {indices:?}");
            drop(pool); // the exit hooks panic: the drop must still return
            assert_eq!(exits.load(Ordering::SeqCst), threads);
        }
    });
}

#[test]
fn current_thread_index_off_and_on_the_pools() {
    watchdog(WATCHDOG_SECS, || {
        assert_eq!(current_thread_index(), None, "the test thread");
        let plain = thread::spawn(current_thread_index).join().unwrap();
        assert_eq!(plain, None, "a plain thread");
        for threads in [1, 2, 5] {
            let pool = Pool::new(threads).unwrap();
            let tasks: Vec<_> = (0..500).map(|_| pool.spawn(current_thread_index)).collect();
            for task in tasks {
                let index = task.join();
                assert!(
                    index.is_some_and(|i| i < threads),
                    "{index:?} on a {threads}-thread pool"
                );
            }
            // The caller of a map stays off the pool, its workers are on it.
            let input: Vec<u32> = (0..3000).collect();
            let caller = thread::current().id();
            let bad = AtomicUsize::new(0);
            pool.map(&input, |_| {
                let index = current_thread_index();
                let ok = if thread::current().id() == caller {
                    index.is_none()
                } else {
                    index.is_some_and(|i| i < threads)
                };
                if !ok {
                    bad.fetch_add(1, Ordering::SeqCst);
                }
            });
            assert_eq!(bad.into_inner(), 0);
            // A worker of one pool calling into another reports its own
            // pool's index, and the other pool's workers theirs.
            let other = Pool::new(3).unwrap();
            let (mine, theirs) =
                pool.apply(|| (current_thread_index(), other.apply(current_thread_index)));
            assert!(mine.is_some_and(|i| i < threads));
            assert!(theirs.is_some_and(|i| i < 3));
        }
        assert_eq!(current_thread_index(), None);
    });
}

#[test]
fn global_is_one_working_static_pool() {
    watchdog(WATCHDOG_SECS, || {
        let first: &'static Pool = global();
        assert!(first.threads() >= 1);
        assert!(
            std::ptr::eq(first, global()),
            "global() returned another pool"
        );
        assert_eq!(first.map(&[1, 2, 3], |x| x * x), [1, 4, 9]);
        let index = first.apply(current_thread_index);
        assert!(index.is_some_and(|i| i < first.threads()));
        assert_eq!(first.spawn(|| 5).join(), 5);
        assert_eq!(first.join(|| 1, || 2), (1, 2));
        let mut v = vec![0u32; 64];
        first.scope(|s| {
            for (i, slot) in v.iter_mut().enumerate() {
                s.spawn(move || *slot = i as u32);
            }
        });
        assert_eq!(v, (0..64).collect::<Vec<u32>>());
        let out: Vec<u32> = first.imap(0..100u32, |x| x + 1).collect();
        assert_eq!(out, (1..=100).collect::<Vec<u32>>());
        // Inside its own workers, global() is the same pool (apply is inline).
        let (same, inline_index) = first.apply(|| {
            let index = current_thread_index();
            (
                std::ptr::eq(global(), first),
                global().apply(current_thread_index) == index,
            )
        });
        assert!(same);
        assert!(inline_index, "apply on global() from its own worker moved");
    });
}

#[test]
fn global_from_eight_threads_at_once() {
    watchdog(WATCHDOG_SECS, || {
        let barrier = Barrier::new(8);
        let addresses: Vec<usize> = thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|t| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let pool = global();
                        let input: Vec<u64> = (0..1000).collect();
                        let out = pool.map(&input, |x| x + t);
                        assert_eq!(out[999], 999 + t);
                        pool as *const Pool as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            addresses.iter().all(|&a| a == addresses[0]),
            "global() built more than one pool"
        );
    });
}
