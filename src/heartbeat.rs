//! The heartbeat: a worker's list of pending joins, and the clock that
//! decides when to offer the oldest of them to thieves.
//!
//! Every join on a worker links a [`JoinFrame`] (the head of its pending
//! join, on its own stack frame) into the worker's [`JoinStack`] and unlinks
//! it when `a` returns. Every [`HEARTBEAT`] of the worker's time, a join
//! that looks at the clock promotes the *oldest* unpromoted frame (the root
//! of the largest unexplored subtree) by calling the frame's `promote`
//! function, which `join.rs` supplies: this module knows the list and the
//! clock, not what a join holds.
//!
//! The list runs through stack frames, so it is only sound while joins nest
//! on the worker's stack (see "Stackful coroutines are not supported" on
//! `Pool::join`).

use crate::job::JobRef;
use crate::sync::Instant;
use std::cell::Cell;
use std::time::Duration;

/// How often a busy worker exposes its oldest pending join to thieves.
pub(crate) const HEARTBEAT: Duration = Duration::from_micros(100);

/// The type-erased head of a pending join, linked through the stack frames
/// of the joins that are running on a worker, newest first.
pub(crate) struct JoinFrame {
    /// The next older pending join, or null.
    older: *const JoinFrame,
    /// Whether a heartbeat turned `b` into a job on the deque.
    promoted: Cell<bool>,
    /// Turns the frame's `b` into a stealable job.
    promote: unsafe fn(*const JoinFrame, usize) -> JobRef,
}

impl JoinFrame {
    /// The head of a join about to be pushed on `stack`, promoted (if ever)
    /// by `promote`.
    ///
    /// `promote` is called at most once, with a pointer to this frame and
    /// the owning worker's index, while the frame is linked; it must turn
    /// the frame into a job on the caller's stack that stays valid until the
    /// join has taken it back or seen it finish.
    #[inline(always)]
    pub(crate) fn new(
        stack: &JoinStack,
        promote: unsafe fn(*const JoinFrame, usize) -> JobRef,
    ) -> JoinFrame {
        JoinFrame {
            older: stack.newest.get(),
            promoted: Cell::new(false),
            promote,
        }
    }
}

/// A worker's pending joins and its heartbeat clock.
///
/// The pending joins form a list through the joins' stack frames (no
/// allocation, two writes to push or pop). Promotion always takes the oldest
/// unpromoted join, so the promoted joins are a contiguous run at the old end
/// of the list.
pub(crate) struct JoinStack {
    /// The newest pending join, or null.
    newest: Cell<*const JoinFrame>,
    /// Joins left before the next look at the clock.
    countdown: Cell<u32>,
    /// Joins between looks at the clock, adapted to the grain of the work.
    stride: Cell<u32>,
    last_look: Cell<Option<Instant>>,
    last_beat: Cell<Option<Instant>>,
}

impl JoinStack {
    pub(crate) fn new() -> JoinStack {
        JoinStack {
            newest: Cell::new(std::ptr::null()),
            countdown: Cell::new(1),
            stride: Cell::new(1),
            last_look: Cell::new(None),
            last_beat: Cell::new(None),
        }
    }

    /// A job starts on this worker: its first join looks at the clock at
    /// once, so that the first join of a fresh computation is offered to
    /// thieves immediately (if no heartbeat is due, that costs one clock
    /// read). Done per job rather than per outermost join, which keeps a
    /// test off the join's hot path.
    #[inline(always)]
    pub(crate) fn job_starts(&self) {
        self.countdown.set(1);
    }

    /// Links `frame` as the newest pending join; returns whether it is time
    /// to look at the clock.
    #[inline(always)]
    pub(crate) fn push(&self, frame: &JoinFrame) -> bool {
        self.newest.set(frame);
        let left = self.countdown.get() - 1;
        self.countdown.set(left);
        left == 0
    }

    /// Unlinks `frame`, the newest pending join; returns whether it had been
    /// promoted.
    #[inline(always)]
    pub(crate) fn pop(&self, frame: &JoinFrame) -> bool {
        self.newest.set(frame.older);
        frame.promoted.get()
    }

    /// The slow path of a join that looked at the clock: adapts the stride
    /// and, if a heartbeat is due, returns the oldest pending join to promote.
    ///
    /// Under a model checker the clock says that time is always up: the
    /// stride stays 1 and every join promotes, so that the models explore
    /// both the taken-back and the stolen path.
    #[cold]
    #[inline(never)]
    pub(crate) fn beat(&self, index: usize) -> Option<JobRef> {
        let now = Instant::now();
        let stride = self.stride.get();
        let stride = match self.last_look.get() {
            Some(last) if now.since(last) < HEARTBEAT / 8 => stride.saturating_mul(2).min(1 << 16),
            Some(last) if now.since(last) > HEARTBEAT / 2 => (stride / 2).max(1),
            _ => stride,
        };
        self.stride.set(stride);
        self.countdown.set(stride);
        self.last_look.set(Some(now));
        if self
            .last_beat
            .get()
            .is_some_and(|beat| now.since(beat) < HEARTBEAT)
        {
            return None;
        }
        self.last_beat.set(Some(now));
        // Walk from the newest join to the first promoted one: the last
        // unpromoted join on the way is the oldest.
        let mut oldest: Option<&JoinFrame> = None;
        let mut frame = self.newest.get();
        // SAFETY: every linked frame is alive: a join unlinks its frame
        // before leaving its stack frame, and joins nest.
        while let Some(current) = unsafe { frame.as_ref() } {
            if current.promoted.get() {
                break;
            }
            oldest = Some(current);
            frame = current.older;
        }
        let oldest = oldest?;
        oldest.promoted.set(true);
        // SAFETY: the frame is alive and unpromoted until now, and this
        // worker is `index`, the owner of every frame in its list. The job
        // stays in the frame until its join has taken it back or seen its
        // latch set (`JoinFrame::new`'s contract on `promote`).
        Some(unsafe { (oldest.promote)(oldest, index) })
    }
}
