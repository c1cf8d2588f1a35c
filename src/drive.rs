//! The parallel loop under the `map` family: runs a body over the chunks of an
//! index range, on the caller and on whichever workers come to help.
//!
//! 1. **The caller starts alone.** It claims batches of 1, 3, 12, 48, ...
//!    indices and looks at the clock after each. A call that is over before
//!    [`PROMOTE_AFTER`] never touches another thread: a small call costs what
//!    its loop costs, plus a few clock reads.
//! 2. **Promotion.** Once the call has run that long, the caller publishes a
//!    wave of [`Ticket`]s, one per helper the remaining work can feed
//!    (`engagement::wave`), and wakes that many workers in one step: jobs
//!    that any worker can steal (from the caller's deque if it is a worker of
//!    this pool, otherwise from the injector). A worker that runs a ticket
//!    *enters* it, recruits up to two more workers by pushing two more
//!    tickets if the wave left helpers out (so late helpers join in a binary
//!    tree, not a chain), and claims chunks until none are left.
//! 3. **Claiming.** All participants claim chunks from one atomic cursor, in
//!    input order. With an explicit chunk size every claim is one chunk;
//!    otherwise a claim takes `remaining / (2 * participants)` indices (at
//!    least one): guided self-scheduling, whose chunks shrink geometrically, so
//!    a call makes O(participants * log(len)) claims and ends with chunks
//!    small enough to balance any cost profile.
//! 4. **Closing.** When the cursor runs out, the caller closes the ticket
//!    (no helper may enter afterwards) and waits until the helpers inside have
//!    left. Tickets still queued stay valid (they are reference counted) and
//!    do nothing when they are eventually run.
//!
//! A panic in the body stops new claims, is recorded with the range it hit,
//! and is handed back to the caller in [`Outcome`], which knows exactly which
//! ranges finished (everything claimed, minus the failed ranges).

use crate::engagement::{ask_now, wave, CallEngagement, Pace};
use crate::isolation::{chain_of, Call, Waiting};
use crate::job::{Declined, Job, JobRef};
use crate::latch::{Latch, Waiter};
use crate::panic::{drop_caught, Panic};
use crate::registry::Registry;
use crate::sync::Ordering;
use crate::sync::{into_inner, lock, Arc, AtomicBool, AtomicUsize, Instant, Mutex};
use crate::worker_thread::WorkerThread;
use crossbeam_utils::CachePadded;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// How long the caller runs alone before it asks for help: a few times the
/// cost of waking a sleeping worker, so that a call too short to benefit from a
/// helper never pays for one.
pub(crate) const PROMOTE_AFTER: std::time::Duration = std::time::Duration::from_micros(5);

/// How a call is cut into chunks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Chunking {
    /// Start alone, promote after [`PROMOTE_AFTER`], then guided chunks.
    Adaptive,
    /// Chunks of exactly this many indices (the last may be shorter), handed
    /// to the workers at once.
    Fixed(usize),
}

/// What happened to a call, for the caller to clean up and report.
pub(crate) struct Outcome {
    /// Indices `0..claimed` were claimed; each claimed range either finished
    /// or is listed in `failed`.
    pub(crate) claimed: usize,
    /// The ranges whose body panicked or returned `false`, in no order.
    pub(crate) failed: Vec<Range<usize>>,
    /// The first panic, if any.
    pub(crate) panic: Option<Panic>,
}

impl Outcome {
    /// The ranges that finished: `0..claimed` minus `failed`, in order.
    ///
    /// Correct for any set of disjoint failed ranges, empty ones included:
    /// an empty range fails nothing, and a range never moves the walk back.
    pub(crate) fn finished(&mut self) -> Vec<Range<usize>> {
        self.failed.retain(|range| !range.is_empty());
        self.failed.sort_unstable_by_key(|range| range.start);
        let mut done = Vec::with_capacity(self.failed.len() + 1);
        let mut next = 0;
        for range in &self.failed {
            if range.start > next {
                done.push(next..range.start);
            }
            next = next.max(range.end);
        }
        if self.claimed > next {
            done.push(next..self.claimed);
        }
        done
    }
}

/// How the caller's solo start ended.
enum Solo {
    /// No work is left (or a chunk failed); `declined`: it chose not to ask
    /// for help at least once.
    Done { declined: bool },
    /// Work is left and help is worth asking for; `woke`: every other worker
    /// slept when it looked; `wave`: how many helpers to engage at once
    /// (`engagement::wave`).
    Ask { woke: bool, wave: usize },
}

/// The state of one call, on the caller's stack.
struct Drive<'a, B, L> {
    len: usize,
    chunking: Chunking,
    /// The most threads that may work at once (for guided chunk sizes).
    participants: usize,
    body: &'a B,
    /// Each participating thread's own state (`map_init`'s `S`).
    local: PhantomData<fn() -> L>,
    /// The next index to claim; never past `len`.
    cursor: CachePadded<AtomicUsize>,
    /// Set after a failure: no new claims.
    stop: AtomicBool,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    ranges: Vec<Range<usize>>,
    panic: Option<Panic>,
}

impl<B, L> Drive<'_, B, L>
where
    B: Fn(&mut L, Range<usize>) -> bool + Sync,
    L: Default,
{
    /// Claims the next chunk: `size(remaining)` indices (at least one, at
    /// most `remaining`) from the front of what is left.
    #[inline]
    fn claim(&self, size: impl Fn(usize) -> usize) -> Option<Range<usize>> {
        // Relaxed: a hint; a claim made just after another thread's failure
        // is still run and accounted for.
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        // Relaxed throughout: the compare-exchange alone makes claims
        // disjoint; the results the chunks write are published by the
        // ticket's gate and latch. The cursor never passes `len`, so it
        // cannot overflow even for a slice of `usize::MAX` zero-sized items.
        let mut start = self.cursor.load(Ordering::Relaxed);
        loop {
            let remaining = self.len.checked_sub(start).filter(|&n| n > 0)?;
            let end = start + size(remaining).clamp(1, remaining);
            match self.cursor.compare_exchange_weak(
                start,
                end,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(start..end),
                Err(actual) => start = actual,
            }
        }
    }

    /// The size of a claim after promotion, given what remains.
    #[inline]
    fn chunk_len(&self, remaining: usize) -> usize {
        match self.chunking {
            Chunking::Fixed(n) => n,
            Chunking::Adaptive => remaining / (2 * self.participants),
        }
    }

    /// Whether another helper could still get a chunk.
    fn more_than_one_chunk_left(&self) -> bool {
        // Relaxed: a hint; a recruit that finds nothing left just leaves.
        let remaining = self.len - self.cursor.load(Ordering::Relaxed);
        remaining > self.chunk_len(remaining).max(1)
    }

    /// Runs the body on `range`, recording a failure.
    fn run(&self, local: &mut L, range: Range<usize>) {
        match catch_unwind(AssertUnwindSafe(|| (self.body)(local, range.clone()))) {
            Ok(true) => {}
            Ok(false) => self.fail(Some(range), None),
            Err(panic) => self.fail(Some(range), Some(panic)),
        }
    }

    /// Records a failure: the chunk `range` did not finish (`None`: a panic
    /// outside any chunk, from dropping a thread's local state), and its
    /// panic, if it panicked. Stops new claims.
    #[cold]
    fn fail(&self, range: Option<Range<usize>>, panic: Option<Panic>) {
        // Relaxed: see `claim`.
        self.stop.store(true, Ordering::Relaxed);
        let extra = {
            let mut failures = lock(&self.failures);
            failures.ranges.extend(range);
            // Mutant `panic_payload_lost`: the chunk's panic is recorded as a
            // failure, but its payload is dropped.
            #[cfg(stealpool_mutant = "panic_payload_lost")]
            let panic: Option<Panic> = panic.and(None);
            match (panic, &failures.panic) {
                (Some(panic), None) => {
                    failures.panic = Some(panic);
                    None
                }
                (panic, _) => panic,
            }
        };
        // Only the first panic reaches the caller. Dropping a payload runs
        // user code that may itself panic: contain it here, outside the lock.
        if let Some(extra) = extra {
            crate::panic::discard(extra);
        }
    }

    /// Claims and runs chunks until none are left.
    fn participate(&self, local: &mut L) {
        while let Some(range) = self.claim(|remaining| self.chunk_len(remaining)) {
            self.run(local, range);
        }
    }

    /// A helper's whole part, with a fresh local state that it drops here
    /// (user code, so a panic in its drop is the call's panic).
    fn participate_fresh(&self) {
        let mut local = L::default();
        self.participate(&mut local);
        if let Some(panic) = drop_caught(local) {
            self.fail(None, Some(panic));
        }
    }

    /// The caller's solo start (adaptive chunking): runs batches of growing
    /// size until the work is done or it has run for [`PROMOTE_AFTER`];
    /// then, while help would need a wake-up that cannot arrive in time
    /// (`engagement::ask_now`), goes on alone. (Under a model checker the
    /// clock says that time is always up: the first batch promotes.)
    fn solo_start(&self, local: &mut L, registry: &Registry, caller_is_worker: bool) -> Solo {
        let started = Instant::now();
        let mut batch: usize = 1;
        let mut declined = false;
        while let Some(range) = self.claim(|_| batch) {
            self.run(local, range);
            let elapsed = started.elapsed();
            if elapsed < PROMOTE_AFTER {
                batch = next_batch(batch);
                continue;
            }
            // Relaxed: a hint, see `claim`. Alone, the caller's claims are
            // all that moved the cursor.
            let done = self.cursor.load(Ordering::Relaxed);
            if done >= self.len {
                break;
            }
            let asleep = others_asleep(registry, caller_is_worker);
            let wake = if asleep {
                registry.engagement().punctuality.wake()
            } else {
                Duration::ZERO
            };
            let pace = Pace {
                elapsed,
                done,
                len: self.len,
            };
            match ask_now(pace, wake) {
                None => {
                    return Solo::Ask {
                        woke: asleep,
                        wave: wave(pace, wake, self.participants - 1),
                    };
                }
                Some(next) => {
                    declined = true;
                    batch = next;
                }
            }
        }
        Solo::Done { declined }
    }

    fn into_outcome(self) -> Outcome {
        let failures = into_inner(self.failures);
        // Relaxed: every claim happened before this point (the helpers left
        // through the gate and latch), so this reads the final value.
        let claimed = self.cursor.load(Ordering::Relaxed);
        Outcome {
            claimed,
            failed: failures.ranges,
            panic: failures.panic,
        }
    }
}

/// The solo start's next batch after one of `batch` items: 1, 3, 12, 48,
/// ..., so that the clock is read after 1, 4, 16, 64, ... items: an
/// expensive first item recruits help at once, and a small call reads the
/// clock only a few times.
fn next_batch(batch: usize) -> usize {
    batch.saturating_mul(if batch == 1 { 3 } else { 4 })
}

/// The wave of a call of `len` items in fixed chunks of `n` (more than
/// one chunk): a helper per chunk beyond the caller's first, at most
/// `helpers`.
fn fixed_wave(len: usize, n: usize, helpers: usize) -> usize {
    helpers.min(len.div_ceil(n) - 1)
}

/// Runs `body` over the chunks of `0..len` on the caller and the workers of
/// `registry`. `body` returns `false` to stop the call (it has recorded why).
///
/// Each participating thread gets its own `L`, made by `L::default()` and
/// passed to every chunk it runs (`map_init` makes its state lazily in it).
///
/// Returns once no chunk is running any more.
pub(crate) fn drive<B, L>(
    registry: &Arc<Registry>,
    len: usize,
    chunking: Chunking,
    body: &B,
) -> Outcome
where
    B: Fn(&mut L, Range<usize>) -> bool + Sync,
    L: Default,
{
    let worker = WorkerThread::current();
    let own_worker = worker.filter(|worker| worker.registry().same(registry));
    // At most `threads` threads work on a call at once, the caller included
    // (whether it is one of the pool's workers or not): a pool sized to leave
    // a core free does so, and efficiency figures compare like with like.
    let helpers = registry.threads() - 1;
    let drive = Drive {
        len,
        chunking,
        participants: helpers + 1,
        body,
        local: PhantomData,
        cursor: CachePadded::new(AtomicUsize::new(0)),
        stop: AtomicBool::new(false),
        failures: Mutex::new(Failures::default()),
    };

    // The caller's own local state, kept across its solo start and its
    // later claims.
    let mut local = L::default();
    let ask = match chunking {
        _ if helpers == 0 => {
            drive.participate(&mut local);
            None
        }
        Chunking::Adaptive => match drive.solo_start(&mut local, registry, own_worker.is_some()) {
            Solo::Ask { woke, wave } => Some((woke, wave)),
            Solo::Done { declined } => {
                if declined {
                    registry.engagement().punctuality.declined();
                }
                None
            }
        },
        // Fixed chunks ask at once, for a helper per chunk beyond the
        // caller's first: the user chose to split the call.
        Chunking::Fixed(n) => (len > n).then(|| {
            let woke = others_asleep(registry, own_worker.is_some());
            (woke, fixed_wave(len, n, helpers))
        }),
    };
    if let Some((woke, wave)) = ask {
        // The call its helpers work inside, under the one the caller works
        // in (if it is a worker of any pool); the caller works inside it too
        // from now on, so that what its chunks call is under it as well.
        // SAFETY: the enclosing call outlives this one, which ends here.
        let call = unsafe { Call::under(worker.map_or(std::ptr::null(), |w| w.call())) };
        let _inside = worker.map(|worker| worker.enter(&call));
        let latch = Latch::new(Waiter::current_for(registry));
        let ticket = Arc::new(Ticket {
            gate: AtomicUsize::new(0),
            recruits: AtomicUsize::new(helpers - wave),
            drive: (&drive as *const Drive<'_, B, L>).cast(),
            help: help::<B, L>,
            latch: &latch,
            call: &call,
            engagement: CallEngagement::published_now(woke),
        });
        // The wave: one ticket per helper engaged now, published and woken
        // for in one step.
        let jobs = (0..wave).map(|_| {
            // SAFETY: each ticket job owns one reference count (`into_raw`)
            // that `Ticket::execute` takes back; `drive` and `latch` outlive
            // every helper that enters, because we close the gate and wait
            // below.
            unsafe { JobRef::new(Arc::into_raw(Arc::clone(&ticket))) }
        });
        // SAFETY: `call` lives in this frame.
        unsafe {
            match own_worker {
                Some(worker) => worker.push_wave(jobs, &call),
                None => registry.inject_wave(jobs, &call),
            }
        }
        drive.participate(&mut local);
        // Mutant `panic_skips_wait`: after a failure, returns (and re-raises
        // the panic) without waiting for the helpers still running chunks.
        #[cfg(stealpool_mutant = "panic_skips_wait")]
        if drive.stop.load(Ordering::Relaxed) {
            drop(local);
            return drive.into_outcome();
        }
        if ticket.close() {
            latch.wait(&call);
        }
        registry.engagement().add(&ticket.engagement);
    } else {
        drive.participate(&mut local);
    }
    if let Some(panic) = drop_caught(local) {
        drive.fail(None, Some(panic));
    }
    drive.into_outcome()
}

/// Whether every worker but the caller sleeps idle, so that help needs a
/// wake-up (a hint: see `Sleep::idle_sleepers`).
fn others_asleep(registry: &Registry, caller_is_worker: bool) -> bool {
    // Under a model checker every call asks anyway (`ask_now`): no load
    // that would only add interleavings to explore.
    if cfg!(any(loom, shuttle)) {
        return false;
    }
    registry.sleep().idle_sleepers() + usize::from(caller_is_worker) >= registry.threads()
}

/// Gate bit: set by the caller when it no longer admits helpers.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// A call's invitation to help, shared by the tickets queued for it.
///
/// `drive` and `latch` point into the caller's stack frame. They may be used
/// only by a helper that has entered through `gate`: the caller does not
/// return until the gate is closed and every helper has left.
struct Ticket {
    /// `CLOSED` | the number of helpers inside.
    gate: AtomicUsize,
    /// How many more tickets helpers may push.
    recruits: AtomicUsize,
    drive: *const (),
    /// Runs `Drive::participate` (and recruits) for the erased drive type.
    help: unsafe fn(*const (), &Arc<Ticket>),
    latch: *const Latch,
    /// The call, in the caller's frame: a waiter takes the ticket only if
    /// its wait accepts this call.
    call: *const Call,
    /// When the call asked for help, and when its helpers started.
    engagement: CallEngagement,
}

// SAFETY: the raw pointers are only dereferenced by a helper inside the gate,
// while the caller keeps the pointees alive; the pointees are `Sync` (a
// `Drive` of a `Sync` body, a latch of atomics).
unsafe impl Send for Ticket {}
// SAFETY: as above.
unsafe impl Sync for Ticket {}

impl Ticket {
    /// Enters the gate unless it is closed.
    fn enter(&self) -> bool {
        // Relaxed: entering publishes nothing, and the helper already sees
        // the drive's initial state through the deque's push/steal.
        let mut gate = self.gate.load(Ordering::Relaxed);
        loop {
            if gate & CLOSED != 0 {
                return false;
            }
            match self.gate.compare_exchange_weak(
                gate,
                gate + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => gate = actual,
            }
        }
    }

    /// Leaves the gate; the last helper out of a closed gate sets the latch.
    ///
    /// # Safety
    ///
    /// The caller entered the gate and has not left it.
    unsafe fn leave(&self) {
        // AcqRel. Release: publishes this helper's chunk results to whoever
        // observes the gate empty. Acquire: if we are the last, we have seen
        // the earlier helpers' releases, and pass them on through the latch.
        #[cfg(not(stealpool_mutant = "gate_relaxed"))]
        let before = self.gate.fetch_sub(1, Ordering::AcqRel);
        // Mutant `gate_relaxed`: the gate's AcqRel pair weakened to Relaxed.
        #[cfg(stealpool_mutant = "gate_relaxed")]
        let before = self.gate.fetch_sub(1, Ordering::Relaxed);
        if before == CLOSED | 1 {
            // SAFETY: the gate was closed with us inside, so the caller waits
            // on the latch and keeps it alive until it is set.
            unsafe { Latch::set(self.latch) };
        }
    }

    /// Closes the gate. Returns whether helpers are still inside, in which
    /// case the last one to leave sets the latch.
    fn close(&self) -> bool {
        // AcqRel. Acquire: if nobody is inside, synchronizes with every
        // helper's Release in `leave`, so their results are visible.
        #[cfg(not(stealpool_mutant = "gate_relaxed"))]
        let before = self.gate.fetch_or(CLOSED, Ordering::AcqRel);
        #[cfg(stealpool_mutant = "gate_relaxed")]
        let before = self.gate.fetch_or(CLOSED, Ordering::Relaxed);
        before != 0
    }

    /// Takes one recruit from the budget, if any is left.
    fn take_recruit(&self) -> bool {
        // Relaxed: a budget, guarding no data.
        self.recruits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Job for Ticket {
    unsafe fn execute(
        this: *const Self,
        worker: Option<&WorkerThread>,
        waiting: Waiting,
    ) -> Result<(), Declined> {
        // SAFETY: the job was made by `Arc::into_raw` and owns that
        // reference: it is dropped below once the job has run, and kept for
        // the queued job if the job declines.
        let ticket = ManuallyDrop::new(unsafe { Arc::from_raw(this) });
        let count = || worker.map(WorkerThread::count_job_run);
        // Tickets are queued only on their own pool, so a worker running one
        // is of that pool: its punctuality learns from this arrival.
        let arrival = ticket
            .engagement
            .arrives(worker.map(|worker| &worker.registry().engagement().punctuality));
        if ticket.enter() {
            // Inside the gate the call is alive: now the wait's rule can
            // look at it. A wait that does not accept it leaves the ticket
            // as it was (a caller that closed the gate meanwhile is woken by
            // our leaving, as after any helper).
            // SAFETY: alive inside the gate; the waiter's call is alive.
            if !unsafe { waiting.accepts(ticket.call) } {
                // SAFETY: as above.
                let chain = unsafe { chain_of(ticket.call) };
                // SAFETY: we entered above.
                unsafe { ticket.leave() };
                return Err(chain);
            }
            count();
            let _inside = worker.map(|worker| worker.enter(ticket.call));
            ticket.engagement.helper_starts(arrival);
            // SAFETY: inside the gate, `drive` is alive and of the type `help`
            // was instantiated with.
            unsafe { (ticket.help)(ticket.drive, &ticket) };
            // SAFETY: we entered above.
            unsafe { ticket.leave() };
        } else {
            count();
        }
        // Ran, or found closed: either way the job is done, and its
        // reference goes.
        drop(ManuallyDrop::into_inner(ticket));
        Ok(())
    }
}

/// A helper's part: recruit, then claim chunks.
///
/// # Safety
///
/// `drive` points to a live `Drive<B>`, and the calling helper is inside the
/// ticket's gate.
unsafe fn help<B, L>(drive: *const (), ticket: &Arc<Ticket>)
where
    B: Fn(&mut L, Range<usize>) -> bool + Sync,
    L: Default,
{
    // SAFETY: guaranteed by the caller.
    let drive = unsafe { &*drive.cast::<Drive<'_, B, L>>() };
    if let Some(worker) = WorkerThread::current() {
        for _ in 0..2 {
            if !drive.more_than_one_chunk_left() || !ticket.take_recruit() {
                break;
            }
            // SAFETY: as in `drive`: the new job owns one reference count.
            let job = unsafe { JobRef::new(Arc::into_raw(Arc::clone(ticket))) };
            // SAFETY: inside the gate the call is alive.
            unsafe { worker.push(job, ticket.call) };
        }
    }
    drive.participate_fresh();
}

#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod tests {
    use super::{fixed_wave, next_batch, Chunking, Drive, Outcome};
    use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};
    use crossbeam_utils::CachePadded;
    use std::marker::PhantomData;
    use std::ops::Range;

    type Body = fn(&mut (), Range<usize>) -> bool;

    /// A call of `len` items for `participants` threads, its cursor at
    /// `claimed`, whose body does nothing.
    fn drive(
        len: usize,
        chunking: Chunking,
        participants: usize,
        claimed: usize,
    ) -> Drive<'static, Body, ()> {
        static BODY: Body = |_, _| true;
        Drive {
            len,
            chunking,
            participants,
            body: &BODY,
            local: PhantomData,
            cursor: CachePadded::new(AtomicUsize::new(claimed)),
            stop: AtomicBool::new(false),
            failures: Mutex::new(Default::default()),
        }
    }

    #[test]
    fn the_solo_start_reads_the_clock_after_1_4_16_64_items() {
        let mut batch = 1;
        let mut ran = Vec::new();
        let mut total = 0;
        for _ in 0..4 {
            total += batch;
            ran.push(total);
            batch = next_batch(batch);
        }
        assert_eq!(ran, [1, 4, 16, 64]);
        assert_eq!(next_batch(usize::MAX), usize::MAX);
    }

    #[test]
    fn fixed_chunks_engage_a_helper_per_chunk_beyond_the_first() {
        assert_eq!(fixed_wave(9, 8, 3), 1);
        assert_eq!(fixed_wave(16, 8, 3), 1);
        assert_eq!(fixed_wave(17, 8, 3), 2);
        assert_eq!(fixed_wave(64, 8, 3), 3);
        assert_eq!(fixed_wave(usize::MAX, 1, 15), 15);
    }

    #[test]
    fn guided_claims_take_a_share_of_what_remains() {
        let call = drive(1000, Chunking::Adaptive, 2, 0);
        // remaining / (2 x participants), at least one once `claim` clamps.
        assert_eq!(call.chunk_len(1000), 250);
        assert_eq!(call.chunk_len(7), 1);
        assert_eq!(call.chunk_len(3), 0);
        let three = drive(1000, Chunking::Adaptive, 3, 0);
        assert_eq!(three.chunk_len(1000), 166);
        let fixed = drive(1000, Chunking::Fixed(64), 2, 0);
        assert_eq!(fixed.chunk_len(1000), 64);
        assert_eq!(fixed.chunk_len(3), 64);
        // Claims walk the cursor in order and shrink.
        let ranges: Vec<_> =
            std::iter::from_fn(|| call.claim(|left| call.chunk_len(left))).collect();
        assert_eq!(ranges[..3], [0..250, 250..437, 437..577]);
        assert_eq!(ranges.last(), Some(&(999..1000)));
        assert_eq!(call.cursor.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn a_recruit_is_worth_it_while_more_than_one_claim_is_left() {
        let at = |claimed| drive(100, Chunking::Adaptive, 2, claimed).more_than_one_chunk_left();
        assert!(at(0));
        assert!(at(98));
        assert!(!at(99));
        assert!(!at(100));
        let fixed =
            |claimed| drive(100, Chunking::Fixed(10), 2, claimed).more_than_one_chunk_left();
        assert!(fixed(89));
        assert!(!fixed(90));
    }

    fn finished(claimed: usize, failed: &[Range<usize>]) -> Vec<Range<usize>> {
        Outcome {
            claimed,
            failed: failed.to_vec(),
            panic: None,
        }
        .finished()
    }

    /// The empty range of a panicking state drop, beside a failed range that
    /// starts at the same index, in either order: the regression of a double
    /// free (the walk went back to 0 and finished `0..3` a second time).
    #[test]
    #[allow(clippy::single_range_in_vec_init)] // ranges of indices, not a Vec of them
    fn empty_failures_never_move_the_walk_back() {
        assert_eq!(finished(8, &[0..3, 0..0]), [3..8]);
        assert_eq!(finished(8, &[0..0, 0..3]), [3..8]);
        assert_eq!(finished(8, &[2..5, 0..0, 6..6, 5..5]), [0..2, 5..8]);
        assert_eq!(finished(0, &[0..0]), []);
    }

    /// Any set of disjoint failed ranges, empty ones anywhere among them:
    /// every claimed index not in a failed range is finished, exactly once.
    #[test]
    fn finished_is_the_complement_of_the_failures() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..10_000 {
            let claimed = next(40);
            let mut failed = Vec::new();
            let mut at = 0;
            while at < claimed {
                at += next(4);
                let len = next(4).min(claimed.saturating_sub(at));
                failed.push(at..at + len);
                at += len;
            }
            // Empty ranges, as a panicking state drop could record.
            for _ in 0..next(3) {
                let at = next(claimed + 1);
                failed.insert(next(failed.len() + 1), at..at);
            }
            let mut seen = vec![0u8; claimed];
            for range in finished(claimed, &failed) {
                for i in range {
                    seen[i] += 1;
                }
            }
            for (i, &count) in seen.iter().enumerate() {
                let failed_here = failed.iter().any(|range| range.contains(&i));
                assert_eq!(count, u8::from(!failed_here), "index {i} of {failed:?}");
            }
        }
    }
}

/// Whether a call asks for help that only a wake-up can bring, with the
/// pool's real sleep state and clock.
#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod asking {
    use crate::{Pool, PoolBuilder};
    use std::time::{Duration, Instant};

    /// About a millisecond of waiting (spun: the engine's files take
    /// threads and sleeps from `sync.rs` only, and a test needs none).
    fn pause() {
        let until = Instant::now() + Duration::from_millis(1);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// A pool of 2 whose workers both sleep idle.
    fn asleep_pool() -> Pool {
        asleep_pool_of(2)
    }

    /// A pool of `threads` whose workers all sleep idle.
    fn asleep_pool_of(threads: usize) -> Pool {
        let pool = Pool::new(threads).expect("a pool");
        let until = Instant::now() + Duration::from_secs(10);
        while pool.registry().sleep().idle_sleepers() < threads {
            assert!(Instant::now() < until, "the workers never slept");
            pause();
        }
        pool
    }

    /// About 2 ms of work in 2000 items.
    fn call(pool: &Pool) -> Vec<usize> {
        pool.map(0..2000, |i| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_micros(1) {}
            i
        })
    }

    #[test]
    fn a_call_that_a_woken_helper_cannot_reach_in_time_goes_on_alone() {
        crate::test_watchdog::arm();
        let pool = asleep_pool();
        // Wake-ups take 10 s here: no help can arrive within 2 ms.
        pool.registry()
            .engagement()
            .punctuality
            .observe(10_000_000_000);
        let out = call(&pool);
        assert_eq!(out, (0..2000).collect::<Vec<_>>());
        let stats = pool.stats();
        assert_eq!(stats.calls_asking_help, 0, "{stats:?}");
        assert_eq!(stats.wakeups, 0, "{stats:?}");
        // It declined, and the estimate came down a step.
        let wake = pool.registry().engagement().punctuality.wake();
        assert!(wake < Duration::from_secs(10), "{wake:?}");
    }

    /// The wake-up estimate matters only while every other worker sleeps:
    /// with one awake (polling), even a 10 s estimate asks.
    #[test]
    fn a_call_asks_while_a_worker_is_awake_whatever_the_estimate() {
        crate::test_watchdog::arm();
        let pool = PoolBuilder::default()
            .threads(2)
            .idle_poll(Duration::from_secs(3600))
            .build()
            .expect("a pool of 2");
        pool.registry()
            .engagement()
            .punctuality
            .observe(10_000_000_000);
        assert_eq!(call(&pool), (0..2000).collect::<Vec<_>>());
        assert_eq!(pool.stats().calls_asking_help, 1);
    }

    /// A call over before the solo start's first look at the clock that
    /// counts (`PROMOTE_AFTER`) never considers help: it does not even
    /// decline (which would lower the wake-up estimate). Retried, because
    /// a thread held up for 5 µs on a loaded machine does look.
    #[test]
    fn a_call_within_the_solo_start_never_considers_help() {
        crate::test_watchdog::arm();
        let pool = asleep_pool();
        let punctuality = &pool.registry().engagement().punctuality;
        let untouched = (0..20).any(|_| {
            punctuality.observe(10_000_000_000);
            let wake = punctuality.wake();
            assert_eq!(pool.map(0..16, |i| i), (0..16).collect::<Vec<_>>());
            punctuality.wake() == wake
        });
        assert!(untouched, "every call of 16 items declined help");
        assert_eq!(pool.stats().calls_asking_help, 0);
    }

    /// A wave cut short by the wake-up estimate still gets every helper:
    /// the first to arrive recruits the others. 40 items of at least 1 ms
    /// (slept, so a loaded machine changes little): the call decides after
    /// its first item, at 39 items of that item's time left, so with an
    /// 18 ms estimate it asks (39 ms > 2 x 18) for a wave of one helper
    /// unless that first sleep overran by 85 % (< 4 x 18), and the one
    /// must bring the other two.
    #[test]
    fn helpers_left_out_of_a_wave_are_recruited() {
        crate::test_watchdog::arm();
        let pool = asleep_pool_of(4);
        pool.registry().engagement().punctuality.observe(18_000_000);
        let out = pool.map(0..40, |i| {
            crate::sync::thread::sleep(Duration::from_millis(1));
            i
        });
        assert_eq!(out, (0..40).collect::<Vec<_>>());
        let stats = pool.stats();
        assert_eq!(stats.calls_asking_help, 1, "{stats:?}");
        assert_eq!(stats.helpers_started, 3, "{stats:?}");
    }

    /// Fixed chunks ask at once, but only when there is a chunk to give.
    #[test]
    fn fixed_chunks_ask_when_there_is_more_than_one() {
        crate::test_watchdog::arm();
        let pool = asleep_pool();
        let one = pool.options().chunk_size(8).map(0..8, |i| i);
        assert_eq!(one, (0..8).collect::<Vec<_>>());
        assert_eq!(pool.stats().calls_asking_help, 0);
        let two = pool.options().chunk_size(8).map(0..9, |i| i);
        assert_eq!(two, (0..9).collect::<Vec<_>>());
        assert_eq!(pool.stats().calls_asking_help, 1);
    }

    #[test]
    fn a_call_asks_while_no_wake_up_was_seen_and_learns_from_it() {
        crate::test_watchdog::arm();
        let pool = asleep_pool();
        let out = call(&pool);
        assert_eq!(out, (0..2000).collect::<Vec<_>>());
        assert_eq!(pool.stats().calls_asking_help, 1);
        // The woken worker's arrival (during the call or after it) is
        // observed.
        let until = Instant::now() + Duration::from_secs(10);
        while pool.registry().engagement().punctuality.wake().is_zero() {
            assert!(Instant::now() < until, "no arrival was observed");
            pause();
        }
    }
}
