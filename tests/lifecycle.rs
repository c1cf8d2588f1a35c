//! Dropping pools: a pool dropped right after its calls (with helper tickets
//! possibly still queued) returns promptly and leaves no thread behind, also
//! over 100 build/drop cycles and when dropped on another thread. And the
//! stats counters count the events they name (parks and wake-ups, searches
//! that found nothing, steals from the injector and from a worker, jobs),
//! and count the parks of blocked workers.

mod common;

use common::{
    cpu_ns, spin, threads_left_after, unique_prefix, wait_all_parked, wait_threads_named, watchdog,
};
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool};

const WATCHDOG_SECS: u64 = 60;
const GONE_WITHIN: Duration = Duration::from_secs(5);

fn named_pool(threads: usize, prefix: &str) -> Pool {
    let prefix = prefix.to_owned();
    Pool::builder()
        .threads(threads)
        .thread_name(move |i| format!("{prefix}{i}"))
        .build()
        .unwrap()
}

/// Calls that leave helper tickets queued (promoted `map`s, a fixed-chunk `map`
/// offering chunks at once), then an immediate drop.
fn busy_calls(pool: &Pool) {
    let input: Vec<u64> = (0..2000).collect();
    let out = pool.map(&input, |&x| {
        spin(Duration::from_nanos(500));
        x + 1
    });
    assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 + 1));
    let out = pool.options().chunk_size(16).map(&input, |&x| x * 2);
    assert!(out.iter().enumerate().all(|(i, &y)| y == 2 * i as u64));
}

#[test]
fn drop_right_after_calls_is_prompt_and_joins_the_workers() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let prefix = unique_prefix("dr");
            let pool = named_pool(threads, &prefix);
            assert_eq!(
                wait_threads_named(&prefix, threads, GONE_WITHIN).len(),
                threads
            );
            busy_calls(&pool);
            let start = Instant::now();
            drop(pool);
            let took = start.elapsed();
            assert!(
                took < Duration::from_secs(5),
                "dropping a {threads}-thread pool took {took:?}"
            );
            let left = threads_left_after(&prefix, GONE_WITHIN);
            assert!(left.is_empty(), "threads left after drop: {left:?}");
        }
    });
}

#[test]
fn drop_of_an_idle_pool_is_prompt() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("di");
        let pool = named_pool(4, &prefix);
        // Let the workers go to sleep.
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        drop(pool);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "drop took {took:?}");
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(left.is_empty(), "threads left after drop: {left:?}");
    });
}

#[test]
fn hundred_build_drop_cycles_leak_no_thread() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("cy");
        let input: Vec<u64> = (0..500).collect();
        for cycle in 0..100u64 {
            let pool = named_pool(4, &prefix);
            let out = if cycle % 2 == 0 {
                pool.map(&input, |&x| {
                    spin(Duration::from_nanos(200));
                    x + cycle
                })
            } else {
                pool.options().chunk_size(10).map(&input, |&x| x + cycle)
            };
            assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 + cycle));
            drop(pool);
        }
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(
            left.is_empty(),
            "{} threads left after 100 build/drop cycles: {left:?}",
            left.len()
        );
    });
}

/// A pool built on one thread, used by another and dropped by a third.
#[test]
fn pool_moved_to_and_dropped_on_another_thread() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("mv");
        let pool = named_pool(2, &prefix);
        let pool = std::thread::spawn(move || {
            busy_calls(&pool);
            pool
        })
        .join()
        .unwrap();
        std::thread::spawn(move || drop(pool)).join().unwrap();
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(left.is_empty(), "threads left after drop: {left:?}");
    });
}

/// The counters of `stats` count the events they name, for known work on a
/// 2-thread pool whose workers are parked before each step: parks and
/// wake-ups add up to the workers blocked; a worker parks only after a
/// search that found nothing; a worker that helps an outside call was woken
/// and took the call's ticket from the injector, and ran it as a job; one
/// that helps a call made on the other worker stole the ticket from that
/// worker's deque. Whether a worker gets to a call in time depends on the OS
/// scheduler, so each call is repeated (for up to 20 s) until one does.
#[test]
fn stats_count_the_events_they_name() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let fresh = wait_all_parked(&pool);
        assert_eq!(fresh.jobs_run, 0, "{fresh:?}");
        let input: Vec<u64> = (0..20_000).collect();
        let item = |&x: &u64| {
            spin(Duration::from_micros(1));
            (x, current_thread_index())
        };

        // A call from outside the pool.
        let start = Instant::now();
        loop {
            let before = wait_all_parked(&pool);
            let out = pool.map(&input, item);
            let after = pool.stats();
            assert!(out.iter().enumerate().all(|(i, &(x, _))| x == i as u64));
            if out.iter().any(|&(_, worker)| worker.is_some()) {
                assert!(
                    after.wakeups > before.wakeups,
                    "a parked worker ran items, but no wake-up was counted: \
                     {before:?} -> {after:?}"
                );
                assert!(
                    after.injector_steals > before.injector_steals,
                    "a worker ran items of an outside call, but no steal from \
                     the injector was counted: {before:?} -> {after:?}"
                );
                assert!(
                    after.jobs_run > before.jobs_run,
                    "a worker ran items, but no job was counted: {before:?} -> {after:?}"
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no worker helped an outside call of 20 000 items of 1 µs in 20 s"
            );
        }

        // The same call made on a worker: its ticket goes on that worker's
        // deque, where the other worker can only steal it.
        let start = Instant::now();
        loop {
            let before = wait_all_parked(&pool);
            let (caller, out) = pool.apply(|| (current_thread_index(), pool.map(&input, item)));
            let after = pool.stats();
            assert!(caller.is_some());
            assert!(out.iter().enumerate().all(|(i, &(x, _))| x == i as u64));
            if out.iter().any(|&(_, worker)| worker != caller) {
                assert!(
                    after.worker_steals > before.worker_steals,
                    "the other worker helped a call made on worker {caller:?}, \
                     but no steal from a worker was counted: {before:?} -> {after:?}"
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no other worker helped a call made on a worker in 20 s"
            );
        }

        // Idle again. Every park followed a search that found nothing, and
        // every job run was taken from some queue first.
        let end = wait_all_parked(&pool);
        assert!(
            end.failed_steals >= end.parks,
            "{} parks but only {} searches that found nothing: {end:?}",
            end.parks,
            end.failed_steals
        );
        assert!(
            end.jobs_run <= end.local_pops + end.injector_steals + end.worker_steals,
            "more jobs run than taken from the queues: {end:?}"
        );
    });
}

/// A fresh pool has run no job; and tiny calls, over before the caller's
/// solo start ends, do not wake the workers (`jobs_run` counts only jobs,
/// never the caller's own work). A call can still be promoted if its thread
/// is preempted mid-call, so the bound allows for a few.
#[test]
fn tiny_calls_run_no_job() {
    let pool = Pool::new(2).unwrap();
    let before = pool.stats();
    assert_eq!(before.jobs_run, 0, "{before:?}");
    assert_eq!(before.local_pops, 0);
    assert_eq!(before.injector_steals, 0);
    assert_eq!(before.worker_steals, 0);
    for _ in 0..1000 {
        let out = pool.map(&[1, 2, 3], |x| x + 1);
        assert_eq!(out, [2, 3, 4]);
    }
    let after = pool.stats();
    assert!(
        after.jobs_run < 200,
        "1000 tiny maps woke the workers: {before:?} -> {after:?}"
    );
}

/// `Stats::parks` counts the "times a worker blocked in the sleep protocol":
/// once both workers of a fresh pool are blocked (their CPU time stands
/// still for 100 ms), it counts at least 2.
///
/// (It guards a fixed bug: `parks` was once added to only after
/// `Sleep::sleep` returned, that is after the wake-up, so the workers blocked
/// right now were missing from the count and a fresh idle pool reported
/// `parks: 0`.)
#[test]
fn blocked_workers_are_counted_in_parks() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("pk");
        let pool = named_pool(2, &prefix);
        let workers = wait_threads_named(&prefix, 2, GONE_WITHIN);
        assert_eq!(workers.len(), 2, "{workers:?}");
        let start = Instant::now();
        let blocked = loop {
            let before: Vec<u64> = workers.iter().map(|&(tid, _)| cpu_ns(tid)).collect();
            std::thread::sleep(Duration::from_millis(100));
            let after: Vec<u64> = workers.iter().map(|&(tid, _)| cpu_ns(tid)).collect();
            if before == after {
                break true;
            }
            if start.elapsed() > Duration::from_secs(20) {
                break false;
            }
        };
        assert!(
            blocked,
            "the workers of an idle pool never stopped using CPU"
        );
        let stats = pool.stats();
        assert!(
            stats.parks >= 2,
            "both workers are blocked, yet parks is {}: {stats:?}",
            stats.parks
        );
    });
}

/// The engagement figures of `stats`: a call that blocks its first item until
/// another thread has started an item is helped, by exactly the one other
/// worker of a 2-thread pool, and the figures say so: one call asked, one
/// was helped, one helper started, after a time no shorter than zero and the
/// same for the first and the last helper. A call too short to ask for help
/// adds nothing.
#[test]
fn stats_report_how_soon_helpers_start() {
    use std::sync::atomic::{AtomicBool, Ordering};
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let before = pool.stats();
        assert_eq!(pool.map(&[1u8], |x| x + 1), [2]);
        let tiny = pool.stats();
        assert_eq!(tiny.calls_asking_help, before.calls_asking_help, "{tiny:?}");

        let other_started = AtomicBool::new(false);
        let input: Vec<usize> = (0..64).collect();
        let caller = std::thread::current().id();
        let out = pool.options().chunk_size(1).map(&input, |&i| {
            if std::thread::current().id() != caller {
                other_started.store(true, Ordering::SeqCst);
            } else if i == 0 {
                // Wait for a helper (the watchdog catches one that never comes).
                while !other_started.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            i
        });
        assert_eq!(out, input);
        let after = pool.stats();
        assert_eq!(
            after.calls_asking_help - tiny.calls_asking_help,
            1,
            "{after:?}"
        );
        assert_eq!(after.calls_helped - tiny.calls_helped, 1, "{after:?}");
        assert_eq!(after.helpers_started - tiny.helpers_started, 1, "{after:?}");
        let first = after.first_helper_nanos - tiny.first_helper_nanos;
        let last = after.last_helper_nanos - tiny.last_helper_nanos;
        assert_eq!(
            first, last,
            "one helper: its start is the first and the last"
        );
        assert!(first < WATCHDOG_SECS * 1_000_000_000, "{after:?}");
    });
}
