//! The streaming workload: 1M items of ~200 ns, produced lazily by an
//! iterator and consumed in input order by a fold, never collected.
//!
//! Systems:
//!
//! - `seq`: `input.map(f)` folded on the caller;
//! - `stealpool`: [`Pool::imap`](stealpool::Pool::imap) with its default
//!   window (32 items per thread, growing for cheap items like these up to
//!   [`MAX_WINDOW_PER_THREAD`] × threads);
//! - `channel`: the natural version with `std` alone, shaped like `imap`:
//!   `threads` worker threads spawned per call share one
//!   `std::sync::mpsc::sync_channel` of `(index, item)` through
//!   `Arc<Mutex<Receiver>>` (the thread pool of the Rust book), send
//!   `(index, result)` back on a second channel, and the caller keeps the
//!   largest window `imap`'s default can reach ([`MAX_WINDOW_PER_THREAD`] ×
//!   threads; with 32 × threads it took 1.8 × longer): it sends items while
//!   fewer than `window` are in flight,
//!   then receives results, reorders them in a `BinaryHeap` and consumes the
//!   next one in input order. Same thread count (the caller plus `threads`
//!   workers) and the same bound on memory as `imap`; the difference is the
//!   mechanism (one message per item and a shared receiver, against batched
//!   tasks on work-stealing deques).

use super::{
    checksum_iter, checksum_step, spin, splitmix64, Calibration, Kind, Runners, System, Workload,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use stealpool::MAX_WINDOW_PER_THREAD;

/// The input of a stream workload: `len` items, item `i` a spin of `iters`
/// steps seeded by `i`.
pub struct Body {
    /// Items per call.
    pub len: u64,
    /// Spin steps per item.
    pub iters: u32,
}

/// The per-item work.
#[inline]
fn work(i: u64, iters: u32) -> u64 {
    let mut state = i;
    spin(splitmix64(&mut state), iters)
}

impl Body {
    /// Items per call.
    pub fn items(&self) -> usize {
        self.len as usize
    }

    /// Makes one call with `system`: the checksum of every result, in input
    /// order.
    ///
    /// # Panics
    ///
    /// If `system` is not `Seq`, `Stealpool` or `Channel`.
    pub fn call(&self, runners: &Runners, system: System) -> u64 {
        let iters = self.iters;
        let input = 0..self.len;
        match system {
            System::Seq => checksum_iter(input.map(|i| work(i, iters))),
            System::Stealpool => checksum_iter(runners.pool.imap(input, move |i| work(i, iters))),
            System::Channel => {
                let window = MAX_WINDOW_PER_THREAD * runners.threads;
                channel_fold(runners.threads, window, input, |i| work(i, iters))
            }
            other => panic!("{} does not run stream workloads", other.name()),
        }
    }
}

/// Maps `f` over `input` with `threads` worker threads fed through channels,
/// at most `window` items in flight, and returns the [`checksum`] of the
/// results in input order (see the module documentation).
///
/// [`checksum`]: super::checksum
pub fn channel_fold<I, F>(threads: usize, window: usize, input: I, f: F) -> u64
where
    I: IntoIterator<Item = u64>,
    F: Fn(u64) -> u64 + Sync,
{
    let window = window.max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let (item_tx, item_rx) = sync_channel::<(usize, u64)>(window);
        let (result_tx, result_rx) = sync_channel::<(usize, u64)>(window);
        let item_rx: Arc<Mutex<Receiver<(usize, u64)>>> = Arc::new(Mutex::new(item_rx));
        for _ in 0..threads.max(1) {
            let item_rx = Arc::clone(&item_rx);
            let result_tx = result_tx.clone();
            scope.spawn(move || loop {
                // The lock is held while waiting, as in the Rust book's pool:
                // one worker waits on the channel, the others on the mutex.
                let message = item_rx
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .recv();
                match message {
                    Ok((index, item)) => {
                        if result_tx.send((index, f(item))).is_err() {
                            return;
                        }
                    }
                    Err(_) => return, // the caller hung up: no more items
                }
            });
        }
        drop(result_tx);

        let mut input = input.into_iter();
        let mut input_done = false;
        let mut sent = 0usize;
        let mut next = 0usize;
        let mut pending: BinaryHeap<Reverse<(usize, u64)>> = BinaryHeap::new();
        let mut hash = checksum_iter(std::iter::empty());
        loop {
            while !input_done && sent - next < window {
                match input.next() {
                    Some(item) => {
                        item_tx
                            .send((sent, item))
                            .expect("channel: every worker hung up");
                        sent += 1;
                    }
                    None => input_done = true,
                }
            }
            if next == sent {
                break;
            }
            // Wait for result `next`, keeping the ones that overtook it.
            while !matches!(pending.peek(), Some(Reverse((i, _))) if *i == next) {
                let result = result_rx.recv().expect("channel: a worker hung up");
                pending.push(Reverse(result));
            }
            let Some(Reverse((_, value))) = pending.pop() else {
                unreachable!("the loop above stops at a pending result");
            };
            hash = checksum_step(hash, value);
            next += 1;
        }
        drop(item_tx); // the workers see the channel close and return
        hash
    })
}

/// Nanoseconds per item of the stream.
const ITEM_NS: f64 = 200.0;

/// Builds the stream workload called `name`, or `None` if there is none.
pub fn workload(name: &str, calibration: &Calibration) -> Option<Workload> {
    if name != "imap-stream" {
        return None;
    }
    Some(Workload {
        name: "imap-stream",
        description: "1M items of ~200 ns from a lazy iterator, in order, folded (not collected)"
            .to_owned(),
        kind: Kind::Stream(Body {
            len: 1_000_000,
            iters: calibration.iters(ITEM_NS),
        }),
        calls_per_sample: 1,
        pause: None,
        tick: None,
    })
}
