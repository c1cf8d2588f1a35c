//! Per-call options: cancellation by a token or a deadline (per item, with
//! every result and every owned item dropped once), progress, and the chunk
//! size on every method of the family. Every test that waits runs under a
//! watchdog, so a hang fails it.

mod common;

use common::{quiet_expected_panics, spin, watchdog, Counts, Tracked, EXPECTED};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use stealpool::{CancelToken, Cancelled, Pool, Progress};

const THREADS: [usize; 3] = [1, 2, 4];

/// A token cancelled before the call, or a deadline already past: no item
/// runs, on every method, and an owned input is dropped whole.
#[test]
fn a_call_stopped_before_it_starts_runs_nothing() {
    let pool = Pool::new(2).unwrap();
    let token = CancelToken::new();
    token.cancel();
    let calls = AtomicUsize::new(0);
    let count = |i: usize| {
        calls.fetch_add(1, Ordering::Relaxed);
        i
    };
    let past = Instant::now();
    for options in [
        pool.options().cancel_on(&token),
        pool.options().deadline(past),
        pool.options().chunk_size(1).cancel_on(&token),
    ] {
        assert_eq!(options.map(0..100, count).unwrap_err().finished(), 0);
        let mapped: Result<Vec<usize>, Cancelled> = options.try_map(0..100, |i| Ok(count(i)));
        assert_eq!(mapped.unwrap_err().finished(), 0);
        assert!(options.map_init(0..100, || (), |(), i| count(i)).is_err());
        assert!(options
            .for_each(0..100, |i| {
                count(i);
            })
            .is_err());
        assert!(options
            .map_reduce(0..100, count, || 0, |a, b| a + b)
            .is_err());
        let inputs = Counts::default();
        let owned: Vec<Tracked<'_>> = (0..100).map(|i| inputs.make(i)).collect();
        assert!(options.map(owned, |t| count(t.value)).is_err());
        assert_eq!(
            inputs.dropped(),
            100,
            "the owned items were not all dropped"
        );
    }
    assert_eq!(calls.into_inner(), 0);
}

/// A cancel from another thread stops the call item by item: after
/// `cancel()` returns, each thread starts at most the one item it had
/// already decided to start, however large the chunks.
#[test]
fn a_cancel_stops_each_thread_within_one_item() {
    watchdog(120, || {
        for threads in THREADS {
            for chunk in [None, Some(1000)] {
                let pool = Pool::new(threads).unwrap();
                let token = CancelToken::new();
                let started = AtomicUsize::new(0);
                let at_cancel = AtomicUsize::new(usize::MAX);
                let result = std::thread::scope(|s| {
                    s.spawn(|| {
                        while started.load(Ordering::SeqCst) < 20 {
                            std::thread::yield_now();
                        }
                        token.cancel();
                        at_cancel.store(started.load(Ordering::SeqCst), Ordering::SeqCst);
                    });
                    let options = pool.options();
                    let options = match chunk {
                        Some(n) => options.chunk_size(n),
                        None => options,
                    };
                    options.cancel_on(&token).for_each(0..100_000, |_| {
                        started.fetch_add(1, Ordering::SeqCst);
                        spin(Duration::from_micros(200));
                    })
                });
                let cancelled = result.expect_err("the call was not cancelled");
                let started = started.into_inner();
                let at_cancel = at_cancel.into_inner();
                assert!(
                    started <= at_cancel + threads,
                    "{threads} threads, chunk {chunk:?}: {} items started after the cancel",
                    started - at_cancel
                );
                assert_eq!(cancelled.finished(), started, "every started item finished");
            }
        }
    });
}

/// A deadline in the middle of a call stops it soon after, not at the end.
#[test]
fn a_deadline_stops_a_long_call() {
    watchdog(60, || {
        let pool = Pool::new(2).unwrap();
        let deadline = Instant::now() + Duration::from_millis(30);
        let result = pool.options().deadline(deadline).map(0..100_000, |i| {
            spin(Duration::from_micros(100));
            i
        });
        let cancelled = result.expect_err("ran 5 s of work past a 30 ms deadline");
        assert!(cancelled.finished() < 100_000);
        assert!(Instant::now() < deadline + Duration::from_secs(2));
    });
}

/// A cancel racing the last items: the result is either complete and in
/// order, or `Cancelled`, never a partial `Vec`.
#[test]
fn a_cancel_racing_completion_never_returns_a_partial_result() {
    watchdog(120, || {
        let pool = Pool::new(3).unwrap();
        let (mut complete, mut cancelled) = (0, 0);
        for round in 0..300usize {
            let token = CancelToken::new();
            let len = 64;
            let cancel_at = round % (len + 8);
            let result = pool.options().cancel_on(&token).map(0..len, |i| {
                if i == cancel_at {
                    token.cancel();
                }
                spin(Duration::from_micros(1));
                i * 2
            });
            match result {
                Ok(out) => {
                    assert_eq!(out, (0..len).map(|i| i * 2).collect::<Vec<_>>());
                    complete += 1;
                }
                Err(c) => {
                    assert!(c.finished() < len);
                    cancelled += 1;
                }
            }
        }
        // Rounds that cancel at an index past the end never cancel.
        assert!(complete >= 300 / 72 * 8, "{complete} complete");
        assert!(cancelled > 0);
    });
}

/// One token stops several calls running at once, from several threads.
#[test]
fn one_token_cancels_every_call_it_was_given_to() {
    watchdog(60, || {
        let pool = Pool::new(2).unwrap();
        let other = Pool::new(2).unwrap();
        let token = CancelToken::new();
        let running = Barrier::new(4);
        std::thread::scope(|s| {
            let calls: Vec<_> = [&pool, &other, &pool]
                .into_iter()
                .map(|p| {
                    let (token, running) = (&token, &running);
                    s.spawn(move || {
                        let first = AtomicBool::new(true);
                        p.options().cancel_on(token).for_each(0..1_000_000, |_| {
                            if first.swap(false, Ordering::SeqCst) {
                                running.wait();
                            }
                            spin(Duration::from_micros(50));
                        })
                    })
                })
                .collect();
            running.wait();
            token.cancel();
            for call in calls {
                assert!(call.join().unwrap().is_err());
            }
        });
    });
}

/// Cancelling after the call returned changes nothing; the token then stops
/// the next call at once.
#[test]
fn a_cancel_after_the_call_changes_nothing() {
    let pool = Pool::new(2).unwrap();
    let token = CancelToken::new();
    let out = pool.options().cancel_on(&token).map(0..10, |i| i);
    token.cancel();
    assert_eq!(out, Ok((0..10).collect()));
    assert!(pool.options().cancel_on(&token).map(0..10, |i| i).is_err());
}

/// A cancelled call over an owned input: the results made and the items not
/// taken are each dropped once, on every method.
#[test]
fn a_cancelled_call_drops_every_value_once() {
    watchdog(120, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for len in [1, 100, 10_000] {
                for stop_at in [0, len / 2, len - 1] {
                    let inputs = Counts::default();
                    let results = Counts::default();
                    let owned = || (0..len).map(|i| inputs.make(i)).collect::<Vec<_>>();
                    let what = format!("{threads} threads, {len} items, cancel at {stop_at}");

                    let token = CancelToken::new();
                    let out = pool.options().cancel_on(&token).map(owned(), |t| {
                        if t.value == stop_at {
                            token.cancel();
                        }
                        results.make(t.value)
                    });
                    if threads == 1 {
                        // In order on one thread: cancelled iff an item
                        // follows the one that cancels.
                        assert_eq!(out.is_err(), stop_at + 1 < len, "map: {what}");
                    }
                    drop(out);
                    assert_eq!(inputs.dropped(), len, "map: {what}");
                    assert_eq!(results.dropped(), results.created(), "map: {what}");

                    let token = CancelToken::new();
                    let _ = pool.options().cancel_on(&token).for_each(owned(), |t| {
                        if t.value == stop_at {
                            token.cancel();
                        }
                    });
                    assert_eq!(inputs.dropped(), 2 * len, "for_each: {what}");

                    let token = CancelToken::new();
                    let out = pool.options().cancel_on(&token).map_reduce(
                        owned(),
                        |t| {
                            if t.value == stop_at {
                                token.cancel();
                            }
                            results.make(t.value)
                        },
                        || results.make(0),
                        |a, b| results.make(a.value + b.value),
                    );
                    drop(out);
                    assert_eq!(inputs.dropped(), 3 * len, "map_reduce: {what}");
                    assert_eq!(results.dropped(), results.created(), "map_reduce: {what}");
                    assert_eq!(inputs.created(), 3 * len);
                }
            }
        }
    });
}

/// A panic wins over a cancellation, and the values are still dropped once.
#[test]
fn a_panic_in_a_cancellable_call_is_re_raised() {
    quiet_expected_panics();
    let pool = Pool::new(2).unwrap();
    let token = CancelToken::new();
    let inputs = Counts::default();
    let owned: Vec<Tracked<'_>> = (0..1000).map(|i| inputs.make(i)).collect();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.options().cancel_on(&token).map(owned, |t| {
            if t.value == 10 {
                token.cancel();
                panic!("{EXPECTED}");
            }
            t.value
        })
    }));
    assert!(caught.is_err());
    assert_eq!(inputs.dropped(), 1000);
}

/// `try_map` turns a stop into the caller's error type through `From`.
#[test]
fn try_map_reports_a_stop_as_its_own_error() {
    #[derive(Debug, PartialEq)]
    enum Error {
        Odd(usize),
        Stopped,
    }
    impl From<Cancelled> for Error {
        fn from(_: Cancelled) -> Self {
            Error::Stopped
        }
    }
    let pool = Pool::new(1).unwrap();
    let token = CancelToken::new();
    let options = pool.options().cancel_on(&token);
    let all_even = options.try_map(0..10, |i| {
        if i < 100 {
            Ok(i * 2)
        } else {
            Err(Error::Odd(i))
        }
    });
    assert_eq!(all_even.map(|v| v.len()), Ok(10));
    let odd = options.try_map(0..10, |i| {
        if i % 2 == 0 {
            Ok(i)
        } else {
            Err(Error::Odd(i))
        }
    });
    assert_eq!(odd, Err(Error::Odd(1)));
    token.cancel();
    let stopped = options.try_map(0..10, Ok::<usize, Error>);
    assert_eq!(stopped, Err(Error::Stopped));
}

/// Progress counts every item of every method, and a reader on another
/// thread sees it grow, never past the total.
#[test]
fn progress_counts_every_item() {
    watchdog(60, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            let progress = Progress::new();
            let options = pool.options().progress(&progress);
            options.map(0..1000, |i| i);
            options.for_each(vec![0u8; 1000], |_| {});
            let mut values = vec![0; 1000];
            options.map_init(&mut values, || (), |(), v| *v += 1);
            let _: Result<Vec<()>, ()> = options.try_map(0..1000, |_| Ok(()));
            options.map_reduce(0..10_000, |i| i, || 0, |a, b| a + b);
            options.chunk_size(7).for_each(0..1000, |_| {});
            assert_eq!(progress.done(), 15_000, "{threads} threads");
            assert_eq!(progress.total(), 15_000);

            let progress = Progress::new();
            let done = AtomicBool::new(false);
            std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    let mut last = 0;
                    let mut readings = 0;
                    while !done.load(Ordering::SeqCst) {
                        let now = progress.done();
                        assert!(now >= last, "progress went back");
                        assert!(now <= 20_000);
                        last = now;
                        readings += 1;
                    }
                    readings
                });
                pool.options()
                    .progress(&progress)
                    .for_each(0..20_000, |_| spin(Duration::from_micros(2)));
                done.store(true, Ordering::SeqCst);
                assert!(reader.join().unwrap() > 0);
            });
            assert_eq!(progress.done(), 20_000);
        }
    });
}

/// A cancelled call's progress counts the items that finished, as
/// `Cancelled::finished` does.
#[test]
fn progress_of_a_cancelled_call_matches_its_count() {
    let pool = Pool::new(2).unwrap();
    let progress = Progress::new();
    let token = CancelToken::new();
    let err = pool
        .options()
        .progress(&progress)
        .cancel_on(&token)
        .for_each(0..100_000, |i| {
            if i == 500 {
                token.cancel();
            }
        })
        .unwrap_err();
    assert_eq!(progress.done(), err.finished());
    assert_eq!(progress.total(), 100_000);
}

/// The chunk size is the same option on every method: chunks of exactly
/// `n` consecutive items on one thread, and 0 is refused.
#[test]
fn the_chunk_size_applies_to_every_method() {
    let pool = Pool::new(4).unwrap();
    let options = pool.options().chunk_size(10);
    // Each chunk of 10 runs on one thread: record who ran each item.
    let who = |_: usize| std::thread::current().id();
    let check = |ids: &[std::thread::ThreadId]| {
        for chunk in ids.chunks(10) {
            assert!(chunk.iter().all(|id| *id == chunk[0]), "a chunk was split");
        }
    };
    check(&options.map(0..1000, |i| {
        spin(Duration::from_micros(1));
        who(i)
    }));
    check(&options.map_init(0..1000, || (), |(), i| who(i)));
    let tried: Result<Vec<_>, ()> = options.try_map(0..1000, |i| Ok(who(i)));
    check(&tried.unwrap());
    let mut ids = vec![None; 1000];
    options.for_each(&mut ids, |slot| *slot = Some(std::thread::current().id()));
    check(&ids.into_iter().map(Option::unwrap).collect::<Vec<_>>());
    let sum = options.map_reduce(0..100_000usize, |i| i, || 0, |a, b| a + b);
    assert_eq!(sum, 100_000 * 99_999 / 2);
}

/// `imap` and `imap_unordered` take the same chunk size (batches of exactly
/// `n` consecutive items, each run by one thread) and count into a progress.
#[test]
fn imap_takes_the_chunk_size_and_the_progress() {
    watchdog(60, || {
        let pool = Pool::new(4).unwrap();
        let progress = Progress::new();
        let who = |_: u32| {
            spin(Duration::from_micros(20));
            std::thread::current().id()
        };
        let ids: Vec<_> = pool
            .options()
            .chunk_size(10)
            .progress(&progress)
            .imap(0..1000u32, who)
            .collect();
        for chunk in ids.chunks(10) {
            assert!(
                chunk.iter().all(|id| *id == chunk[0]),
                "an imap batch was split"
            );
        }
        assert_eq!((progress.done(), progress.total()), (1000, 1000));
        let mut seen: Vec<u32> = pool
            .options()
            .chunk_size(7)
            .imap_unordered(0..100u32, |x| x)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    });
}

/// A cancelled imap: the items not started yield `Err(Cancelled)` without
/// running, so collecting into a `Result` stops; at most one item per thread
/// starts after the cancel; the progress counts the items that ran.
#[test]
fn a_cancelled_imap_runs_no_more_items() {
    watchdog(60, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            let token = CancelToken::new();
            let progress = Progress::new();
            let started = Arc::new(AtomicUsize::new(0));
            let at_cancel = Arc::new(AtomicUsize::new(usize::MAX));
            let f = {
                let (started, at_cancel, token) =
                    (Arc::clone(&started), Arc::clone(&at_cancel), token.clone());
                move |i: u32| {
                    if started.fetch_add(1, Ordering::SeqCst) == 50 {
                        token.cancel();
                        at_cancel.store(started.load(Ordering::SeqCst), Ordering::SeqCst);
                    }
                    spin(Duration::from_micros(20));
                    i
                }
            };
            let out: Result<Vec<u32>, Cancelled> = pool
                .options()
                .chunk_size(8)
                .progress(&progress)
                .cancel_on(&token)
                .imap(0..100_000u32, f)
                .collect();
            let cancelled = out.expect_err("the imap was not cancelled");
            // Batches already running when the iterator was dropped finish
            // on their own: dropping the pool waits for them.
            drop(pool);
            let started = started.load(Ordering::SeqCst);
            let at_cancel = at_cancel.load(Ordering::SeqCst);
            assert!(
                started <= at_cancel + threads,
                "{threads} threads: {started} after {at_cancel}"
            );
            assert!(cancelled.finished() <= started);
            assert_eq!(progress.done(), started, "{threads} threads");
            assert_eq!(progress.total(), 100_000);
        }
    });
}

#[test]
#[should_panic(expected = "chunk_size must be at least 1")]
fn a_chunk_size_of_zero_panics() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.options().chunk_size(0);
}

/// A spawned task whose token is cancelled before it starts never runs,
/// and joining it says so; one already started runs to the end.
#[test]
fn a_cancelled_spawn_never_runs() {
    watchdog(60, || {
        let pool = Pool::new(1).unwrap();
        let token = CancelToken::new();
        let ran = Arc::new(AtomicUsize::new(0));
        // Keep the only worker busy until the second task is queued and
        // its token cancelled.
        let release = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let blocker = {
            let (release, started) = (Arc::clone(&release), Arc::clone(&started));
            pool.options().cancel_on(&token).spawn(move || {
                started.store(true, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                7
            })
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let queued = {
            let ran = Arc::clone(&ran);
            pool.options().cancel_on(&token).spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        };
        token.cancel();
        release.store(true, Ordering::SeqCst);
        assert_eq!(blocker.join(), Ok(7), "a started task was stopped");
        assert_eq!(queued.join().unwrap_err().finished(), 0);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the cancelled task ran");
    });
}

/// A cancelled scope starts no more tasks; the skipped tasks' captures are
/// dropped once, the started ones finish, and the counts add up.
#[test]
fn a_cancelled_scope_skips_the_tasks_not_started() {
    watchdog(60, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            let token = CancelToken::new();
            let captures = Counts::default();
            let ran = AtomicUsize::new(0);
            let out = pool.options().cancel_on(&token).scope(|s| {
                for i in 0..100 {
                    let captured = captures.make(i);
                    let (ran, token) = (&ran, &token);
                    s.spawn(move || {
                        if ran.fetch_add(1, Ordering::SeqCst) == 9 {
                            token.cancel();
                        }
                        spin(Duration::from_micros(100));
                        drop(captured);
                    });
                }
            });
            let cancelled = out.expect_err("the scope was not cancelled");
            let ran = ran.into_inner();
            assert_eq!(cancelled.finished(), ran, "{threads} threads");
            assert!(ran < 100, "{threads} threads: every task ran");
            assert_eq!(captures.created(), 100);
            assert_eq!(captures.dropped(), 100, "{threads} threads");
        }
    });
}

#[test]
fn a_token_is_shared_by_its_clones() {
    let token = CancelToken::new();
    let clone = token.clone();
    assert!(!clone.is_cancelled());
    token.cancel();
    assert!(clone.is_cancelled());
    let moved = Arc::new(clone);
    std::thread::spawn(move || assert!(moved.is_cancelled()))
        .join()
        .unwrap();
    assert_eq!(format!("{token:?}"), "CancelToken { cancelled: true }");
}

/// A cancellable scope that nobody cancels runs every task and returns its
/// body's value.
#[test]
fn a_scope_never_cancelled_returns_its_value() {
    for threads in THREADS {
        let pool = Pool::new(threads).unwrap();
        let token = CancelToken::new();
        let ran = AtomicUsize::new(0);
        let out = pool.options().cancel_on(&token).scope(|s| {
            for _ in 0..10 {
                s.spawn(|| {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
            "body"
        });
        assert_eq!(out, Ok("body"), "{threads} threads");
        assert_eq!(ran.into_inner(), 10);
    }
}

/// An item of an owned input whose drop panics, never taken by a cancelled
/// call: the call drops it, and its panic is the call's panic (not lost
/// behind the `Cancelled`), on every method that takes an owned input.
#[test]
fn a_panicking_drop_of_an_untaken_item_is_the_cancelled_calls_panic() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("{EXPECTED}: a bomb's drop");
        }
    }
    quiet_expected_panics();
    let pool = Pool::new(2).unwrap();
    let token = CancelToken::new();
    token.cancel();
    type Call<'a> = (&'a str, &'a dyn Fn(Vec<Bomb>));
    let calls: [Call<'_>; 3] = [
        ("map", &|input| {
            let _ = pool.options().cancel_on(&token).map(input, |_| 0);
        }),
        ("try_map", &|input| {
            let _ = pool
                .options()
                .cancel_on(&token)
                .try_map(input, |_| Ok::<u8, Cancelled>(0));
        }),
        ("for_each", &|input| {
            let _ = pool.options().cancel_on(&token).for_each(input, drop);
        }),
    ];
    for (name, call) in calls {
        let input = vec![Bomb];
        let payload = catch_unwind(AssertUnwindSafe(|| call(input)))
            .expect_err(&format!("{name}: the drop's panic was lost"));
        let message = payload.downcast_ref::<String>().map(String::as_str);
        assert_eq!(
            message,
            Some(&*format!("{EXPECTED}: a bomb's drop")),
            "{name}"
        );
    }
}
