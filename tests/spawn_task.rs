//! `Pool::spawn` and `Task`: results, panics re-raised on `join`,
//! `is_finished`, detaching by dropping the handle, joining after the pool is
//! gone, joining from another thread, spawning and joining from inside a
//! worker (1-thread pools, chains of tasks), and the drop count of results
//! that nobody joins. Everything that could hang runs under a watchdog.

mod common;

use common::{panic_message, quiet_expected_panics, watchdog, CustomPayload, DropCount, EXPECTED};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool, Task};

const WATCHDOG_SECS: u64 = 60;

#[test]
fn spawn_returns_the_result_from_a_worker() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            let tasks: Vec<Task<(u64, Option<usize>)>> = (0..2000u64)
                .map(|i| pool.spawn(move || (i * i, current_thread_index())))
                .collect();
            for (i, task) in tasks.into_iter().enumerate() {
                let (square, index) = task.join();
                assert_eq!(square, (i * i) as u64);
                assert!(
                    index.is_some_and(|x| x < threads),
                    "task {i} ran off the pool: {index:?}"
                );
            }
        }
    });
}

#[test]
fn a_panicking_task_reraises_its_payload_on_join() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let task = pool.spawn(|| -> u32 {
            panic_any(CustomPayload {
                code: 42,
                text: EXPECTED.to_owned(),
            })
        });
        let err = catch_unwind(AssertUnwindSafe(|| task.join())).expect_err("panic lost");
        let payload = err
            .downcast_ref::<CustomPayload>()
            .expect("the payload changed type");
        assert_eq!(payload.code, 42);

        let task = pool.spawn(|| -> u32 { panic!("{EXPECTED}: task {}", 7) });
        // Let it finish first: the panic is stored, not lost.
        while !task.is_finished() {
            thread::sleep(Duration::from_millis(1));
        }
        let err = catch_unwind(AssertUnwindSafe(|| task.join())).expect_err("panic lost");
        assert_eq!(
            panic_message(&*err),
            Some(format!("{EXPECTED}: task 7").as_str())
        );
        // The workers survived.
        let tasks: Vec<_> = (0..100).map(|i| pool.spawn(move || i + 1)).collect();
        let sum: i32 = tasks.into_iter().map(Task::join).sum();
        assert_eq!(sum, 5050);
    });
}

#[test]
fn is_finished_becomes_true_without_join() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let gate = Arc::clone(&release);
        let task = pool.spawn(move || {
            while !gate.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
            5
        });
        thread::sleep(Duration::from_millis(50));
        assert!(!task.is_finished(), "finished before it was released");
        assert!(format!("{task:?}").contains("false"));
        release.store(true, Ordering::SeqCst);
        let start = Instant::now();
        while !task.is_finished() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "is_finished still false 20 s after the task could return"
            );
            thread::sleep(Duration::from_millis(1));
        }
        assert!(format!("{task:?}").contains("true"));
        assert_eq!(task.join(), 5);
    });
}

#[test]
fn dropping_a_task_detaches_it() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let ran = Arc::new(AtomicUsize::new(0));
            let result_drops = Arc::new(AtomicUsize::new(0));
            for i in 0..20u64 {
                let ran = Arc::clone(&ran);
                let drops = Arc::clone(&result_drops);
                let task = pool.spawn(move || {
                    thread::sleep(Duration::from_millis(5));
                    ran.fetch_add(1, Ordering::SeqCst);
                    DropCount(drops, i)
                });
                drop(task);
            }
            // Dropping the pool waits for the detached tasks.
            drop(pool);
            assert_eq!(ran.load(Ordering::SeqCst), 20, "detached tasks lost");
            assert_eq!(
                result_drops.load(Ordering::SeqCst),
                20,
                "the results of detached tasks must be dropped exactly once"
            );
        }
    });
}

#[test]
fn join_after_the_pool_was_dropped() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50u64)
            .map(|i| {
                let drops = Arc::clone(&drops);
                pool.spawn(move || {
                    thread::sleep(Duration::from_millis(1));
                    DropCount(drops, i * 3)
                })
            })
            .collect();
        drop(pool);
        assert!(
            tasks.iter().all(Task::is_finished),
            "the pool's drop ran them"
        );
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.join().1, i as u64 * 3);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 50);
    });
}

#[test]
fn a_task_is_send_and_joins_on_another_thread() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let (tx, rx) = mpsc::channel::<Task<String>>();
        let joiner = thread::spawn(move || {
            let mut out = Vec::new();
            for task in rx {
                out.push(task.join());
            }
            out
        });
        for i in 0..100 {
            tx.send(pool.spawn(move || format!("task {i}"))).unwrap();
        }
        drop(tx);
        let out = joiner.join().unwrap();
        let expected: Vec<String> = (0..100).map(|i| format!("task {i}")).collect();
        assert_eq!(out, expected);
        // And a task handed to a worker of the same pool to join there.
        let task = pool.spawn(|| 11);
        assert_eq!(pool.apply(move || task.join()), 11);
    });
}

#[test]
fn spawn_and_join_inside_a_one_thread_pool() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Arc::new(Pool::new(1).unwrap());
        // From apply: the only worker joins a task queued on its own deque.
        let value = pool.apply(|| {
            let task = pool.spawn(current_thread_index);
            task.join()
        });
        assert_eq!(value, Some(0));
        // From a spawned task, a chain: each task spawns the next and joins it.
        fn chain(pool: Arc<Pool>, n: u32) -> u32 {
            if n == 0 {
                return 0;
            }
            let inner = Arc::clone(&pool);
            1 + pool.spawn(move || chain(inner, n - 1)).join()
        }
        let inner = Arc::clone(&pool);
        assert_eq!(pool.spawn(move || chain(inner, 100)).join(), 100);
        // Many tasks spawned by a task, joined there in reverse order.
        let inner = Arc::clone(&pool);
        let sum = pool
            .spawn(move || {
                let tasks: Vec<_> = (0..1000u64).map(|i| inner.spawn(move || i)).collect();
                tasks.into_iter().rev().map(Task::join).sum::<u64>()
            })
            .join();
        assert_eq!(sum, 999 * 1000 / 2);
    });
}

#[test]
fn spawn_from_eight_plain_threads_at_once() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        thread::scope(|s| {
            for t in 0..8u64 {
                let pool = &pool;
                s.spawn(move || {
                    let tasks: Vec<_> = (0..500u64).map(|i| pool.spawn(move || t * i)).collect();
                    let sum: u64 = tasks.into_iter().map(Task::join).sum();
                    assert_eq!(sum, t * 499 * 500 / 2);
                });
            }
        });
    });
}

#[test]
fn task_captures_and_result_are_dropped_exactly_once() {
    // The result and the captured values of a joined task are dropped exactly
    // once, and only after the consumer is done with them.
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let captured = DropCount(Arc::clone(&drops), 1);
        let result_drops = Arc::clone(&drops);
        let task = pool.spawn(move || {
            let _keep = &captured;
            DropCount(result_drops, captured.1 + 1)
        });
        let result = task.join();
        assert_eq!(result.1, 2);
        // The closure (and `captured`) is gone once the task finished.
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(result);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}
