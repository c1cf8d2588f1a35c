//! `PoolBuilder::idle_poll`: idle workers keep searching for the budget
//! after their last job, then park; an endless budget still lets the pool
//! drop. Parks are read from the stats (a park is counted as a worker
//! blocks). In a file of its own, so that no other test's pools share the
//! CPUs with the polling workers.

mod common;

use common::{blocked, wait_all_parked, watchdog};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::Pool;

#[test]
fn workers_poll_for_the_budget_then_park() {
    let budget = Duration::from_secs(1);
    // Every worker's polling starts after this reading: at its start, then
    // at its every job.
    let before = Instant::now();
    let pool = Pool::builder()
        .threads(2)
        .idle_poll(budget)
        .build()
        .unwrap();
    let input: Vec<u64> = (0..64).collect();
    for _ in 0..3 {
        let out = pool.options().chunk_size(1).map(&input, |x| x * 2);
        assert_eq!(out[63], 126);
        thread::sleep(Duration::from_millis(20));
    }
    let stats = pool.stats();
    // Only meaningful while the budget has not passed since `before`; a
    // machine that stalled this thread for a second makes it say nothing.
    if before.elapsed() < budget {
        assert_eq!(
            stats.parks, 0,
            "a worker parked within its idle-polling budget: {stats:?}"
        );
    } else {
        eprintln!("the checks took longer than the budget: the no-park check was skipped");
    }
    let parked = wait_all_parked(&pool);
    assert!(
        before.elapsed() >= budget,
        "every worker parked {:?} after the pool was built, before its budget of {budget:?} \
         had passed: {parked:?}",
        before.elapsed()
    );
    assert_eq!(blocked(&parked), 2);
}

#[test]
fn an_endless_budget_still_lets_the_pool_drop() {
    watchdog(30, || {
        let pool = Pool::builder()
            .threads(2)
            .idle_poll(Duration::MAX)
            .build()
            .unwrap();
        let out = pool
            .options()
            .chunk_size(1)
            .map(&[1u32, 2, 3, 4], |x| x + 1);
        assert_eq!(out, [2, 3, 4, 5]);
        thread::sleep(Duration::from_millis(50));
        let stats = pool.stats();
        assert_eq!(
            stats.parks, 0,
            "a worker parked with an endless budget: {stats:?}"
        );
        // Dropping joins the workers, which must leave their polling.
        drop(pool);
    });
}
