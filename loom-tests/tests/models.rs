//! The loom models of stealpool's scheduler. Each `#[test]` explores every
//! interleaving, up to its preemption bound, of a small scenario run on the
//! real engine (`../src`, compiled with `--cfg loom`).
//!
//! `docs/verification.md` gives, for each model, what it proves, its bound,
//! its run time and the mutants it kills.

#![cfg(loom)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use stealpool::model_hooks::{inject, CountedJob};
use stealpool::Pool;
use stealpool_loom_tests::support::{check, from_outside, quiet_expected_panics, Tracked};

/// A slow chunk: it yields twice, and each yield lets the other threads run
/// on without spending the preemption bound, so a waiting worker can go all
/// the way to sleep while the chunk still runs (model 6 reaches the lost
/// wake-up of a waiting worker at bound 2 instead of 3).
fn slow_chunk() {
    for _ in 0..2 {
        loom::thread::yield_now();
    }
}

/// Model 1, exactly once: a thread outside the pool submits three tasks to a
/// two-worker pool. Every task runs exactly once, and the submitter's waits
/// return. Three tasks make the first injector steal take a batch of two, so
/// that the second worker can steal from the first one's deque while it pops.
#[test]
fn exactly_once() {
    check("exactly_once", 2, || {
        let jobs: Vec<CountedJob<'_>> = (0..3).map(|_| CountedJob::new(|| {})).collect();
        let pool = Pool::new(2).unwrap();
        for job in &jobs {
            // SAFETY: `jobs` outlives `pool`, which is dropped below.
            unsafe { inject(&pool, job) };
        }
        for job in &jobs {
            job.wait();
        }
        drop(pool);
        for (i, job) in jobs.iter().enumerate() {
            assert_eq!(
                job.runs(),
                1,
                "exactly once: task {i} ran {} times",
                job.runs()
            );
        }
    });
}

/// Model 2, no lost wake-up: a one-worker pool gets a task, then a second
/// one while its only worker, done with the first, is deciding to sleep. Both
/// run: a lost wake-up leaves the worker asleep and the submitter waiting,
/// which loom reports as a deadlock.
#[test]
fn no_lost_wakeup() {
    check("no_lost_wakeup", 5, || {
        let first = CountedJob::new(|| {});
        let second = CountedJob::new(|| {});
        let pool = Pool::new(1).unwrap();
        // SAFETY: both jobs outlive `pool`.
        unsafe { inject(&pool, &first) };
        first.wait();
        // SAFETY: as above.
        unsafe { inject(&pool, &second) };
        second.wait();
        drop(pool);
    });
}

/// Model 3, map completion: a fixed-chunk `map` (`options().chunk_size(n)`) over three chunks on two workers
/// returns the right results in order, through every interleaving of the
/// tickets' stealing. Each result is created by whichever thread ran its chunk
/// and read by the caller, so a result not published to the caller (gate or
/// latch too weak) is a "Causality violation".
#[test]
fn map_completion() {
    check("map_completion", 2, || {
        from_outside(Pool::new(2).unwrap(), |pool| {
            let out = pool
                .options()
                .chunk_size(1)
                .map(&[1u32, 2, 3], |&x| Tracked::new(x * 10));
            let values: Vec<u32> = out.iter().map(Tracked::get).collect();
            assert_eq!(values, [10, 20, 30], "map completion: wrong results");
        });
    });
}

/// Model 4, panic: a panicking chunk's payload is re-raised on the caller,
/// and no chunk touches the caller's data after the caller has returned: the
/// caller overwrites its input right away, which is a "Causality violation"
/// if any chunk still reads it (or read it without being ordered before the
/// return).
#[test]
fn panic_is_reraised() {
    quiet_expected_panics("chunk 1 fails");
    check("panic_is_reraised", 2, || {
        from_outside(Pool::new(2).unwrap(), |pool| {
            let input: Vec<Tracked<u32>> = (0..3).map(Tracked::new).collect();
            let result = catch_unwind(AssertUnwindSafe(|| {
                pool.options().chunk_size(1).map(&input, |x| {
                    let value = x.get();
                    if value == 1 {
                        panic!("chunk 1 fails");
                    }
                    value
                })
            }));
            let payload = match result {
                Ok(_) => panic!("panic: the chunk's panic did not reach the caller"),
                Err(payload) => payload,
            };
            assert_eq!(
                payload.downcast_ref::<&str>(),
                Some(&"chunk 1 fails"),
                "panic: the caller got another payload"
            );
            // The caller owns its data again.
            for x in &input {
                x.set(0);
            }
        });
    });
}

/// Model 5, shutdown: dropping the pool with a task still queued runs the
/// task, and joins every worker (a worker that never exits is a deadlock).
#[test]
fn shutdown_drains() {
    check("shutdown_drains", 3, || {
        let job = CountedJob::new(|| {});
        let pool = Pool::new(2).unwrap();
        // SAFETY: `job` outlives `pool`.
        unsafe { inject(&pool, &job) };
        drop(pool);
        assert_eq!(
            job.runs(),
            1,
            "shutdown: a task queued before the drop did not run"
        );
    });
}

/// Executions of `nested_map` in which the job submitted from the inner map
/// was taken (and set aside) by the worker waiting on that map: the path
/// that isolation changes.
static SET_ASIDE_WHILE_WAITING: AtomicUsize = AtomicUsize::new(0);

/// Model 6, nested map: a task on a worker runs an inner a fixed-chunk `map` (`options().chunk_size(n)`) over
/// two chunks. The other worker steals the inner ticket, and its chunk submits
/// another task, of no call; the first worker, waiting on the inner map, must
/// not run that task (a wait runs only its own call's work: with a lock held
/// across the inner map, the other task could take it again), sets it aside
/// if it takes it, and is woken when the inner map's latch is set. The other
/// task still runs, once. Results are checked as in model 3 (every value, in
/// input order); the model also checks that some execution had the waiting
/// worker take the other task and set it aside. Kills `waiter_runs_foreign`.
#[test]
fn nested_map() {
    SET_ASIDE_WHILE_WAITING.store(0, Ordering::Relaxed);
    check("nested_map", 2, || {
        let pool = Pool::new(2).unwrap();
        let set_aside_before = pool.stats().set_aside;
        // The inner map's results, in its output order, as the outer task
        // saw them (`None`: not two of them).
        let results: Tracked<Option<[u32; 2]>> = Tracked::new(None);
        // The thread of the outer task while it is inside its inner map.
        let waiting: Mutex<Option<loom::thread::ThreadId>> = Mutex::new(None);
        {
            let other = CountedJob::new(|| {
                let here = loom::thread::current().id();
                assert!(
                    *waiting.lock().unwrap() != Some(here),
                    "isolation: a worker waiting on its inner map ran another call's job"
                );
            });
            let outer = CountedJob::new(|| {
                *waiting.lock().unwrap() = Some(loom::thread::current().id());
                let inner = pool.options().chunk_size(1).map(&[1u32, 2], |&x| {
                    if x == 2 {
                        // SAFETY: `other` is awaited below before it is
                        // dropped, and executed once (model 1).
                        unsafe { inject(&pool, &other) };
                    }
                    slow_chunk();
                    Tracked::new(x * 10)
                });
                *waiting.lock().unwrap() = None;
                let values: Vec<u32> = inner.iter().map(Tracked::get).collect();
                results.set(<[u32; 2]>::try_from(values).ok());
            });
            // SAFETY: both jobs are awaited before they are dropped: their
            // latches are set at the end of their only execution.
            unsafe { inject(&pool, &outer) };
            outer.wait();
            other.wait();
            assert_eq!(
                other.runs(),
                1,
                "nested map: the other task ran {} times",
                other.runs()
            );
        }
        assert_eq!(
            results.get(),
            Some([10, 20]),
            "nested map: wrong results or order"
        );
        if pool.stats().set_aside > set_aside_before {
            SET_ASIDE_WHILE_WAITING.fetch_add(1, Ordering::Relaxed);
        }
        drop(pool);
    });
    assert!(
        SET_ASIDE_WHILE_WAITING.load(Ordering::Relaxed) > 0,
        "nested map: in no execution did the waiting worker take the other task and set it aside"
    );
}

/// Model 17, a callback into a waiting pool: the only worker of pool A calls
/// `apply` on pool B (one worker), whose closure calls `apply` back on A. A's
/// worker waits for B's call and may be asleep in its wait when the callback
/// arrives on A's injector: only a poke wakes it (idle wake-ups pass over a
/// waiting worker), and its search must look at the injector, where the
/// callback, which its wait accepts (it is under the awaited call), waits.
/// Kills `waiters_never_poked`, `waiter_skips_queues` and
/// `waiting_sleep_no_fence`. `poke_no_fence` survives it at bound 1 (model
/// 18 kills it), and `show_no_fence` is equivalent (`docs/verification.md`).
#[test]
fn callback_into_a_waiting_pool() {
    check("callback_into_a_waiting_pool", 1, || {
        let b = Pool::new(1).unwrap();
        from_outside(Pool::new(1).unwrap(), move |a| {
            let value = a.apply(|| {
                b.apply(|| {
                    slow_chunk();
                    a.apply(|| Tracked::new(7u32))
                })
            });
            assert_eq!(value.get(), 7, "callback: wrong value");
        });
    });
}

/// Model 18, a job from outside pokes a sleeping waiter: the only worker of
/// pool A runs a job that calls `apply` on pool B (one worker), whose closure
/// blocks until a second job, injected into A by the model's main thread
/// (outside both pools), has run. A's worker waits for B's call as a
/// *foreign* waiter, which accepts a job of no call, and nobody else can run
/// that job: B's worker is blocked and the main thread is no worker. So the
/// publisher (`Registry::inject`, then `Sleep::new_work`) must poke A's
/// worker, asleep in `sleep_waiting` or about to be, and its search must
/// look at the injector. The main thread injects only once B's closure has
/// started, yielding meanwhile: its yields let loom run the waiter into its
/// sleep while the publisher is still to come, at bound 1. The publisher
/// then blocks on a condition variable of its own, with no SeqCst fence
/// after the poke. (In model 17 the publisher is B's worker, which goes on
/// to show its own wait: that fence, soon after the poke, leaves a poke
/// without a fence of its own lost only in schedules beyond bound 1.)
///
/// Kills `poke_no_fence` (the poker reads the waiter awake while the waiter
/// reads no poke: a store-buffering pair with one fence), `waiters_never_poked`,
/// `waiting_sleep_no_fence` and `waiter_skips_queues`: in each, A's worker
/// sleeps forever and loom reports a deadlock.
#[test]
fn poke_wakes_a_foreign_waiter() {
    check("poke_wakes_a_foreign_waiter", 1, || {
        let a = Pool::new(1).unwrap();
        let b = Pool::new(1).unwrap();
        // Set (a `std` atomic: bookkeeping, not a point where loom switches)
        // once B's closure runs, that is, once A's worker waits for it.
        let started = AtomicBool::new(false);
        let ran = loom::sync::Mutex::new(false);
        let ran_changed = loom::sync::Condvar::new();
        {
            let callback = CountedJob::new(|| {
                *ran.lock().unwrap() = true;
                ran_changed.notify_all();
            });
            let outer = CountedJob::new(|| {
                b.apply(|| {
                    started.store(true, Ordering::Relaxed);
                    let mut ran = ran.lock().unwrap();
                    while !*ran {
                        ran = ran_changed.wait(ran).unwrap();
                    }
                });
            });
            // SAFETY: both jobs are awaited before they are dropped: their
            // latches are set at the end of their only execution.
            unsafe { inject(&a, &outer) };
            while !started.load(Ordering::Relaxed) {
                loom::thread::yield_now();
            }
            // SAFETY: as above.
            unsafe { inject(&a, &callback) };
            callback.wait();
            outer.wait();
            assert_eq!(
                callback.runs(),
                1,
                "poke: the job from outside ran {} times",
                callback.runs()
            );
        }
        drop(a);
        drop(b);
    });
}

/// Model 19, a foreign wait sets its scope's task aside: on pool A (two
/// workers), a job opens a `scope`, spawns a task (pushed on its worker's
/// deque) and, in the scope's body, calls `apply` on pool B (one worker),
/// whose closure blocks until that task has run. The body's worker waits for
/// B's call as a foreign waiter, which must refuse the jobs of the calls
/// enclosing its wait: the scope's task is one (a lock held by the body
/// across the call would be taken again on the same thread). It pops the
/// task, sets it aside (on the injector, announced by `Sleep::new_work`),
/// and A's other worker must run it. That worker may have been woken for the
/// task's first push and searched while the waiter held it: only the
/// set-aside's announcement wakes it again.
///
/// Kills `set_aside_unannounced` (the task stays on the injector while A's
/// other worker sleeps: a deadlock) and `waiter_runs_foreign` (the task runs
/// on the body's thread inside its call on B).
#[test]
fn foreign_wait_sets_aside_its_scope_task() {
    check("foreign_wait_sets_aside_its_scope_task", 1, || {
        let a = Pool::new(2).unwrap();
        let b = Pool::new(1).unwrap();
        // The thread of the scope's body while it is inside its call on B.
        let calling: Mutex<Option<loom::thread::ThreadId>> = Mutex::new(None);
        let ran = loom::sync::Mutex::new(false);
        let ran_changed = loom::sync::Condvar::new();
        {
            let outer = CountedJob::new(|| {
                a.scope(|s| {
                    s.spawn(|| {
                        assert!(
                            *calling.lock().unwrap() != Some(loom::thread::current().id()),
                            "isolation: a foreign wait ran a task of the scope around it"
                        );
                        *ran.lock().unwrap() = true;
                        ran_changed.notify_all();
                    });
                    *calling.lock().unwrap() = Some(loom::thread::current().id());
                    b.apply(|| {
                        let mut ran = ran.lock().unwrap();
                        while !*ran {
                            ran = ran_changed.wait(ran).unwrap();
                        }
                    });
                    *calling.lock().unwrap() = None;
                });
            });
            // SAFETY: awaited before it is dropped: its latch is set at the
            // end of its only execution.
            unsafe { inject(&a, &outer) };
            outer.wait();
        }
        drop(a);
        drop(b);
    });
}

/// Model 20, a join's `b` stays out of a foreign wait of its `a`: the only
/// worker of pool A runs `join(a, b)` (under loom every join promotes `b` to
/// the deque), and `a`, as if it held a lock across the call, calls `apply`
/// on pool B. A's worker waits for B's call as a foreign waiter, which must
/// not run `b`, the other half of the join around its wait: it runs it after
/// `a` returns. `a` runs inside the join's call, which encloses the wait, so
/// the wait refuses `b`. Before that (`a` ran in the call the joiner worked
/// in, and `b`'s call was a sibling of the wait's), the model failed in its
/// first execution.
#[test]
fn join_b_stays_out_of_a_foreign_wait() {
    check("join_b_stays_out_of_a_foreign_wait", 1, || {
        let a = Pool::new(1).unwrap();
        let b = Pool::new(1).unwrap();
        // The thread of `a` while it is inside its call on B.
        let calling: Mutex<Option<loom::thread::ThreadId>> = Mutex::new(None);
        {
            let outer = CountedJob::new(|| {
                let (x, y) = a.join(
                    || {
                        *calling.lock().unwrap() = Some(loom::thread::current().id());
                        let x = b.apply(|| {
                            slow_chunk();
                            Tracked::new(5u32)
                        });
                        *calling.lock().unwrap() = None;
                        x.get()
                    },
                    || {
                        assert!(
                            *calling.lock().unwrap() != Some(loom::thread::current().id()),
                            "isolation: a foreign wait in a join's `a` ran its `b`"
                        );
                        6u32
                    },
                );
                assert_eq!((x, y), (5, 6), "join: wrong results");
            });
            // SAFETY: awaited before it is dropped: its latch is set at the
            // end of its only execution.
            unsafe { inject(&a, &outer) };
            outer.wait();
        }
        drop(a);
        drop(b);
    });
}

/// Executions of `join` in which `b` was taken back by the joining worker,
/// and in which it was stolen by the other one.
static JOIN_TAKEN_BACK: AtomicUsize = AtomicUsize::new(0);
static JOIN_STOLEN: AtomicUsize = AtomicUsize::new(0);

/// Model 7, join: `Pool::join(a, b)` called from outside moves onto a worker,
/// which offers `b` to thieves (under loom every join does) and runs `a`.
/// Both halves run exactly once and their results reach the caller, whether
/// the joining worker takes `b` back or the other worker steals it; the model
/// checks that both paths were explored.
#[test]
fn join_both_paths() {
    JOIN_TAKEN_BACK.store(0, Ordering::Relaxed);
    JOIN_STOLEN.store(0, Ordering::Relaxed);
    check("join_both_paths", 2, || {
        from_outside(Pool::new(2).unwrap(), |pool| {
            let a_runs = AtomicUsize::new(0);
            let b_runs = AtomicUsize::new(0);
            let a_thread: Mutex<Option<loom::thread::ThreadId>> = Mutex::new(None);
            let b_thread: Mutex<Option<loom::thread::ThreadId>> = Mutex::new(None);
            let (a, b) = pool.join(
                || {
                    a_runs.fetch_add(1, Ordering::Relaxed);
                    *a_thread.lock().unwrap() = Some(loom::thread::current().id());
                    Tracked::new(1u32)
                },
                || {
                    b_runs.fetch_add(1, Ordering::Relaxed);
                    *b_thread.lock().unwrap() = Some(loom::thread::current().id());
                    Tracked::new(2u32)
                },
            );
            assert_eq!((a.get(), b.get()), (1, 2), "join: wrong results");
            assert_eq!(
                (
                    a_runs.load(Ordering::Relaxed),
                    b_runs.load(Ordering::Relaxed)
                ),
                (1, 1),
                "join: a half did not run exactly once"
            );
            let (a_thread, b_thread) = (*a_thread.lock().unwrap(), *b_thread.lock().unwrap());
            if a_thread == b_thread {
                JOIN_TAKEN_BACK.fetch_add(1, Ordering::Relaxed);
            } else {
                JOIN_STOLEN.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    assert!(
        JOIN_TAKEN_BACK.load(Ordering::Relaxed) > 0,
        "join: no execution took `b` back"
    );
    assert!(
        JOIN_STOLEN.load(Ordering::Relaxed) > 0,
        "join: no execution had `b` stolen"
    );
}

/// Model 8, wake-ups follow the work: two tasks submitted back to back to a
/// two-worker pool, the first of which blocks until the second has run. The
/// worker that takes the first one cannot run the second, so the second must
/// get the other worker, asleep or searching: through the publisher's wake-up
/// or through the baton that the last searcher passes when it stops
/// searching. A job left queued while a worker sleeps is a deadlock.
#[test]
fn burst_wakes_a_second_worker() {
    check("burst_wakes_a_second_worker", 2, || {
        let released = loom::sync::Mutex::new(false);
        let release = loom::sync::Condvar::new();
        let blocker = CountedJob::new(|| {
            let mut released = released.lock().unwrap();
            while !*released {
                released = release.wait(released).unwrap();
            }
        });
        let releaser = CountedJob::new(|| {
            *released.lock().unwrap() = true;
            release.notify_all();
        });
        let pool = Pool::new(2).unwrap();
        // SAFETY: both jobs outlive `pool`.
        unsafe {
            inject(&pool, &blocker);
            inject(&pool, &releaser);
        }
        blocker.wait();
        releaser.wait();
        drop(pool);
    });
}

/// Model 9, imap_unordered's completion queue: a one-worker pool maps three
/// items through `imap_unordered` with a window of one, so the consumer (a
/// thread outside the pool) waits on the queue three times in a row, each
/// wait registering it in the same slot. Every wait must be woken: a
/// completion that is late to look at the slot must not take the
/// registration of the consumer's *next* wait (the lost wake-up of
/// `tests/imap_unordered_wakeup.rs`), which loom reports as a deadlock. The
/// consumer gets every result exactly once: sorted, they are exactly the
/// inputs' (a lost, duplicated or wrong result changes the multiset), and
/// each reaches it through a happens-before edge.
#[test]
fn imap_unordered_wakeups() {
    check("imap_unordered_wakeups", 2, || {
        from_outside(Pool::new(1).unwrap(), |pool| {
            let mut values: Vec<u32> = pool
                .imap_unordered(vec![1u32, 2, 3], |x| Tracked::new(x * 10))
                .window(1)
                .map(|value| value.get())
                .collect();
            values.sort_unstable();
            assert_eq!(values, [10, 20, 30], "imap_unordered: wrong results");
        });
    });
}

/// Model 10, scope: an outside thread opens a scope on a one-worker pool and
/// spawns two tasks that each write a value into the caller's stack frame;
/// `scope` returns only after both ran, and both values reach the caller
/// through a happens-before edge (the count of pending tasks, then the
/// scope's latch, or the caller's own last decrement), else loom reports a
/// "Causality violation".
#[test]
fn scope_waits_for_its_tasks() {
    check("scope_waits_for_its_tasks", 2, || {
        from_outside(Pool::new(1).unwrap(), |pool| {
            let left: Mutex<Option<Tracked<u32>>> = Mutex::new(None);
            let right: Mutex<Option<Tracked<u32>>> = Mutex::new(None);
            pool.scope(|s| {
                s.spawn(|| *left.lock().unwrap() = Some(Tracked::new(1)));
                s.spawn(|| *right.lock().unwrap() = Some(Tracked::new(2)));
            });
            let read = |slot: &Mutex<Option<Tracked<u32>>>| {
                slot.lock()
                    .unwrap()
                    .as_ref()
                    .map(Tracked::get)
                    .expect("scope: a task had not run when the scope returned")
            };
            assert_eq!(read(&left) + read(&right), 3, "scope: wrong values");
        });
    });
}

/// Model 11, a task joined from outside: an outside thread spawns a task on a
/// one-worker pool and joins it. `Task::join` registers its waiter on the
/// task's `LateLatch` only when it finds the task unfinished, so the worker
/// may finish first, register-time and set-time may race, or the joiner may
/// park: every way, the join returns the task's value, written by the
/// worker and read through a happens-before edge (else "Causality
/// violation"), and never sleeps through the latch being set.
#[test]
fn task_join_from_outside() {
    check("task_join_from_outside", 2, || {
        from_outside(Pool::new(1).unwrap(), |pool| {
            let task = pool.spawn(|| Tracked::new(7u32));
            assert_eq!(task.join().get(), 7, "task: wrong value");
        });
    });
}

/// Model 12, a task joined on a worker: on a two-worker pool, a job spawns a
/// task (pushed on its worker's deque) and joins it. The joining worker runs
/// jobs while it waits, so either it pops the task itself or the other worker
/// steals it and, finishing, sets the latch and wakes the joiner, which may
/// have gone to sleep meanwhile. The value reaches the joiner either way,
/// and the joiner is not left asleep.
#[test]
fn task_join_on_worker() {
    check("task_join_on_worker", 1, || {
        from_outside(Pool::new(2).unwrap(), |pool| {
            // The task is slow (it yields), so that the joiner can get all
            // the way to sleep while the thief runs it.
            let value = pool.apply(|| {
                pool.spawn(|| {
                    slow_chunk();
                    Tracked::new(9u32)
                })
                .join()
                .get()
            });
            assert_eq!(value, 9, "task: wrong value");
        });
    });
}

/// Model 13, a wait across pools: the worker of pool A calls `apply` on pool
/// B (one worker each). While B's worker runs the slow closure, A's worker
/// waits as a *foreign* worker: it runs A's jobs, may go to sleep in A's
/// sleep slots, and must be woken through A's sleep state, not B's, by B's
/// worker when the latch is set. The value arrives through a happens-before
/// edge.
#[test]
fn cross_pool_wait() {
    check("cross_pool_wait", 1, || {
        let inner = Pool::new(1).unwrap();
        from_outside(Pool::new(1).unwrap(), move |outer| {
            let value = outer.apply(|| {
                inner.apply(|| {
                    slow_chunk();
                    Tracked::new(5u32)
                })
            });
            assert_eq!(value.get(), 5, "cross-pool apply: wrong value");
        });
    });
}

/// Model 14, ordered `imap`: an outside thread drains `imap` over 3 items on
/// a one-worker pool with a window of 1, so each result is a batch task that
/// the consumer joins in turn (`Task::join` from outside, on its
/// `LateLatch`): the results arrive in input order, each through a
/// happens-before edge.
#[test]
fn imap_in_order() {
    check("imap_in_order", 2, || {
        from_outside(Pool::new(1).unwrap(), |pool| {
            let values: Vec<u32> = pool
                .imap(vec![1u32, 2, 3], |x| Tracked::new(x * 10))
                .window(1)
                .map(|value| value.get())
                .collect();
            assert_eq!(values, [10, 20, 30], "imap: wrong results or order");
        });
    });
}

/// Executions of `late_submit_races_close` in which the batch ran on the
/// worker (submitted before the pool closed), and on the consumer (refused).
static LATE_RAN_ON_WORKER: AtomicUsize = AtomicUsize::new(0);
static LATE_RAN_ON_CONSUMER: AtomicUsize = AtomicUsize::new(0);

/// Model 15, a submission racing the pool's drop: an ordered `imap` over one
/// item, made on a one-worker pool, is drained by another thread while the
/// model's main thread drops the pool. The drained batch is submitted by
/// `Registry::try_submit` from outside the pool while `Registry::close` runs:
/// either `close` sees the submitter counted and waits for its push (the
/// worker, not yet told to stop, runs the batch) or the submitter sees the
/// pool closed and runs the batch itself. Either way the result arrives,
/// through a happens-before edge; a batch pushed after the worker has
/// drained the queues and exited is never run, and the consumer waits for it
/// forever (a deadlock). The model checks that both ways were explored.
#[test]
fn late_submit_races_close() {
    LATE_RAN_ON_WORKER.store(0, Ordering::Relaxed);
    LATE_RAN_ON_CONSUMER.store(0, Ordering::Relaxed);
    check("late_submit_races_close", 2, || {
        let pool = Pool::new(1).unwrap();
        let results = pool
            .imap(vec![1u32], |x| {
                let ran_on = match stealpool::current_thread_index() {
                    Some(_) => &LATE_RAN_ON_WORKER,
                    None => &LATE_RAN_ON_CONSUMER,
                };
                ran_on.fetch_add(1, Ordering::Relaxed);
                Tracked::new(x * 10)
            })
            .window(1);
        let consumer = loom::thread::spawn(move || {
            results
                .map(|value: Tracked<u32>| value.get())
                .collect::<Vec<u32>>()
        });
        drop(pool);
        let values = consumer.join().expect("the consumer panicked");
        assert_eq!(values, [10], "late submission: wrong results");
    });
    assert!(
        LATE_RAN_ON_WORKER.load(Ordering::Relaxed) > 0,
        "late submission: in no execution did the worker run the batch"
    );
    assert!(
        LATE_RAN_ON_CONSUMER.load(Ordering::Relaxed) > 0,
        "late submission: in no execution was the batch refused"
    );
}

/// Model 16, `Task::is_finished` publishes the task's writes: an outside
/// thread spawns a task on a one-worker pool that writes a `Tracked` value
/// shared with the caller, polls `is_finished` until it says so, and then
/// reads the value without any other synchronization. The read must be
/// ordered after the task's write (else "Causality violation"): the
/// `LateLatch`'s Release store and Acquire probe are the only edge, since
/// `Task::join` would add one of its own through the result's mutex.
#[test]
fn task_is_finished_publishes() {
    check("task_is_finished_publishes", 2, || {
        from_outside(Pool::new(1).unwrap(), |pool| {
            let shared = std::sync::Arc::new(Tracked::new(0u32));
            let writer = std::sync::Arc::clone(&shared);
            let task = pool.spawn(move || writer.set(7));
            while !task.is_finished() {
                loom::thread::yield_now();
            }
            assert_eq!(
                shared.get(),
                7,
                "is_finished: the task's write is not visible"
            );
            task.join();
        });
    });
}

/// Model 21, calls from the model's main thread, as a user's model makes
/// them: on a one-worker pool, a task spawned and joined, then an ordered
/// `imap` over 2 items drained, then the pool dropped, all on loom's main
/// thread. A latch's setter wakes an outside waiter after it publishes, so
/// the waiter may have seen the result and gone on to block elsewhere (here
/// in the drop's join of the worker) when the wake-up comes; loom 0.7 fails
/// a model whose `unpark` reaches a thread blocked that way (loom issue
/// #249), so under loom an outside waiter parks on a token of its own
/// (`sync::park`), which an early wake-up only sets.
#[test]
fn calls_from_the_models_main_thread() {
    check("calls_from_the_models_main_thread", 2, || {
        let pool = Pool::new(1).unwrap();
        assert_eq!(pool.spawn(|| 7).join(), 7);
        let squares: Vec<u32> = pool.imap(vec![2u32, 3], |x| x * x).collect();
        assert_eq!(squares, [4, 9]);
        drop(pool);
    });
}

/// Model 22, a task awaited: the model's main thread spawns a task on a
/// one-worker pool and awaits it with loom's `block_on`, then drops the
/// pool. The first poll registers the executor's waker in the task's latch
/// and looks at the flag again; the worker sets the flag, then takes the
/// registered waiter and wakes it. Whichever goes first, the awaiter gets
/// the result: a registration that returned pending without the second
/// look, after a set that found no waker, leaves `block_on` waiting forever.
#[test]
fn task_awaited_from_the_main_thread() {
    check("task_awaited_from_the_main_thread", 2, || {
        let pool = Pool::new(1).unwrap();
        let task = pool.spawn(|| Tracked::new(7u32));
        let result = loom::future::block_on(task);
        assert_eq!(result.get(), 7, "task future: wrong result");
        drop(pool);
    });
}

/// Model 23, a wave wakes every sleeper it needs: two workers of one pool's
/// sleep state find nothing and go to sleep while a publisher makes two jobs
/// visible at once and publishes them as one wave (`Sleep::new_work_for`,
/// how a call engages its helpers). Each worker either sees the jobs in the
/// re-check after it announced its sleep, or is woken by that one publish:
/// the model leaves out the baton that a searcher passes when it stops
/// (the workers here run nothing after waking), so a wave that wakes fewer
/// sleepers than it has jobs, counting the searchers, leaves one asleep for
/// ever, which loom reports as a deadlock.
#[test]
fn wave_wakes_every_sleeper_it_needs() {
    check("wave_wakes_every_sleeper_it_needs", 3, || {
        let sleepers = loom::sync::Arc::new(stealpool::model_hooks::Sleepers::new(2));
        let jobs = loom::sync::Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|index| {
                let sleepers = loom::sync::Arc::clone(&sleepers);
                let jobs = loom::sync::Arc::clone(&jobs);
                // Relaxed: the protocol's fences order the publisher's store
                // before the re-check (the news is what the fences order).
                loom::thread::spawn(move || {
                    sleepers.idle(index, || jobs.load(Ordering::Relaxed) > 0);
                })
            })
            .collect();
        jobs.store(2, Ordering::Relaxed);
        assert!(sleepers.publish(2) <= 2, "a wave woke more than its jobs");
        for worker in workers {
            worker.join().expect("a worker panicked");
        }
    });
}
