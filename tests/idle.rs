//! An idle pool parks its workers: after a burst of work, both workers of a
//! 2-thread pool are blocked by the stats (parks - wake-ups = 2), and over
//! the next second of idleness they use (almost) no CPU time and stay
//! blocked: no wake-up and no new park is counted. In a file of its own, so
//! that no other test runs in this process meanwhile.

mod common;

use common::{
    blocked, cpu_ns, spin, stat_ns, thread_cpu_ns, unique_prefix, wait_all_parked,
    wait_threads_named,
};
use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use stealpool::Pool;

#[test]
fn idle_pool_parks_its_workers() {
    let prefix = unique_prefix("idle");
    let name = prefix.clone();
    let pool = Pool::builder()
        .threads(2)
        .thread_name(move |i| format!("{name}{i}"))
        .build()
        .unwrap();
    let workers = wait_threads_named(&prefix, 2, Duration::from_secs(5));
    assert_eq!(workers.len(), 2, "the pool's workers: {workers:?}");

    // A burst of about 20 ms of work that the workers take part in.
    let input: Vec<u64> = (0..2000).collect();
    let mut ran_on = HashSet::new();
    for _ in 0..5 {
        let out = pool.options().chunk_size(50).map(&input, |&x| {
            spin(Duration::from_micros(2));
            (x, thread::current().name().map(str::to_owned))
        });
        for (i, (x, name)) in out.into_iter().enumerate() {
            assert_eq!(x, i as u64);
            ran_on.insert(name);
        }
    }
    let workers_used = ran_on
        .iter()
        .filter(|n| n.as_deref().is_some_and(|n| n.starts_with(&prefix)))
        .count();
    eprintln!("idle: the burst ran on {workers_used} of the 2 workers");

    // The workers park after the burst: both are blocked, by the stats,
    // before the idle second starts (see `common::blocked`).
    let before_stats = wait_all_parked(&pool);
    let before: Vec<u64> = workers.iter().map(|&(tid, _)| cpu_ns(tid)).collect();
    thread::sleep(Duration::from_secs(1));
    let after: Vec<u64> = workers.iter().map(|&(tid, _)| cpu_ns(tid)).collect();
    let stats = pool.stats();

    let per_worker: Vec<u64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    let total: u64 = per_worker.iter().sum();
    eprintln!(
        "idle: the 2 idle workers used {:.3} ms of CPU over 1 s ({:?} ns each); \
         stats before the idle second {before_stats:?}, after {stats:?}",
        total as f64 / 1e6,
        per_worker,
    );
    assert!(
        total < 50_000_000,
        "idle workers used {:.3} ms of CPU in 1 s",
        total as f64 / 1e6
    );
    // They stayed parked through the idle second: both still blocked, and
    // no worker was woken (nor parked anew, as one that woke up by itself
    // and went back to sleep would have been counted).
    assert_eq!(
        (blocked(&stats), stats.parks, stats.wakeups),
        (2, before_stats.parks, before_stats.wakeups),
        "(blocked, parks, wake-ups) over the idle second went from \
         {before_stats:?} to {stats:?}"
    );

    // A control, to show that the measurement sees CPU time: a thread of
    // our own that spins for 50 ms of its own CPU time (by its CPU clock).
    let control_name = unique_prefix("spin");
    let (go, gone) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let control = thread::Builder::new()
        .name(control_name.clone())
        .spawn(move || {
            gone.recv().unwrap();
            let start = thread_cpu_ns();
            let wall = Instant::now();
            while thread_cpu_ns() - start < 50_000_000 && wall.elapsed() < Duration::from_secs(30) {
                std::hint::spin_loop();
            }
            done.send(()).unwrap();
            // Stay alive until the CPU time has been read.
            let _ = released.recv();
        })
        .unwrap();
    let control_tid = wait_threads_named(&control_name, 1, Duration::from_secs(5))
        .first()
        .map(|&(tid, _)| tid)
        .expect("the control thread is not listed in /proc/self/task");
    let control_before = (cpu_ns(control_tid), stat_ns(control_tid));
    go.send(()).unwrap();
    finished.recv().unwrap();
    let control_after = (cpu_ns(control_tid), stat_ns(control_tid));
    release.send(()).unwrap();
    control.join().unwrap();
    let used = control_after.0 - control_before.0;
    let used_by_stat = control_after.1 - control_before.1;
    eprintln!(
        "idle: control thread spinning 50 ms of CPU measured {:.3} ms ({:.3} ms by its stat)",
        used as f64 / 1e6,
        used_by_stat as f64 / 1e6
    );
    assert!(
        used >= 40_000_000 && used_by_stat >= 20_000_000,
        "the CPU time measurement missed a spinning thread: {used} ns, {used_by_stat} ns"
    );
    // The pool still works after its nap.
    assert_eq!(pool.map(&[1, 2, 3], |x| x * 3), [3, 6, 9]);
}
