//! The `map` family over a slice: results written in place, in input order.
//!
//! The output is a `Vec<R>` with capacity `len` whose slots the chunks write
//! directly (each index by exactly one chunk, as the drive's claims are
//! disjoint). Its length is set only once every chunk has finished. If a call
//! fails, exactly the results of the finished chunks are dropped, using the
//! drive's [`Outcome`]; a failing chunk drops the results it wrote itself.

use crate::drive::{drive, Chunking, Outcome};
use crate::registry::Registry;
use crate::sync::{lock, Arc, Mutex};
use std::ops::Range;
use std::panic::resume_unwind;

/// A pointer to the output buffer that chunks on any thread may write through.
struct Out<R>(*mut R);

// SAFETY: chunks write disjoint indices (the drive's claims are disjoint), and
// the values written are `R: Send`.
unsafe impl<R: Send> Sync for Out<R> {}

/// Drops the results a chunk wrote if the chunk unwinds or fails.
struct Written<R> {
    out: *mut R,
    start: usize,
    end: usize,
}

impl<R> Drop for Written<R> {
    fn drop(&mut self) {
        // SAFETY: indices `start..end` were written by this chunk and not yet
        // handed to anyone else.
        unsafe { drop_results(self.out, self.start..self.end) };
    }
}

/// Drops the results in `range`.
///
/// # Safety
///
/// Every index of `range` holds an initialized result that nobody else will
/// drop or read.
unsafe fn drop_results<R>(out: *mut R, range: Range<usize>) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let slice = std::ptr::slice_from_raw_parts_mut(out.add(range.start), range.len());
        std::ptr::drop_in_place(slice);
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
    let body = |state: &mut Option<S>, range: Range<usize>| -> bool {
        let state = match state {
            Some(state) => state,
            None => state.insert(init()),
        };
        let out = &out;
        let mut written = Written {
            out: out.0,
            start: range.start,
            end: range.start,
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
    fail(outcome, out.0, first_error)
}

/// Cleans up a failed call: drops the finished results, then re-raises the
/// panic or returns the error.
#[cold]
fn fail<R, E>(
    mut outcome: Outcome,
    out: *mut R,
    first_error: Mutex<Option<E>>,
) -> Result<Vec<R>, E> {
    for range in outcome.finished() {
        // SAFETY: finished ranges hold results that no one else drops (the
        // output's length is still 0).
        unsafe { drop_results(out, range) };
    }
    if let Some(panic) = outcome.panic {
        resume_unwind(panic);
    }
    let error = match first_error.into_inner() {
        Ok(error) => error,
        Err(poisoned) => poisoned.into_inner(),
    };
    match error {
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
