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
//!
//! Each pending join is also a call (`isolation.rs`): its `a` runs inside
//! it, and a promoted `b` belongs to it. The node costs the join nothing
//! until someone needs it: the frame holds room for it, and it is written
//! (*made*) when code inside `a` makes a call of its own and asks for the
//! call it works in ([`JoinStack::current_call`]), when the worker enters
//! another call (a job, a map that asked for help), or at promotion. The
//! frames pushed since the worker last entered a call (those above the
//! list's *base*) are the joins of the current context; every frame below
//! the base has its node made (`enter_context` makes them before moving the
//! base), so a heartbeat in a nested context can promote an outer frame.

use crate::isolation::Call;
use crate::job::JobRef;
use crate::sync::Instant;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::time::Duration;

/// How often a busy worker exposes its oldest pending join to thieves.
pub(crate) const HEARTBEAT: Duration = Duration::from_micros(100);

/// How soon after an offer a worker may offer again, before the heartbeat,
/// when another worker is idle and its deque is empty (see
/// `JoinStack::beat`).
pub(crate) const EARLY_OFFER: Duration = Duration::from_micros(10);

/// `JoinFrame::state`: a heartbeat turned `b` into a job on the deque.
const PROMOTED: u8 = 1;
/// `JoinFrame::state`: the join's call node is made.
const NODE: u8 = 2;

/// The type-erased head of a pending join, linked through the stack frames
/// of the joins that are running on a worker, newest first.
pub(crate) struct JoinFrame {
    /// The next older pending join, or null.
    older: *const JoinFrame,
    /// `PROMOTED` and `NODE` (one byte to write on the hot path).
    state: Cell<u8>,
    /// The join's call, made at most once (then `NODE` is set), under the
    /// call the join was made in, and never written again: other threads
    /// read it through the jobs of the call and of the calls under it.
    node: Cell<MaybeUninit<Call>>,
    /// Turns the frame's `b` into a stealable job.
    promote: unsafe fn(*const JoinFrame, usize) -> JobRef,
}

impl JoinFrame {
    /// The head of a join about to be pushed on `stack`, promoted (if ever)
    /// by `promote`.
    ///
    /// `promote` is called at most once, with a pointer to this frame and
    /// the owning worker's index, while the frame is linked and its node is
    /// made; it must turn the frame into a job of the frame's call
    /// ([`node`](Self::node)) on the caller's stack that stays valid until
    /// the join has taken it back or seen it finish.
    #[inline(always)]
    pub(crate) fn new(
        stack: &JoinStack,
        promote: unsafe fn(*const JoinFrame, usize) -> JobRef,
    ) -> JoinFrame {
        JoinFrame {
            older: stack.newest.get(),
            state: Cell::new(0),
            node: Cell::new(MaybeUninit::uninit()),
            promote,
        }
    }

    /// The join's call. Only made once promoted, or once code inside `a`
    /// asked for the call it works in.
    pub(crate) fn node(&self) -> *const Call {
        // `MaybeUninit<T>` has the layout of `T`.
        self.node.as_ptr().cast_const().cast()
    }

    /// Whether a heartbeat promoted the join.
    #[inline(always)]
    fn promoted(&self) -> bool {
        self.state.get() & PROMOTED != 0
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
    /// The newest pending join when the worker last entered a call (see
    /// the module documentation): the frames above it are the current
    /// context's, and every frame from it down has its node made.
    base: Cell<*const JoinFrame>,
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
            base: Cell::new(std::ptr::null()),
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
        frame.promoted()
    }

    /// The call that the code running now on this worker works inside: the
    /// newest pending join of the current context (its node made now if it
    /// was not), or `entered`, the call the worker last entered, if the
    /// context has no pending join.
    ///
    /// `entered` must be the worker's entered call (null, or a live node
    /// that outlives the current context).
    #[inline]
    #[cfg_attr(
        stealpool_mutant = "calls_skip_pending_joins",
        allow(unreachable_code, unused_variables)
    )]
    pub(crate) fn current_call(&self, entered: *const Call) -> *const Call {
        // Mutant `calls_skip_pending_joins`: code inside a join's `a` works
        // in the call the joiner entered, as if outside the join; a foreign
        // wait in `a` then does not count the join among the calls around
        // it, and runs `b`.
        #[cfg(stealpool_mutant = "calls_skip_pending_joins")]
        return entered;
        let newest = self.newest.get();
        if newest == self.base.get() {
            return entered;
        }
        // SAFETY: `newest` is a linked frame above the base, hence alive;
        // `entered` is as the caller says.
        unsafe { self.make_node(newest, entered) }
    }

    /// Makes the nodes of `frame` and of the frames below it down to the
    /// base (or the first with a node), and returns `frame`'s. A loop, from
    /// the newest down: a frame's node only needs the *address* of the next
    /// older frame's node, which this same loop makes before anyone can
    /// read it (so a deep recursion costs no extra stack here).
    ///
    /// # Safety
    ///
    /// `frame` is a linked frame above the base; `entered` is the worker's
    /// entered call.
    #[cold]
    #[inline(never)]
    unsafe fn make_node(&self, frame: *const JoinFrame, entered: *const Call) -> *const Call {
        let base = self.base.get();
        let mut current = frame;
        while !std::ptr::eq(current, base) {
            // SAFETY: a linked frame above the base, alive (joins unlink
            // before returning).
            let this = unsafe { &*current };
            let state = this.state.get();
            if state & NODE != 0 {
                // Made, and so are the frames below it.
                break;
            }
            let parent = if std::ptr::eq(this.older, base) {
                entered
            } else {
                // SAFETY: an older linked frame, alive.
                unsafe { (*this.older).node() }
            };
            // SAFETY: the parent, the call the join was made in, encloses
            // the join and so outlives its node; if it is the older frame's
            // node, the next turn of this loop makes it (or it is made), and
            // nobody reads either before this returns.
            this.node
                .set(MaybeUninit::new(unsafe { Call::under(parent) }));
            this.state.set(state | NODE);
            current = this.older;
        }
        // SAFETY: `frame` is alive.
        unsafe { (*frame).node() }
    }

    /// The worker enters another call (whose code becomes the current
    /// context): makes the nodes of the current context's joins, which a
    /// heartbeat in the new context may promote or whose calls the new
    /// context's may be under, and moves the base to the newest frame.
    /// Returns the old base, for [`leave_context`](Self::leave_context).
    #[inline]
    pub(crate) fn enter_context(&self, entered: *const Call) -> *const JoinFrame {
        let newest = self.newest.get();
        if newest != self.base.get() {
            // SAFETY: as in `current_call`.
            unsafe { self.make_node(newest, entered) };
        }
        self.base.replace(newest)
    }

    /// The worker leaves the call it entered: `base` is what
    /// [`enter_context`](Self::enter_context) returned.
    #[inline]
    pub(crate) fn leave_context(&self, base: *const JoinFrame) {
        self.base.set(base);
    }

    /// The slow path of a join that looked at the clock: adapts the stride
    /// and, if a heartbeat is due, returns the oldest pending join to promote.
    ///
    /// Under a model checker the clock says that time is always up: the
    /// stride stays 1 and every join promotes, so that the models explore
    /// both the taken-back and the stolen path.
    #[cold]
    #[inline(never)]
    ///
    /// `entered` is the worker's entered call (see `current_call`).
    pub(crate) fn beat(
        &self,
        index: usize,
        entered: *const Call,
        idle_thief: impl FnOnce() -> bool,
    ) -> Option<(JobRef, *const Call)> {
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
        // Before the heartbeat is due, offer anyway if a thief is idle and
        // nothing offered earlier still waits for it, at most once per
        // `EARLY_OFFER`: idle workers fill in a few of those rather than in
        // heartbeats (`idle_thief` reads shared state, never writes it).
        let early = |since: Duration| since >= EARLY_OFFER && idle_thief();
        if self
            .last_beat
            .get()
            .is_some_and(|beat| now.since(beat) < HEARTBEAT && !early(now.since(beat)))
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
            if current.promoted() {
                break;
            }
            oldest = Some(current);
            frame = current.older;
        }
        let oldest = oldest?;
        // Its node: frames below the base have theirs; this makes those of
        // the current context's.
        let newest = self.newest.get();
        if newest != self.base.get() {
            // SAFETY: as in `current_call`.
            unsafe { self.make_node(newest, entered) };
        }
        debug_assert!(oldest.state.get() & NODE != 0);
        oldest.state.set(oldest.state.get() | PROMOTED);
        // SAFETY: the frame is alive and unpromoted until now, its node is
        // made, and this worker is `index`, the owner of every frame in its
        // list. The job stays in the frame until its join has taken it back
        // or seen its latch set (`JoinFrame::new`'s contract on `promote`).
        Some((unsafe { (oldest.promote)(oldest, index) }, oldest.node()))
    }
}

#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod tests {
    use super::{JoinFrame, JoinStack, EARLY_OFFER, HEARTBEAT, NODE};
    use crate::isolation::{walk, Call, Waiting};
    use crate::job::{Declined, Job, JobRef};
    use crate::sync::Instant;
    use crate::worker_thread::WorkerThread;
    use std::time::Duration;

    /// A job that is never run: what the frames below are promoted into.
    struct Never;

    impl Job for Never {
        unsafe fn execute(
            _: *const Self,
            _: Option<&WorkerThread>,
            _: Waiting,
        ) -> Result<(), Declined> {
            unreachable!("the test runs no job")
        }
    }

    static NEVER: Never = Never;

    unsafe fn promote(_: *const JoinFrame, _: usize) -> JobRef {
        // SAFETY: `NEVER` lives forever, and the job is never run.
        unsafe { JobRef::new(&NEVER) }
    }

    fn wait(duration: Duration) {
        let start = Instant::now();
        while Instant::now().since(start) < duration {
            std::hint::spin_loop();
        }
    }

    /// The stride (joins between looks at the clock) doubles while looks
    /// come within an eighth of a heartbeat of each other, up to 2^16,
    /// halves (down to 1) when they come more than half a heartbeat apart,
    /// and stays between the two. The checks of quick looks are retried
    /// when the thread was held up (a loaded machine).
    #[test]
    fn the_stride_follows_the_grain_of_the_work() {
        let stack = JoinStack::new();
        let look = || stack.beat(0, std::ptr::null(), || false);
        // A first look has nothing to compare with.
        look();
        assert_eq!(stack.stride.get(), 1);
        let mut quick = 0;
        let mut between = 0;
        for _ in 0..1000 {
            // Two looks within an eighth of a heartbeat: doubled.
            let start = Instant::now();
            look();
            stack.stride.set(4);
            look();
            if Instant::now().since(start) < HEARTBEAT / 8 {
                assert_eq!(stack.stride.get(), 8, "a quick look did not double");
                assert_eq!(stack.countdown.get(), 8);
                quick += 1;
            }
            // More than half a heartbeat apart: halved.
            wait(HEARTBEAT / 2 + HEARTBEAT / 10);
            let before = stack.stride.get();
            look();
            assert_eq!(
                stack.stride.get(),
                (before / 2).max(1),
                "a slow look did not halve"
            );
            // A quarter of a heartbeat apart (if no more than half): kept.
            let start = Instant::now();
            wait(HEARTBEAT / 4);
            let before = stack.stride.get();
            look();
            if Instant::now().since(start) < HEARTBEAT / 2 {
                assert_eq!(stack.stride.get(), before, "a look in between changed it");
                between += 1;
            }
            if quick >= 3 && between >= 3 {
                break;
            }
        }
        assert!(
            quick >= 3 && between >= 3,
            "held up: {quick} quick, {between} in between"
        );
        // The bounds.
        stack.stride.set(1 << 16);
        let start = Instant::now();
        look();
        look();
        if Instant::now().since(start) < HEARTBEAT / 8 {
            assert_eq!(stack.stride.get(), 1 << 16);
        }
        wait(HEARTBEAT);
        stack.stride.set(1);
        look();
        assert_eq!(stack.stride.get(), 1);
    }

    /// A job's first join looks at the clock at once, whatever the
    /// countdown the previous job left.
    #[test]
    fn the_first_join_of_a_job_looks_at_the_clock() {
        let stack = JoinStack::new();
        stack.countdown.set(u32::MAX);
        let frame = JoinFrame::new(&stack, promote);
        assert!(!stack.push(&frame));
        stack.pop(&frame);
        stack.job_starts();
        assert!(stack.push(&frame));
        stack.pop(&frame);
    }

    /// Entering a call makes the nodes of the joins pending in the current
    /// context, under the call they were made in; a join made inside the
    /// entered call is under it; leaving restores the outer context.
    #[test]
    fn joins_are_under_the_call_their_worker_had_entered() {
        let stack = JoinStack::new();
        // No look at the clock: this is not what the test is about.
        stack.countdown.set(u32::MAX);
        // SAFETY: a root; every node below lives in this frame, and the
        // stack is emptied before they go.
        let outer = unsafe { Call::under(std::ptr::null()) };
        let chain = |node: *const Call| unsafe { walk(node) }.collect::<Vec<_>>();
        let j = JoinFrame::new(&stack, promote);
        stack.push(&j);
        assert_eq!(j.state.get() & NODE, 0, "a join's node is made lazily");
        // Code inside j's `a` enters a call (a job, a map that asked for
        // help), made under the call it works in.
        let base = stack.enter_context(&outer);
        assert_ne!(j.state.get() & NODE, 0, "entering made the node");
        assert_eq!(chain(j.node()), [j.node(), &outer as *const Call]);
        // SAFETY: j's node outlives the new call, which ends below.
        let inner = unsafe { Call::under(j.node()) };
        let k = JoinFrame::new(&stack, promote);
        stack.push(&k);
        let k_node = stack.current_call(&inner);
        assert_eq!(k_node, k.node());
        assert_eq!(
            chain(k_node),
            [
                k_node,
                &inner as *const Call,
                j.node(),
                &outer as *const Call
            ]
        );
        stack.pop(&k);
        assert_eq!(stack.current_call(&inner), &inner as *const Call);
        stack.leave_context(base);
        assert_eq!(stack.current_call(&outer), j.node());
        stack.pop(&j);
        assert_eq!(stack.current_call(&outer), &outer as *const Call);
    }

    /// Before the heartbeat is due, a join is offered only if a thief is
    /// idle, and not sooner than `EARLY_OFFER` after the last offer. The
    /// checks that need the heartbeat not to be due yet are retried when
    /// the thread was held up past it (a loaded machine).
    #[test]
    fn an_idle_thief_gets_an_offer_before_the_heartbeat() {
        let mut clean = 0;
        for _ in 0..100 {
            let stack = JoinStack::new();
            // Three nested pending joins (the countdown to the next look is
            // not what this tests: `beat` is called directly).
            stack.countdown.set(u32::MAX);
            let oldest = JoinFrame::new(&stack, promote);
            stack.push(&oldest);
            let middle = JoinFrame::new(&stack, promote);
            stack.push(&middle);
            let newest = JoinFrame::new(&stack, promote);
            stack.push(&newest);
            let look = |idle: bool| stack.beat(0, std::ptr::null(), || idle).is_some();
            // The first look offers: no beat yet.
            let first = Instant::now();
            assert!(look(false));
            assert!(oldest.promoted());
            wait(EARLY_OFFER * 2);
            let offered_late = look(false);
            let early = look(true);
            let in_time = Instant::now().since(first) < HEARTBEAT;
            if in_time {
                assert!(
                    !offered_late,
                    "offered before the heartbeat with nobody idle"
                );
                assert!(early, "an idle thief got no early offer");
                assert!(middle.promoted());
                // A heartbeat later, with nobody idle, as before.
                wait(HEARTBEAT + EARLY_OFFER);
                assert!(look(false));
                assert!(newest.promoted());
                clean += 1;
            }
            stack.pop(&newest);
            stack.pop(&middle);
            stack.pop(&oldest);
            if clean == 3 {
                return;
            }
        }
        panic!("only {clean} of 100 attempts ran within a heartbeat");
    }
}
