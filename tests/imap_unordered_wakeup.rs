//! Regression test: `imap_unordered` lost a wake-up when one consumer thread
//! waited on it many times in a row.
//!
//! The completion queue kept one waiter slot for successive waits, and a
//! completing batch *took* the registration when it woke the consumer. A
//! completion whose result the consumer had already collected (woken early by
//! a stale park token) could then take the registration of the *next* wait,
//! and the completion that wait needed found the slot empty: the consumer
//! parked forever. It hung within a few hundred calls in release builds.

use std::sync::mpsc;
use std::time::Duration;

#[test]
fn many_unordered_maps_on_one_consumer_thread_never_hang() {
    let rounds = if cfg!(debug_assertions) { 150 } else { 1_500 };
    let (done_tx, done_rx) = mpsc::channel();
    let consumer = std::thread::spawn(move || {
        let pool = stealpool::Pool::new(2).expect("a 2-thread pool");
        let n: u64 = 20_000;
        for round in 0..rounds {
            let sum: u64 = pool.imap_unordered(0..n, |x| x * 2).sum();
            assert_eq!(sum, n * (n - 1), "round {round}");
        }
        done_tx.send(()).expect("the test thread waits");
    });
    match done_rx.recv_timeout(Duration::from_secs(240)) {
        Ok(()) => consumer.join().expect("the consumer finished"),
        Err(_) => panic!("imap_unordered hung: a completion's wake-up was lost"),
    }
}
