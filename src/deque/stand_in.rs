//! A loom-aware stand-in for the parts of crossbeam-deque that the engine uses
//! (compiled only under `--cfg loom` or `--cfg shuttle`).
//!
//! crossbeam-deque's atomics are invisible to loom (and shuttle cannot preempt
//! inside them), so under a model checker the engine gets these types
//! instead, behind the same names. Each one takes and puts
//! tasks under a lock (the part that crossbeam does with a lock-free
//! algorithm, whose linearizability is crossbeam's claim and test suite), and
//! keeps crossbeam's *index* atomics with crossbeam's orderings, for everything
//! a thread learns *without* taking a task:
//!
//! * `Worker::push` writes the task, then runs a Release fence and stores
//!   `back` Relaxed, as crossbeam does.
//! * `Stealer::is_empty` and the first look of `Stealer::steal` load `front`
//!   and `back` with Acquire and no lock, so they can be stale exactly as
//!   crossbeam's can. (crossbeam 0.8.8 puts a SeqCst fence between the two
//!   loads; the stand-in leaves it out, so no model can lean on it.)
//! * `Injector::push` advances `tail` (SeqCst) *before* the task is readable,
//!   as crossbeam reserves a slot and writes it afterwards;
//!   `Injector::is_empty` loads `head` and `tail` with SeqCst.
//!   `steal_batch_and_pop` loads `head` (Acquire), runs a SeqCst fence, loads
//!   `tail` (Relaxed), claims a batch by a compare-exchange on `head`, then
//!   waits (yielding) for slots whose push is not finished, as crossbeam does.
//!
//! A steal answers [`Steal::Retry`] exactly when crossbeam's would fail its
//! compare-exchange: another thread took a task between the steal's first look
//! and its claim. It never fails spuriously, so a search cannot livelock on
//! its own.
//!
//! `docs/verification.md` lists what the stand-in abstracts.

use crate::sync::{fence, lock, thread, Arc, AtomicUsize, Mutex, Ordering};
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// The most tasks that one `Injector::steal_batch_and_pop` takes (crossbeam's
/// `MAX_BATCH + 1`).
const MAX_BATCH: usize = 33;

/// The outcome of a steal, as crossbeam-deque's `Steal`.
#[derive(Debug)]
pub(crate) enum Steal<T> {
    /// The queue was empty (or looked empty).
    Empty,
    /// A task was taken.
    Success(T),
    /// Another thread took a task at the same time: try again.
    Retry,
}

/// The state a worker deque shares with its stealers.
struct Inner<T> {
    /// The index of the oldest task. Advanced by thieves, and by the owner
    /// when it takes the last task (crossbeam's compare-exchange on `front`).
    front: AtomicUsize,
    /// One past the index of the newest task; written by the owner only.
    back: AtomicUsize,
    /// Slot `i` holds the task of index `i` while `front <= i < back`. The
    /// lock serializes the operations that take or put a task.
    slots: Mutex<Vec<MaybeUninit<T>>>,
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        let front = self.front.load(Ordering::Relaxed);
        let back = self.back.load(Ordering::Relaxed);
        let slots = lock(&self.slots);
        for slot in &slots[front.min(back)..back] {
            // SAFETY: slots `front..back` hold tasks that nobody took.
            unsafe { slot.as_ptr().read() };
        }
    }
}

/// The owner's end of a worker deque (crossbeam's `Worker`, LIFO flavour).
pub(crate) struct Worker<T> {
    inner: Arc<Inner<T>>,
    /// `Send` but not `Sync`, as crossbeam's `Worker`.
    _owner_only: PhantomData<Cell<()>>,
}

/// The thieves' end of a worker deque (crossbeam's `Stealer`).
pub(crate) struct Stealer<T> {
    inner: Arc<Inner<T>>,
}

/// Whether `back` is past `front`, for indices that may be stale.
fn non_empty(front: usize, back: usize) -> bool {
    back > front
}

impl<T> Worker<T> {
    /// A new, empty deque whose owner pops the newest task first.
    pub(crate) fn new_lifo() -> Worker<T> {
        Worker {
            inner: Arc::new(Inner {
                front: AtomicUsize::new(0),
                back: AtomicUsize::new(0),
                slots: Mutex::new(Vec::new()),
            }),
            _owner_only: PhantomData,
        }
    }

    /// A thieves' end of this deque.
    pub(crate) fn stealer(&self) -> Stealer<T> {
        Stealer {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Pushes `task` as the newest task.
    pub(crate) fn push(&self, task: T) {
        self.push_batch(std::iter::once(task));
    }

    /// Pushes `tasks`, the last one newest, and publishes them with one store
    /// of `back` (as crossbeam's batch steals do).
    fn push_batch(&self, tasks: impl IntoIterator<Item = T>) {
        let inner = &*self.inner;
        let mut slots = lock(&inner.slots);
        // Relaxed: only the owner writes `back`.
        let start = inner.back.load(Ordering::Relaxed);
        let mut back = start;
        for task in tasks {
            if slots.len() <= back {
                slots.resize_with(back + 1, MaybeUninit::uninit);
            }
            slots[back] = MaybeUninit::new(task);
            back += 1;
        }
        if back != start {
            // As crossbeam: a Release fence, then a Relaxed store of `back`.
            // A lock-free reader that sees the new `back` with Acquire sees
            // the task; one that does not, does not (no lock helps it).
            fence(Ordering::Release);
            inner.back.store(back, Ordering::Relaxed);
        }
    }

    /// Whether the deque looks empty to its owner (crossbeam's
    /// `Worker::is_empty`): `back` is exact here, `front` possibly stale.
    pub(crate) fn is_empty(&self) -> bool {
        let back = self.inner.back.load(Ordering::Relaxed);
        let front = self.inner.front.load(Ordering::Acquire);
        !non_empty(front, back)
    }

    /// Pops the newest task.
    pub(crate) fn pop(&self) -> Option<T> {
        let inner = &*self.inner;
        // crossbeam's first look, without a lock: `back` is exact here (only
        // we write it), and a stale `front` is only smaller than the real
        // one, so an empty answer is right.
        let back = inner.back.load(Ordering::Relaxed);
        let front = inner.front.load(Ordering::Relaxed);
        if !non_empty(front, back) {
            return None;
        }
        let slots = lock(&inner.slots);
        // Under the lock both indices are exact.
        let front = inner.front.load(Ordering::Relaxed);
        let back = inner.back.load(Ordering::Relaxed);
        if !non_empty(front, back) {
            // Thieves took everything since our first look.
            return None;
        }
        let index = back - 1;
        // SAFETY: `front <= index < back`: the slot holds a task nobody took.
        let task = unsafe { slots[index].assume_init_read() };
        if index == front {
            // The last task, which thieves may be after too: crossbeam claims
            // it by a compare-exchange on `front` (leaving `back` as it was),
            // which makes a thief that looked at `front` before retry.
            inner.front.store(front + 1, Ordering::Release);
        } else {
            inner.back.store(index, Ordering::Relaxed);
        }
        Some(task)
    }
}

impl<T> Stealer<T> {
    /// Whether the deque looks empty: two lock-free loads, possibly stale.
    pub(crate) fn is_empty(&self) -> bool {
        let front = self.inner.front.load(Ordering::Acquire);
        let back = self.inner.back.load(Ordering::Acquire);
        !non_empty(front, back)
    }

    /// Steals the oldest task.
    pub(crate) fn steal(&self) -> Steal<T> {
        let inner = &*self.inner;
        // crossbeam's look, without a lock (and without crossbeam's fence
        // between the loads): possibly stale.
        let front = inner.front.load(Ordering::Acquire);
        let back = inner.back.load(Ordering::Acquire);
        if !non_empty(front, back) {
            return Steal::Empty;
        }
        let slots = lock(&inner.slots);
        // crossbeam claims index `front` by a compare-exchange on `front`,
        // which fails if another thread took a task since our look.
        #[cfg(not(stealpool_mutant = "deque_steal_unclaimed"))]
        if inner.front.load(Ordering::Relaxed) != front {
            return Steal::Retry;
        }
        // Our look at `back` was older than our look at `front`, and the
        // owner has taken the task since: crossbeam's fence between the two
        // loads would have shown the deque empty.
        if !non_empty(front, inner.back.load(Ordering::Relaxed)) {
            return Steal::Empty;
        }
        // SAFETY: under the lock, `front` is still the index of the oldest
        // task, so the slot holds a task nobody took. (The mutant
        // `deque_steal_unclaimed` skips that check: it may copy a task that
        // was taken already, as a steal without the compare-exchange would.)
        let task = unsafe { slots[front].assume_init_read() };
        inner.front.store(front + 1, Ordering::Release);
        Steal::Success(task)
    }
}

/// The global queue for work from outside the pool (crossbeam's `Injector`).
pub(crate) struct Injector<T> {
    /// The index of the oldest task not yet claimed by a stealer.
    head: AtomicUsize,
    /// One past the index of the newest task reserved by a pusher.
    tail: AtomicUsize,
    /// Slot `i` holds the task of index `i` once its pusher has written it,
    /// until a stealer that claimed index `i` takes it.
    slots: Mutex<Vec<Option<T>>>,
}

impl<T> Injector<T> {
    /// A new, empty injector.
    pub(crate) fn new() -> Injector<T> {
        Injector {
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Pushes `task` as the newest task.
    pub(crate) fn push(&self, task: T) {
        // As crossbeam: reserve the index first (SeqCst read-modify-write on
        // the tail), then write the slot. In between, `is_empty` already says
        // no, and a stealer that claims the index waits for the write.
        let index = self.tail.fetch_add(1, Ordering::SeqCst);
        let mut slots = lock(&self.slots);
        if slots.len() <= index {
            slots.resize_with(index + 1, || None);
        }
        slots[index] = Some(task);
    }

    /// Whether the injector looks empty: two lock-free loads (SeqCst, as
    /// crossbeam's), possibly stale.
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        !non_empty(head, tail)
    }

    /// The number of tasks reserved and not yet claimed, possibly stale.
    pub(crate) fn len(&self) -> usize {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        tail.saturating_sub(head)
    }

    /// Claims the oldest task (crossbeam's `Injector::steal`).
    pub(crate) fn steal(&self) -> Steal<T> {
        // As `steal_batch_and_pop`, with a batch of one.
        let head = self.head.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::Relaxed);
        if !non_empty(head, tail) {
            return Steal::Empty;
        }
        if self
            .head
            .compare_exchange(head, head + 1, Ordering::SeqCst, Ordering::Acquire)
            .is_err()
        {
            return Steal::Retry;
        }
        Steal::Success(self.take(head))
    }

    /// Claims about half of the tasks (at most [`MAX_BATCH`]), moves all but
    /// the oldest into `dest` (so that `dest.pop()` returns them oldest first)
    /// and returns the oldest.
    pub(crate) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
        // As crossbeam: head (Acquire), a SeqCst fence, tail (Relaxed).
        let head = self.head.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::Relaxed);
        if !non_empty(head, tail) {
            return Steal::Empty;
        }
        let advance = (tail - head).div_ceil(2).min(MAX_BATCH);
        // As crossbeam: the claim fails only if another stealer claimed
        // first. A strong compare-exchange: no spurious failures.
        if self
            .head
            .compare_exchange(head, head + advance, Ordering::SeqCst, Ordering::Acquire)
            .is_err()
        {
            return Steal::Retry;
        }
        let oldest = self.take(head);
        if advance > 1 {
            let rest: Vec<T> = (head + 1..head + advance).map(|i| self.take(i)).collect();
            // Newest at the bottom, so that the owner's pops go oldest first.
            dest.push_batch(rest.into_iter().rev());
        }
        Steal::Success(oldest)
    }

    /// Takes the task of claimed index `index`, waiting (as crossbeam's
    /// `wait_write`) for a pusher that reserved it but has not written it yet.
    fn take(&self, index: usize) -> T {
        loop {
            if let Some(task) = lock(&self.slots).get_mut(index).and_then(Option::take) {
                return task;
            }
            thread::yield_now();
        }
    }
}
