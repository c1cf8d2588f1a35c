//! The `map` family over a slice: results written in place, in input order.
//!
//! The output is a `Vec<R>` with capacity `len` whose slots the chunks write
//! directly (each index by exactly one chunk, as the drive's claims are
//! disjoint). Its length is set only once every chunk has finished. If a call
//! fails, exactly the results written are dropped, once each: those of the
//! finished chunks (the drive's [`Outcome`]) and the prefix that a failing
//! chunk wrote before it stopped (recorded by its [`Written`] guard). They
//! are dropped by the caller after every chunk has stopped, one at a time,
//! so that a result whose `Drop` panics neither aborts the process (as it
//! would if dropped while the chunk unwinds) nor hides the call's panic.

use crate::drive::{drive, Chunking, Outcome};
use crate::panic::{drop_caught, keep_first, Panic};
use crate::registry::Registry;
use crate::sync::{into_inner, lock, Arc, Mutex};
use std::ops::Range;
use std::panic::resume_unwind;

/// A pointer to the output buffer that chunks on any thread may write through.
struct Out<R>(*mut R);

// SAFETY: chunks write disjoint indices (the drive's claims are disjoint), and
// the values written are `R: Send`.
unsafe impl<R: Send> Sync for Out<R> {}

/// Records the results a chunk wrote if the chunk unwinds or fails, for the
/// caller to drop once every chunk has stopped.
struct Written<'a> {
    start: usize,
    end: usize,
    partial: &'a Mutex<Vec<Range<usize>>>,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        if self.end > self.start {
            // `lock` ignores poisoning, so this cannot panic while the chunk
            // unwinds (short of running out of memory, which aborts).
            lock(self.partial).push(self.start..self.end);
        }
    }
}

/// Drops the results in `range` one at a time, keeping the first panic a
/// `Drop` raises in `first` (and discarding later ones): every result is
/// dropped even if some drops panic.
///
/// # Safety
///
/// Every index of `range` holds an initialized result that nobody else will
/// drop or read.
unsafe fn drop_results<R>(out: *mut R, range: Range<usize>, first: &mut Option<Panic>) {
    for i in range {
        // SAFETY: guaranteed by the caller; each index is read once.
        let result = unsafe { out.add(i).read() };
        if let Some(panic) = drop_caught(result) {
            keep_first(first, panic);
        }
    }
}

/// Maps `input` through `f`, stopping at the first error.
pub(crate) fn try_map<T, R, E, F>(
    registry: &Arc<Registry>,
    input: &[T],
    chunking: Chunking,
    f: F,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
    F: Fn(&T) -> Result<R, E> + Sync,
{
    try_map_init(registry, input, chunking, || (), |(), item| f(item))
}

/// Maps `input` through `f`, with a state made by `init` at most once per
/// participating thread and passed to every call of `f` on that thread;
/// stops at the first error.
pub(crate) fn try_map_init<T, S, R, E, I, F>(
    registry: &Arc<Registry>,
    input: &[T],
    chunking: Chunking,
    init: I,
    f: F,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, &T) -> Result<R, E> + Sync,
{
    let len = input.len();
    let mut output: Vec<R> = Vec::with_capacity(len);
    let out = Out(output.as_mut_ptr());
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let partial: Mutex<Vec<Range<usize>>> = Mutex::new(Vec::new());
    let body = |state: &mut Option<S>, range: Range<usize>| -> bool {
        let state = match state {
            Some(state) => state,
            None => state.insert(init()),
        };
        let out = &out;
        let mut written = Written {
            start: range.start,
            end: range.start,
            partial: &partial,
        };
        for i in range {
            // SAFETY: the drive only claims indices below `len`.
            let item = unsafe { input.get_unchecked(i) };
            match f(state, item) {
                Ok(result) => {
                    // SAFETY: index `i` is ours alone and inside the capacity.
                    unsafe { out.0.add(i).write(result) };
                    written.end = i + 1;
                }
                Err(error) => {
                    drop(written);
                    let mut first = lock(&first_error);
                    if first.is_none() {
                        *first = Some(error);
                    }
                    return false;
                }
            }
        }
        std::mem::forget(written);
        true
    };
    let outcome = drive(registry, len, chunking, &body);
    if outcome.panic.is_none() && outcome.failed.is_empty() {
        // SAFETY: every index below `len` was claimed and finished, so every
        // slot holds a result, and no chunk is running any more.
        unsafe { output.set_len(len) };
        return Ok(output);
    }
    fail(outcome, out.0, into_inner(partial), into_inner(first_error))
}

/// Cleans up a failed call: drops the results written (by finished chunks,
/// and the prefixes `partial` of failed ones), then re-raises the call's
/// panic, or else the first panic of a result's `Drop`, or returns the error.
#[cold]
fn fail<R, E>(
    mut outcome: Outcome,
    out: *mut R,
    partial: Vec<Range<usize>>,
    first_error: Option<E>,
) -> Result<Vec<R>, E> {
    let mut drop_panic = None;
    for range in outcome.finished().into_iter().chain(partial) {
        // SAFETY: finished ranges and the written prefixes of failed ones are
        // disjoint and hold results that no one else drops (the output's
        // length is still 0, and every chunk has stopped).
        unsafe { drop_results(out, range, &mut drop_panic) };
    }
    if let Some(panic) = outcome.panic {
        if let Some(extra) = drop_panic {
            crate::panic::discard(extra);
        }
        resume_unwind(panic);
    }
    if let Some(panic) = drop_panic {
        resume_unwind(panic);
    }
    match first_error {
        Some(error) => Err(error),
        // A range fails only by panicking or by recording an error.
        None => unreachable!("a failed map with neither a panic nor an error"),
    }
}

/// Runs `f` on every item of `input`.
pub(crate) fn for_each<T, F>(registry: &Arc<Registry>, input: &[T], chunking: Chunking, f: F)
where
    T: Sync,
    F: Fn(&T) + Sync,
{
    let body = |_: &mut (), range: Range<usize>| -> bool {
        // Checked slicing: one bounds check per chunk, not per item.
        input[range].iter().for_each(&f);
        true
    };
    let outcome = drive(registry, input.len(), chunking, &body);
    if let Some(panic) = outcome.panic {
        resume_unwind(panic);
    }
}
