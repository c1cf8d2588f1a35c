//! `impl Future for Task`: awaited from an executor (pollster), the result
//! arrives after one wake-up (no busy polling), a panic is re-raised with
//! its payload, a future dropped before completion detaches the task, and a
//! task finished before its first poll is ready at once.

mod common;

use common::{panic_message, quiet_expected_panics, watchdog, EXPECTED};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use stealpool::{Pool, Task};

/// Every test runs under a watchdog: a lost wake-up hangs an executor.
const WATCHDOG_SECS: u64 = 30;

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: F,
    polls: Arc<AtomicUsize>,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn awaiting_a_task_polls_twice_and_returns_its_result() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let (go, wait) = mpsc::channel::<()>();
        // The task waits until the future has been polled once (and is
        // pending), so the result comes through the registered waker.
        let task = pool.spawn(move || {
            wait.recv().expect("the test sends");
            6 * 7
        });
        let polls = Arc::new(AtomicUsize::new(0));
        let future = Counted {
            inner: task,
            polls: Arc::clone(&polls),
        };
        // Releases the task once the future has been polled (and found it
        // pending).
        let sender = {
            let polls = Arc::clone(&polls);
            std::thread::spawn(move || {
                while polls.load(Ordering::SeqCst) == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                go.send(()).expect("the task receives");
            })
        };
        let answer = pollster::block_on(future);
        sender.join().expect("the sender");
        assert_eq!(answer, 42);
        // One poll that registers, one after the wake-up: no busy polling.
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_finished_task_is_ready_at_the_first_poll() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        let mut task = pool.spawn(|| "done");
        while !task.is_finished() {
            std::thread::yield_now();
        }
        let waker = Arc::new(CountingWaker::default());
        let handle = Waker::from(Arc::clone(&waker));
        let mut cx = Context::from_waker(&handle);
        assert_eq!(Pin::new(&mut task).poll(&mut cx), Poll::Ready("done"));
        assert_eq!(waker.0.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn the_task_wakes_the_waker_of_the_last_poll_once() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        let (go, wait) = mpsc::channel::<()>();
        let mut task: Task<u32> = pool.spawn(move || {
            wait.recv().expect("the test sends");
            7
        });
        let first = Arc::new(CountingWaker::default());
        let second = Arc::new(CountingWaker::default());
        let waker_of = |w: &Arc<CountingWaker>| Waker::from(Arc::clone(w));
        assert_eq!(
            Pin::new(&mut task).poll(&mut Context::from_waker(&waker_of(&first))),
            Poll::Pending
        );
        assert_eq!(
            Pin::new(&mut task).poll(&mut Context::from_waker(&waker_of(&second))),
            Poll::Pending
        );
        go.send(()).expect("the task receives");
        while second.0.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            first.0.load(Ordering::SeqCst),
            0,
            "a replaced waker was woken"
        );
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            Pin::new(&mut task).poll(&mut Context::from_waker(&waker_of(&second))),
            Poll::Ready(7)
        );
    });
}

#[test]
fn a_panicking_task_re_raises_its_payload_when_awaited() {
    watchdog(WATCHDOG_SECS, || {
        quiet_expected_panics();
        let pool = Pool::new(2).unwrap();
        let task: Task<u32> = pool.spawn(|| panic!("{EXPECTED}: the task fails"));
        let payload = catch_unwind(AssertUnwindSafe(|| pollster::block_on(task)))
            .expect_err("the task's panic reached the awaiter");
        assert_eq!(
            panic_message(payload.as_ref()),
            Some(format!("{EXPECTED}: the task fails").as_str())
        );
        // The pool is still usable.
        assert_eq!(pollster::block_on(pool.spawn(|| 1)), 1);
    });
}

#[test]
fn dropping_a_pending_future_detaches_the_task() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let (go, wait) = mpsc::channel::<()>();
        let mut task = {
            let ran = Arc::clone(&ran);
            pool.spawn(move || {
                wait.recv().expect("the test sends");
                ran.store(true, Ordering::SeqCst);
            })
        };
        let waker = Arc::new(CountingWaker::default());
        let handle = Waker::from(Arc::clone(&waker));
        let mut cx = Context::from_waker(&handle);
        assert_eq!(Pin::new(&mut task).poll(&mut cx), Poll::Pending);
        drop(task);
        go.send(()).expect("the task receives");
        // Dropping the pool waits for the detached task.
        drop(pool);
        assert!(ran.load(Ordering::SeqCst), "the detached task did not run");
    });
}

#[test]
fn polling_after_the_result_panics() {
    watchdog(WATCHDOG_SECS, || {
        quiet_expected_panics();
        let pool = Pool::new(1).unwrap();
        let mut task = pool.spawn(|| 3);
        while !task.is_finished() {
            std::thread::yield_now();
        }
        let handle = Waker::from(Arc::new(CountingWaker::default()));
        let mut cx = Context::from_waker(&handle);
        assert_eq!(Pin::new(&mut task).poll(&mut cx), Poll::Ready(3));
        let again = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut task).poll(&mut cx)));
        let payload = again.expect_err("a second poll after Ready panics");
        assert_eq!(
            panic_message(payload.as_ref()),
            Some("stealpool: a Task polled again after it returned its result")
        );
    });
}
