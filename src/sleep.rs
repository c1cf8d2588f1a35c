//! The sleep/wake protocol: idle workers spin briefly, then sleep on their own
//! slot; whoever publishes work wakes at most one of them.
//!
//! `docs/design.md` ("Sleeping and waking") gives the full argument; in short:
//!
//! * A worker is **busy**, **searching** (awake, looking for work) or
//!   **sleeping** (blocked on its slot's condition variable). `counters` holds
//!   how many are searching and how many sleeping, packed in one word so that a
//!   publisher reads both at once.
//! * A **publisher** (a push of a job, a latch set, shutdown) first makes its
//!   news visible, then runs `fence(SeqCst)`, then reads `counters` (or a
//!   worker's `sleeping` flag) to decide whom to wake.
//! * A worker **going to sleep** first announces it (`sleeping` flag and
//!   counter), then runs `fence(SeqCst)`, then checks once more for news (its
//!   latch, the queues). Only if there is none does it block.
//!
//! The two fences are totally ordered. If the publisher's comes first, the
//! sleeper's re-check sees the news; if the sleeper's comes first, the
//! publisher sees the sleeper and wakes it. Either way nothing is lost, and no
//! correctness depends on a timeout.
//!
//! Publishers skip the wake-up when some worker is already searching: that
//! worker will find the job. When the last searcher stops searching it wakes a
//! sleeper if work is left, so a burst of jobs recruits workers one at a time,
//! and only as many as there are jobs for.

use crate::stats::StatCounter;
use crate::sync::Ordering;
use crate::sync::{fence, lock, wait, AtomicBool, AtomicUsize, Condvar, Mutex};
use crossbeam_utils::CachePadded;

/// Bits of `counters` per field: the low half counts sleeping workers, the
/// high half searching ones.
const HALF: u32 = usize::BITS / 2;
const ONE_SLEEPING: usize = 1;
const ONE_SEARCHING: usize = 1 << HALF;
const FIELD_MASK: usize = (1 << HALF) - 1;

/// The most workers one pool may have, so that each counter fits its field.
pub(crate) const MAX_THREADS: usize = FIELD_MASK;

fn sleeping_of(counters: usize) -> usize {
    counters & FIELD_MASK
}

fn searching_of(counters: usize) -> usize {
    counters >> HALF
}

/// Where one worker sleeps.
struct Slot {
    /// True while the worker is (about to be) blocked on `condvar`. Written
    /// only with `mutex` held; read without it by publishers that look for a
    /// sleeper.
    sleeping: AtomicBool,
    mutex: Mutex<()>,
    condvar: Condvar,
    /// Times this slot's worker blocked (it is the only writer).
    parks: StatCounter,
}

/// The sleep state of one pool.
pub(crate) struct Sleep {
    counters: CachePadded<AtomicUsize>,
    slots: Box<[CachePadded<Slot>]>,
    /// Where `wake_one` starts looking, rotated so that wake-ups spread.
    next_wake: AtomicUsize,
    /// Wake-ups issued, for `Pool::stats`.
    wakeups: StatCounter,
}

impl Sleep {
    pub(crate) fn new(threads: usize) -> Sleep {
        let slots = (0..threads)
            .map(|_| {
                CachePadded::new(Slot {
                    sleeping: AtomicBool::new(false),
                    mutex: Mutex::new(()),
                    condvar: Condvar::new(),
                    parks: StatCounter::default(),
                })
            })
            .collect();
        Sleep {
            counters: CachePadded::new(AtomicUsize::new(0)),
            slots,
            next_wake: AtomicUsize::new(0),
            wakeups: StatCounter::default(),
        }
    }

    /// The number of times workers blocked so far, counted when they block
    /// (a worker asleep now is counted).
    pub(crate) fn parks(&self) -> u64 {
        self.slots.iter().map(|slot| slot.parks.get()).sum()
    }

    /// The number of wake-ups issued so far.
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.get()
    }

    /// A worker with nothing to do starts searching.
    pub(crate) fn start_searching(&self) {
        // Relaxed: the count only steers wake-up decisions; the fences in
        // `new_work` and `stop_searching` order it where it matters.
        self.counters.fetch_add(ONE_SEARCHING, Ordering::Relaxed);
    }

    /// A searching worker stops searching (it found a job, or its latch was
    /// set). If it was the last searcher, publishers may have skipped waking
    /// anyone because of it, so it passes the baton: it wakes a sleeper when
    /// work is left.
    ///
    /// Returns the number of workers it woke (0 or 1).
    #[cfg_attr(stealpool_mutant = "baton_dropped", allow(unreachable_code))]
    pub(crate) fn stop_searching(&self, work_left: impl FnOnce() -> bool) -> usize {
        let before = self.counters.fetch_sub(ONE_SEARCHING, Ordering::Relaxed);
        // Mutant `baton_dropped`: the last searcher never passes the baton.
        #[cfg(stealpool_mutant = "baton_dropped")]
        return 0;
        if searching_of(before) != 1 || sleeping_of(before) == 0 {
            return 0;
        }
        // SeqCst fence, pairing with the one in `new_work`: a publisher that
        // saw us searching (and so woke nobody) ran its fence before this one,
        // so `work_left` sees its job (or a later state in which someone took
        // it). (Mutant `baton_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "baton_no_fence"))]
        fence(Ordering::SeqCst);
        if work_left() {
            self.wake_one()
        } else {
            0
        }
    }

    /// Called after new work was made visible (pushed on a deque or the
    /// injector). Wakes one sleeper unless a searcher will find the work.
    ///
    /// Returns the number of workers it woke (0 or 1).
    #[inline]
    pub(crate) fn new_work(&self) -> usize {
        // SeqCst fence, pairing with the fence in `sleep` (and in
        // `stop_searching`): either the sleeper's re-check sees our push, or
        // our load below sees the sleeper counted.
        // (Mutant `new_work_no_fence` leaves the fence out.)
        #[cfg(not(stealpool_mutant = "new_work_no_fence"))]
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        let counters = self.counters.load(Ordering::Relaxed);
        if searching_of(counters) == 0 && sleeping_of(counters) > 0 {
            self.wake_one()
        } else {
            0
        }
    }

    /// Puts worker `index`, which is searching, to sleep unless `has_news`
    /// says otherwise after the sleep was announced. Returns with the worker
    /// searching again, either because it was woken or because there was news.
    ///
    /// Returns `true` if the worker actually blocked.
    pub(crate) fn sleep(&self, index: usize, has_news: impl FnOnce() -> bool) -> bool {
        let slot = &self.slots[index];
        let mut guard = lock(&slot.mutex);
        // Mutant `sleep_check_before_announce`: looks for news before the
        // sleep is announced, so a publisher can miss the sleeper while the
        // sleeper misses the news.
        #[cfg(stealpool_mutant = "sleep_check_before_announce")]
        let has_news = {
            let news = has_news();
            move || news
        };
        // Announce: flag first, then counters (searching -> sleeping). Relaxed:
        // the fence below orders both before the re-check.
        slot.sleeping.store(true, Ordering::Relaxed);
        self.counters
            .fetch_add(ONE_SLEEPING.wrapping_sub(ONE_SEARCHING), Ordering::Relaxed);
        // SeqCst fence, pairing with the publishers' fences (`new_work`,
        // `wake_worker_for_latch`): either they see our announce,
        // or we see their news here. (Mutant `sleep_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "sleep_no_fence"))]
        fence(Ordering::SeqCst);
        if has_news() {
            // Nobody can have woken us: a waker changes `sleeping` only with
            // the mutex, which we hold. Undo the announce ourselves.
            slot.sleeping.store(false, Ordering::Relaxed);
            self.counters
                .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::Relaxed);
            return false;
        }
        // Counted before blocking, so that a worker asleep now is counted.
        slot.parks.add(1);
        // The waker clears `sleeping` (and moves us back to searching in
        // `counters`) under the mutex, so this loop also absorbs spurious
        // condition-variable wake-ups.
        while slot.sleeping.load(Ordering::Relaxed) {
            guard = wait(&slot.condvar, guard);
        }
        drop(guard);
        true
    }

    /// Wakes worker `index` if it sleeps. Returns whether it did.
    fn wake(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        let _guard = lock(&slot.mutex);
        // Relaxed: the mutex orders this with the sleeper's writes.
        if !slot.sleeping.load(Ordering::Relaxed) {
            return false;
        }
        slot.sleeping.store(false, Ordering::Relaxed);
        // The woken worker comes back as a searcher, so that publishers do not
        // wake a second worker for the job this one is about to find.
        self.counters
            .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::Relaxed);
        slot.condvar.notify_one();
        // Several threads may wake workers at once, so this counter needs a
        // read-modify-write; it sits on the path of a system call anyway.
        self.wakeups.add_shared(1);
        true
    }

    /// Wakes one sleeping worker, if any. Returns the number woken (0 or 1).
    fn wake_one(&self) -> usize {
        let n = self.slots.len();
        // Relaxed: only spreads wake-ups; any start index is correct.
        let start = self.next_wake.fetch_add(1, Ordering::Relaxed) % n;
        for offset in 0..n {
            let index = (start + offset) % n;
            // Relaxed peek: a stale `false` can only skip a worker that is
            // still re-checking (and will see the news), a stale `true` is
            // corrected under the slot's mutex in `wake`.
            if self.slots[index].sleeping.load(Ordering::Relaxed) && self.wake(index) {
                return 1;
            }
        }
        0
    }

    /// Wakes worker `index` after a latch it may be waiting on was set.
    pub(crate) fn wake_worker_for_latch(&self, index: usize) {
        // SeqCst fence, pairing with the one in `sleep`: either the worker's
        // re-check sees the latch set, or we see it sleeping here. (Mutant
        // `latch_wake_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "latch_wake_no_fence"))]
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if self.slots[index].sleeping.load(Ordering::Relaxed) {
            self.wake(index);
        }
    }

    /// Wakes every sleeping worker (shutdown).
    ///
    /// No fence is needed here, unlike `wake_worker_for_latch`: that one
    /// peeks at `sleeping` without the lock, while this takes every slot's
    /// mutex (in `wake`), which a sleeper holds from its announce through
    /// its re-check of the news (the `terminate` flag, stored before this
    /// call). Either we lock first, and the sleeper's later lock makes the
    /// flag visible to its re-check, or it blocked first (releasing the
    /// mutex in `wait`), and we see it sleeping. (A mutant that dropped the
    /// fence this function once had survived every loom model: an
    /// equivalent mutant, `docs/verification.md`.)
    pub(crate) fn wake_all(&self) {
        for index in 0..self.slots.len() {
            self.wake(index);
        }
    }
}
