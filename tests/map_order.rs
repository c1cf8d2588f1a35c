//! Results come back in input order: `map`, a fixed-chunk `map` (every chunk size
//! from 1 to twice the input) and `for_each` (every index exactly once), over
//! input sizes from 0 to 10 000 on 1-, 2- and 4-thread pools; chunks of
//! a fixed-chunk `map` run on one thread each, in order; workers really take part
//! when items are expensive; zero-sized inputs and results work. Every test
//! runs under a watchdog, so a hang fails it.

mod common;

use common::{sample_sizes, spin, watchdog};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};
use stealpool::Pool;

/// A hang fails the test instead of waiting for CI's global timeout.
const WATCHDOG_SECS: u64 = 60;

const THREADS: [usize; 3] = [1, 2, 4];

/// The value the tests map index `i` to.
fn image(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xabcd
}

fn check_image(out: &[u64], len: usize, what: &str) {
    assert_eq!(out.len(), len, "{what}: wrong length");
    if let Some(bad) = (0..len).find(|&i| out[i] != image(i as u64)) {
        panic!(
            "{what}: result {bad} is {:#x}, expected {:#x}",
            out[bad],
            image(bad as u64)
        );
    }
}

/// The chunk sizes to try for an input of `len` items.
fn chunk_sizes(len: usize) -> Vec<usize> {
    if len == 0 {
        vec![1]
    } else {
        vec![1, 7, len, 2 * len]
    }
}

#[test]
fn map_preserves_order() {
    watchdog(WATCHDOG_SECS, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for len in sample_sizes() {
                let input: Vec<u64> = (0..len as u64).collect();
                let out = pool.map(&input, |&i| image(i));
                check_image(&out, len, &format!("map, {threads} threads, len {len}"));
            }
        }
    });
}

#[test]
fn map_preserves_order_of_heap_results() {
    watchdog(WATCHDOG_SECS, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for len in [0, 1, 65, 4097] {
                let input: Vec<usize> = (0..len).collect();
                let out: Vec<String> = pool.map(&input, |i| format!("item {i}"));
                assert_eq!(out.len(), len);
                for (i, s) in out.iter().enumerate() {
                    assert_eq!(*s, format!("item {i}"), "{threads} threads, len {len}");
                }
            }
        }
    });
}

#[test]
fn fixed_chunks_preserve_order() {
    watchdog(WATCHDOG_SECS, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for len in sample_sizes() {
                let input: Vec<u64> = (0..len as u64).collect();
                for chunk in chunk_sizes(len) {
                    let out = pool.options().chunk_size(chunk).map(&input, |&i| image(i));
                    check_image(
                        &out,
                        len,
                        &format!("chunk_size, {threads} threads, len {len}, chunk {chunk}"),
                    );
                }
            }
        }
    });
}

#[test]
fn fixed_chunks_accept_a_huge_chunk_size() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let input: Vec<u64> = (0..100).collect();
        for chunk in [usize::MAX / 4, usize::MAX / 2, usize::MAX] {
            let out = pool.options().chunk_size(chunk).map(&input, |&i| image(i));
            check_image(&out, 100, &format!("chunk {chunk}"));
        }
    });
}

#[test]
#[should_panic(expected = "chunk_size")]
fn fixed_chunks_refuse_chunk_size_zero() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let _ = pool.options().chunk_size(0).map(&[1, 2, 3], |x| x + 1);
    });
}

#[test]
fn for_each_visits_every_index_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for len in sample_sizes() {
                let visits: Vec<AtomicU32> = (0..len).map(|_| AtomicU32::new(0)).collect();
                let input: Vec<usize> = (0..len).collect();
                pool.for_each(&input, |&i| {
                    visits[i].fetch_add(1, Ordering::Relaxed);
                });
                for (i, count) in visits.iter().enumerate() {
                    assert_eq!(
                        count.load(Ordering::Relaxed),
                        1,
                        "for_each, {threads} threads, len {len}: index {i}"
                    );
                }
            }
        }
    });
}

/// Items of about a microsecond each, so that the caller promotes the call
/// and the workers have something to take.
#[test]
fn order_holds_with_expensive_items() {
    watchdog(WATCHDOG_SECS, || {
        let item = Duration::from_micros(1);
        for threads in [2, 4] {
            let pool = Pool::new(threads).unwrap();
            for len in [1000, 4097] {
                let input: Vec<u64> = (0..len as u64).collect();
                let out = pool.map(&input, |&i| {
                    spin(item);
                    image(i)
                });
                check_image(&out, len, &format!("expensive map, {threads} threads"));
                for chunk in [1, 7, 100] {
                    let out = pool.options().chunk_size(chunk).map(&input, |&i| {
                        spin(item);
                        image(i)
                    });
                    check_image(&out, len, &format!("expensive chunk_size {chunk}"));
                }
                let visits: Vec<AtomicU32> = (0..len).map(|_| AtomicU32::new(0)).collect();
                pool.for_each(&input, |&i| {
                    spin(item);
                    visits[i as usize].fetch_add(1, Ordering::Relaxed);
                });
                assert!(visits.iter().all(|v| v.load(Ordering::Relaxed) == 1));
            }
        }
    });
}

/// A 20 000-item map of ~1 µs items on a 2-thread pool gets help from the
/// workers: some items run on a thread other than the caller, and the stats
/// count the workers' jobs. Whether a worker gets there in time depends on
/// the OS scheduler, so the call is repeated (for up to 20 s) until one does.
#[test]
fn workers_help_with_expensive_map() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let input: Vec<u64> = (0..20_000).collect();
        let caller = thread::current().id();
        let start = Instant::now();
        let mut attempts = 0;
        let helped = loop {
            attempts += 1;
            let out = pool.map(&input, |&i| {
                spin(Duration::from_micros(1));
                (image(i), thread::current().id())
            });
            let values: Vec<u64> = out.iter().map(|&(v, _)| v).collect();
            check_image(&values, input.len(), "expensive map");
            let others = out.iter().filter(|&&(_, id)| id != caller).count();
            if others > 0 {
                break true;
            }
            if start.elapsed() > Duration::from_secs(20) {
                break false;
            }
        };
        assert!(
            helped,
            "no item ran on a worker in {attempts} calls of 20 000 items of 1 µs"
        );
        let stats = pool.stats();
        assert!(
            stats.jobs_run > 0,
            "items ran on a worker, but stats count no job: {stats:?}"
        );
    });
}

thread_local! {
    /// How many items this thread has run in the chunk test.
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

/// Each chunk of a fixed-chunk `map` runs on one thread, its items in increasing
/// order: every item records its thread and that thread's running count.
#[test]
fn fixed_chunks_each_run_on_one_thread_in_order() {
    watchdog(WATCHDOG_SECS, || {
        let len = 1000;
        let input: Vec<usize> = (0..len).collect();
        let mut parallel_seen = false;
        for threads in [2, 4] {
            let pool = Pool::new(threads).unwrap();
            for chunk in [1, 7, 64, 333, len] {
                let start = Instant::now();
                loop {
                    let out: Vec<(ThreadId, u64)> =
                        pool.options().chunk_size(chunk).map(&input, |_| {
                            spin(Duration::from_micros(2));
                            let seq = SEQ.with(|s| {
                                s.set(s.get() + 1);
                                s.get()
                            });
                            (thread::current().id(), seq)
                        });
                    assert_eq!(out.len(), len);
                    for (c, items) in out.chunks(chunk).enumerate() {
                        let (id, _) = items[0];
                        assert!(
                            items.iter().all(|&(t, _)| t == id),
                            "{threads} threads, chunk size {chunk}: \
                             chunk {c} ran on several threads"
                        );
                        assert!(
                            items.windows(2).all(|w| w[0].1 < w[1].1),
                            "{threads} threads, chunk size {chunk}: chunk {c} ran out of order"
                        );
                    }
                    let distinct: HashSet<ThreadId> = out.iter().map(|&(t, _)| t).collect();
                    if distinct.len() > 1 {
                        parallel_seen = true;
                    }
                    // Retry the small chunk sizes until a call really ran on
                    // several threads (timing-dependent, hence the loop).
                    if parallel_seen || chunk == len || start.elapsed() > Duration::from_secs(5) {
                        break;
                    }
                }
            }
        }
        assert!(
            parallel_seen,
            "no fixed-chunk call ran on more than one thread"
        );
    });
}

#[test]
fn zero_sized_items_and_results() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            for len in [0, 1, 1_000_000] {
                let units = vec![(); len];
                let out: Vec<()> = pool.map(&units, |&()| ());
                assert_eq!(out.len(), len);

                let out: Vec<()> = pool.options().chunk_size(4096).map(&units, |&()| ());
                assert_eq!(out.len(), len);

                let count = AtomicUsize::new(0);
                pool.for_each(&units, |&()| {
                    count.fetch_add(1, Ordering::Relaxed);
                });
                assert_eq!(count.load(Ordering::Relaxed), len);

                let out: Result<Vec<()>, ()> = pool.try_map(&units, |&()| Ok(()));
                assert_eq!(out.map(|v| v.len()), Ok(len));

                // Zero-sized input, sized results (the count of units seen so
                // far is not an index, so only the total is checked)...
                let ones: Vec<u8> = pool.map(&units, |&()| 1);
                assert_eq!(ones.len(), len);
                assert!(ones.iter().all(|&x| x == 1));

                // ...and sized input, zero-sized results.
                let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let seen = AtomicUsize::new(0);
                let out: Vec<()> = pool.map(&bytes, |&b| {
                    seen.fetch_add(usize::from(b), Ordering::Relaxed);
                });
                assert_eq!(out.len(), len);
                let expected: usize = bytes.iter().map(|&b| usize::from(b)).sum();
                assert_eq!(seen.load(Ordering::Relaxed), expected);
            }
        }
    });
}

/// At most `threads()` threads work on one call, the caller included (so a
/// 1-thread pool runs an outside call on the caller alone).
#[test]
fn a_call_uses_at_most_threads_threads() {
    watchdog(WATCHDOG_SECS, || {
        let caller = thread::current().id();
        let input: Vec<u64> = (0..3000).collect();
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for round in 0..3 {
                let f = |&i: &u64| {
                    spin(Duration::from_micros(2));
                    (image(i), thread::current().id())
                };
                let out = if round == 0 {
                    pool.map(&input, f)
                } else {
                    pool.options()
                        .chunk_size(1 + 10 * (round - 1))
                        .map(&input, f)
                };
                let values: Vec<u64> = out.iter().map(|&(v, _)| v).collect();
                check_image(&values, input.len(), "map recording threads");
                let distinct: HashSet<ThreadId> = out.iter().map(|&(_, t)| t).collect();
                assert!(
                    distinct.len() <= threads,
                    "{threads}-thread pool: one call ran on {} threads",
                    distinct.len()
                );
                if threads == 1 {
                    assert!(
                        distinct.contains(&caller),
                        "a 1-thread pool ran an outside call off the caller"
                    );
                }
            }
        }
    });
}
