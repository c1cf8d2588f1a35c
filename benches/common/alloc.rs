//! A global allocator that can measure the peak of live heap bytes while a
//! closure runs: how `compare` shows that a stream's memory stays bounded.
//!
//! Counting is off except inside [`peak_growth`] (which the runner calls
//! only on untimed check passes), so a timed call pays one relaxed load per
//! allocation. A binary opts in with
//! `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Whether allocations are being counted.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live bytes allocated minus freed while counting (may go negative when
/// memory allocated earlier is freed).
static LIVE: AtomicI64 = AtomicI64::new(0);
/// The highest value of `LIVE` since counting started.
static PEAK: AtomicI64 = AtomicI64::new(0);
/// Whether this binary installed the allocator (a counted allocation sets it).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting live bytes while [`peak_growth`] runs.
pub struct CountingAlloc;

impl CountingAlloc {
    #[inline]
    fn count(&self, delta: i64) {
        // Relaxed everywhere: these are statistics, read after the measured
        // closure (and the threads it joined) finished.
        if COUNTING.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
            let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` unchanged; the counting touches
// only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count(layout.size() as i64);
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count(layout.size() as i64);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.count(-(layout.size() as i64));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count(new_size as i64 - layout.size() as i64);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the peak growth of live heap bytes
/// during it (by any thread), or `None` if the binary does not use
/// [`CountingAlloc`] (or nothing allocated).
pub fn peak_growth<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let result = f();
    COUNTING.store(false, Ordering::SeqCst);
    let peak = INSTALLED
        .load(Ordering::Relaxed)
        .then(|| PEAK.load(Ordering::Relaxed).max(0) as u64);
    (result, peak)
}
