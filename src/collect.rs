//! The core of the `map` family over a [`Source`]: results written in place,
//! in input order, per-item cancellation and progress (a [`Watch`]), and the
//! clean-up of a call that stops early.
//!
//! The output is a `Vec<R>` with capacity `len` whose slots the chunks write
//! directly (each index by exactly one chunk, as the drive's claims are
//! disjoint). Its length is set only once every chunk has finished. If a call
//! fails, exactly the results written are dropped, once each: those of the
//! finished chunks (the drive's [`Outcome`]) and the prefix that a failing
//! chunk wrote before it stopped (recorded by its [`Record`] guard). They
//! are dropped by the caller after every chunk has stopped, one at a time,
//! so that a result whose `Drop` panics neither aborts the process (as it
//! would if dropped while the chunk unwinds) nor hides the call's panic.
//! Then the items of an owned input that no chunk took are dropped the same
//! way.
//!
//! A watched call (a [`CancelToken`](crate::CancelToken), a deadline or a
//! [`Progress`](crate::Progress)) looks at its [`Watch`] before every item
//! and counts every item finished; a chunk that sees the stop ends as a
//! failed one does, and the call returns [`Cancelled`]. A plain call watches
//! `()`, for which those checks compile to nothing.

use crate::control::{Cancelled, Watch};
use crate::drive::{drive, Chunking};
use crate::input::{drop_untaken, Source, Taking};
use crate::panic::{discard, drop_each, Panic};
use crate::registry::Registry;
use crate::sync::{into_inner, lock, Arc, Mutex, Ordering};
use std::convert::Infallible;
use std::ops::Range;
use std::panic::resume_unwind;

/// A pointer to the output buffer that chunks on any thread may write through.
struct Out<R>(*mut R);

// SAFETY: chunks write disjoint indices (the drive's claims are disjoint), and
// the values written are `R: Send`.
unsafe impl<R: Send> Sync for Out<R> {}

/// Records, if a chunk unwinds or fails, the results it wrote and the units
/// it never started, for the caller to drop once every chunk has stopped.
struct Record<'a, E> {
    start: usize,
    /// Results were written for `start..written`.
    written: usize,
    /// Whether unit `written` was never started (the watch stopped the
    /// chunk before it). Otherwise it started, took its item, and failed.
    stopped_before: bool,
    end: usize,
    stopped: &'a Mutex<Stopped<E>>,
}

/// What the chunks that stopped early left for the caller, one lock for all.
struct Stopped<E> {
    /// The first error `f` returned.
    first_error: Option<E>,
    /// The results written by chunks that stopped.
    partial: Vec<Range<usize>>,
    /// The units that chunks that stopped never started.
    untaken: Vec<Range<usize>>,
}

impl<E> Drop for Record<'_, E> {
    fn drop(&mut self) {
        // `lock` ignores poisoning, so this cannot panic while the chunk
        // unwinds (short of running out of memory, which aborts).
        let next = self.written + usize::from(!self.stopped_before);
        let mut stopped = lock(self.stopped);
        if self.written > self.start {
            stopped.partial.push(self.start..self.written);
        }
        if self.end > next {
            stopped.untaken.push(next..self.end);
        }
    }
}

/// Why a call of the family stopped early. The results it made are already
/// dropped; what is left is to drop the items it never took (see
/// [`untaken`](Failure::untaken)) and to [`raise`](Failure::raise) it.
pub(crate) struct Failure<E> {
    /// The call's panic, if any.
    panic: Option<Panic>,
    /// The first panic of a value dropped during the clean-up.
    drop_panic: Option<Panic>,
    /// The first error `f` returned. (Neither a panic nor an error: the call
    /// was cancelled.)
    error: Option<E>,
    /// What to return if the call was cancelled.
    cancelled: Cancelled,
    /// The units that never started, whose items are still in the input.
    pub(crate) untaken: Vec<Range<usize>>,
}

impl<E> Failure<E> {
    /// Notes the first panic of a later clean-up drop.
    pub(crate) fn dropped(&mut self, drop_panic: Option<Panic>) {
        match (drop_panic, &self.drop_panic) {
            (Some(panic), None) => self.drop_panic = Some(panic),
            (Some(extra), Some(_)) => discard(extra),
            (None, _) => {}
        }
    }

    /// Re-raises the call's panic, or else the first panic of a clean-up
    /// drop, or else returns the error, or else (the call was cancelled)
    /// the [`Cancelled`].
    #[cold]
    pub(crate) fn raise(self) -> Stop<E> {
        if let Some(panic) = self.panic {
            if let Some(extra) = self.drop_panic {
                discard(extra);
            }
            resume_unwind(panic);
        }
        if let Some(panic) = self.drop_panic {
            resume_unwind(panic);
        }
        match self.error {
            Some(error) => Stop::Error(error),
            // A range fails only by panicking, by recording an error, or by
            // seeing its watch stop it.
            None => Stop::Cancelled(self.cancelled),
        }
    }
}

/// How a call that did not panic stopped early.
pub(crate) enum Stop<E> {
    /// `f` returned this error (the first, in time).
    Error(E),
    /// The watch stopped the call.
    Cancelled(Cancelled),
}

/// Runs `unit(state, i)` for every `i` in `0..len`, in parallel, and returns
/// the results in index order; stops at the first error or panic.
///
/// `state` is made by `init` at most once per participating thread (lazily,
/// on a thread's first chunk) and passed to every unit it runs. Each chunk
/// makes its `unit` with `units()`, so that what a unit reads to find its
/// item (a [`Source`]'s cursor) is a local of the chunk's loop, not a load
/// through shared memory after every item. A unit is called at most once
/// per index, and every index it is called with is below `len`: a unit is
/// where the caller takes its item from the input.
///
/// Before each unit it asks `watch` whether to stop, and counts each unit
/// finished.
///
/// On failure every result made is dropped (once each, after every chunk has
/// stopped) and the [`Failure`] lists the units that never started.
pub(crate) fn collect<W, St, R, E, I, M, U>(
    registry: &Arc<Registry>,
    len: usize,
    chunking: Chunking,
    watch: &W,
    init: I,
    units: M,
) -> Result<Vec<R>, Failure<E>>
where
    W: Watch,
    R: Send,
    E: Send,
    I: Fn() -> St + Sync,
    M: Fn() -> U + Sync,
    U: FnMut(&mut St, usize) -> Result<R, E>,
{
    let mut output: Vec<R> = Vec::with_capacity(len);
    let out = Out(output.as_mut_ptr());
    let stopped = Mutex::new(Stopped {
        first_error: None,
        partial: Vec::new(),
        untaken: Vec::new(),
    });
    let body = |state: &mut Option<St>, range: Range<usize>| -> bool {
        let state = match state {
            Some(state) => state,
            None => state.insert(init()),
        };
        // Copied out of the shared `Out` (borrowed whole, which is `Sync`):
        // kept in a register by the loop.
        let out = &out;
        let out = out.0;
        let mut unit = units();
        let mut record = Record {
            start: range.start,
            written: range.start,
            stopped_before: false,
            end: range.end,
            stopped: &stopped,
        };
        let counter = watch.counter();
        let signal = watch.signal();
        for i in range {
            if W::WATCHED && signal.raised() {
                record.stopped_before = true;
                return false;
            }
            match unit(state, i) {
                Ok(result) => {
                    // SAFETY: index `i` is ours alone and inside the capacity.
                    unsafe { out.add(i).write(result) };
                    record.written = i + 1;
                    if let Some(counter) = counter {
                        // Relaxed: a count for display.
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(error) => {
                    drop(record);
                    let mut stopped = lock(&stopped);
                    if stopped.first_error.is_none() {
                        stopped.first_error = Some(error);
                    }
                    return false;
                }
            }
        }
        std::mem::forget(record);
        true
    };
    let mut outcome = drive(registry, len, chunking, &body);
    if outcome.panic.is_none() && outcome.failed.is_empty() {
        // SAFETY: every index below `len` was claimed and finished, so every
        // slot holds a result, and no chunk is running any more.
        unsafe { output.set_len(len) };
        return Ok(output);
    }
    let Stopped {
        first_error,
        partial,
        mut untaken,
    } = into_inner(stopped);
    let written: Vec<Range<usize>> = outcome.finished().into_iter().chain(partial).collect();
    // An item finished exactly when its result was written: the count for
    // `Cancelled` comes from here, not from a count kept per chunk (a
    // read-modify-write per chunk that every watched call would pay).
    let finished = written.iter().map(ExactSizeIterator::len).sum();
    // One at a time, each under `catch_unwind` (`drop_each`): every result is
    // dropped even if some drops panic.
    // SAFETY: finished ranges and the written prefixes of failed ones are
    // disjoint and hold results that no one else drops (the output's length
    // is still 0, and every chunk has stopped); each index is read once.
    let drop_panic = drop_each(
        written
            .into_iter()
            .flatten()
            .map(|i| unsafe { out.0.add(i).read() }),
    );
    untaken.push(outcome.claimed..len);
    Err(Failure {
        panic: outcome.panic,
        drop_panic,
        error: first_error,
        cancelled: Cancelled { finished },
        untaken,
    })
}

/// Maps the items of `source` through `f`, with a state made by `init` at
/// most once per participating thread and passed to every call of `f` on
/// that thread; stops at the first error or when `watch` says so, then drops
/// the items never taken.
pub(crate) fn try_map_init<S, W, St, R, E, I, F>(
    registry: &Arc<Registry>,
    source: S,
    chunking: Chunking,
    watch: &W,
    init: I,
    f: F,
) -> Result<Vec<R>, Stop<E>>
where
    S: Source,
    W: Watch,
    R: Send,
    E: Send,
    I: Fn() -> St + Sync,
    F: Fn(&mut St, S::Item) -> Result<R, E> + Sync,
{
    let f = &f;
    let units = || {
        let cursor = source.cursor();
        // SAFETY: `collect` calls a unit once per index below `len`, while
        // `source` is alive.
        move |state: &mut St, i: usize| f(state, unsafe { S::take_at(cursor, i) })
    };
    match collect(registry, source.len(), chunking, watch, init, units) {
        Ok(output) => Ok(output),
        Err(mut failure) => {
            // SAFETY: the units that never started took no item.
            let drop_panic = unsafe { drop_untaken(&source, failure.untaken.drain(..)) };
            failure.dropped(drop_panic);
            Err(failure.raise())
        }
    }
}

/// [`try_map_init`] for an `f` that cannot fail: the results, or
/// [`Cancelled`].
pub(crate) fn map_init<S, W, St, R, I, F>(
    registry: &Arc<Registry>,
    source: S,
    chunking: Chunking,
    watch: &W,
    init: I,
    f: F,
) -> Result<Vec<R>, Cancelled>
where
    S: Source,
    W: Watch,
    R: Send,
    I: Fn() -> St + Sync,
    F: Fn(&mut St, S::Item) -> R + Sync,
{
    let f = |state: &mut St, item| Ok::<R, Infallible>(f(state, item));
    match try_map_init(registry, source, chunking, watch, init, f) {
        Ok(output) => Ok(output),
        Err(Stop::Cancelled(cancelled)) => Err(cancelled),
        Err(Stop::Error(never)) => match never {},
    }
}

/// The result of a call that watches nothing, which cannot be cancelled.
pub(crate) fn never_cancelled<T>(result: Result<T, Cancelled>) -> T {
    match result {
        Ok(value) => value,
        Err(_) => unreachable!("a call that watches nothing was cancelled"),
    }
}

/// Runs `f` on every item of `source`, or until `watch` says to stop; after
/// a panic or a stop, drops the items never taken, then re-raises the panic
/// or returns [`Cancelled`].
pub(crate) fn for_each<S, W, F>(
    registry: &Arc<Registry>,
    source: S,
    chunking: Chunking,
    watch: &W,
    f: F,
) -> Result<(), Cancelled>
where
    S: Source,
    W: Watch,
    F: Fn(S::Item) + Sync,
{
    let untaken: Mutex<Vec<Range<usize>>> = Mutex::new(Vec::new());
    let body = |_: &mut (), range: Range<usize>| -> bool {
        // SAFETY: the drive's claims are disjoint and below `len`.
        let mut items = unsafe { Taking::new(&source, range, &untaken) };
        if !W::WATCHED {
            items.for_each(&f);
            return true;
        }
        let counter = watch.counter();
        let signal = watch.signal();
        let mut done = 0;
        let finished = loop {
            if signal.raised() {
                break false;
            }
            let Some(item) = items.next() else {
                break true;
            };
            f(item);
            done += 1;
            if let Some(counter) = counter {
                // Relaxed: a count for display.
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        watch.finished(done);
        finished
    };
    let outcome = drive(registry, source.len(), chunking, &body);
    if outcome.panic.is_none() && outcome.failed.is_empty() {
        return Ok(());
    }
    let mut untaken = into_inner(untaken);
    untaken.push(outcome.claimed..source.len());
    // SAFETY: a range stopped by a panic or the watch recorded the items it
    // did not take, and the claims ended at `claimed`.
    let drop_panic = unsafe { drop_untaken(&source, untaken) };
    if let Some(panic) = outcome.panic {
        if let Some(extra) = drop_panic {
            discard(extra);
        }
        resume_unwind(panic);
    }
    if let Some(panic) = drop_panic {
        resume_unwind(panic);
    }
    Err(watch.cancelled())
}
