//! The `map` family over a slice (`Pool::map`, `map_chunked`, `try_map`,
//! `map_init`, `for_each`): results written in place, in input order.
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
use crate::panic::drop_each;
use crate::registry::Registry;
use crate::sync::{into_inner, lock, Arc, Mutex};
use crate::Pool;
use std::convert::Infallible;
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
    let written = outcome.finished().into_iter().chain(partial).flatten();
    // One at a time, each under `catch_unwind` (`drop_each`): every result is
    // dropped even if some drops panic.
    // SAFETY: finished ranges and the written prefixes of failed ones are
    // disjoint and hold results that no one else drops (the output's length
    // is still 0, and every chunk has stopped); each index is read once.
    let drop_panic = drop_each(written.map(|i| unsafe { out.add(i).read() }));
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

impl Pool {
    /// Applies `f` to every item of `input` in parallel and returns the results
    /// in input order.
    ///
    /// `input` and `f` are borrowed for the call only, so `f` may use local
    /// variables. The calling thread does the first part of the work itself
    /// and hands the rest to the workers only once the call has run long
    /// enough for that to pay off, so a small call costs about what a plain
    /// loop costs; after that, chunks are sized adaptively for both uniform
    /// and skewed per-item costs.
    ///
    /// At most [`threads`](Self::threads) threads work on one call at once,
    /// the calling thread included: from outside the pool, the caller and up
    /// to `threads - 1` workers (so a 1-thread pool runs an outside call on
    /// the caller alone).
    ///
    /// Called from one of this pool's workers (a nested map), the caller
    /// helps with this call's own work (and the calls nested in it) while it
    /// waits, nothing else; called from a worker of another pool, that worker
    /// keeps running its own pool's jobs, except those of the calls around
    /// this one (see "Waiting runs only the call's work" in the crate
    /// documentation); called from any other thread, it blocks once it has
    /// nothing left to do.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is re-raised here with its original payload,
    /// once every chunk has stopped. Chunks not yet started are skipped, and
    /// the results already produced are dropped. The pool stays usable.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let words = ["a", "bb", "ccc"];
    /// let suffix = String::from("!");
    /// let loud = pool.map(&words, |w| format!("{w}{suffix}"));
    /// assert_eq!(loud, ["a!", "bb!", "ccc!"]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    ///
    /// `f` is shared by the threads of the call, so it cannot use an `Rc`:
    ///
    /// ```compile_fail,E0277
    /// let pool = stealpool::Pool::new(2).unwrap();
    /// let offset = std::rc::Rc::new(1);
    /// let shifted = pool.map(&[1, 2, 3], |x| x + *offset);
    /// ```
    pub fn map<T, R, F>(&self, input: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        let result = try_map(self.registry(), input, Chunking::Adaptive, |item| {
            Ok::<R, Infallible>(f(item))
        });
        match result {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Like [`map`](Self::map), with chunks of exactly `chunk_size` items
    /// (the last may be shorter), like the `chunksize` of Python's
    /// `Pool.map`: each chunk runs on one thread, in order.
    ///
    /// Unlike `map`, the chunks are offered to the workers at once, without a
    /// solo start: use it when you know each chunk is worth a thread.
    ///
    /// # Panics
    ///
    /// If `chunk_size` is 0, and as [`map`](Self::map) does if `f` panics.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let input: Vec<u32> = (0..10).collect();
    /// let doubled = pool.map_chunked(&input, 3, |x| x * 2);
    /// assert_eq!(doubled, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_chunked<T, R, F>(&self, input: &[T], chunk_size: usize, f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        assert!(
            chunk_size > 0,
            "stealpool: map_chunked needs a chunk_size of at least 1"
        );
        let result = try_map(
            self.registry(),
            input,
            Chunking::Fixed(chunk_size),
            |item| Ok::<R, Infallible>(f(item)),
        );
        match result {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Like [`map`](Self::map) for a fallible `f`: returns all results in
    /// input order, or the first error seen.
    ///
    /// After an error, chunks not yet started are skipped (chunks already
    /// running finish), and the results already produced are dropped.
    ///
    /// # Errors
    ///
    /// The first error `f` returned, in time (not necessarily the one of the
    /// lowest index).
    ///
    /// # Panics
    ///
    /// As [`map`](Self::map) does if `f` panics; a panic wins over an error.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let parsed: Result<Vec<i32>, _> = pool.try_map(&["1", "2", "3"], |s| s.parse::<i32>());
    /// assert_eq!(parsed.unwrap(), [1, 2, 3]);
    /// let failed: Result<Vec<i32>, _> = pool.try_map(&["1", "x"], |s| s.parse::<i32>());
    /// assert!(failed.is_err());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn try_map<T, R, E, F>(&self, input: &[T], f: F) -> Result<Vec<R>, E>
    where
        T: Sync,
        R: Send,
        E: Send,
        F: Fn(&T) -> Result<R, E> + Sync,
    {
        try_map(self.registry(), input, Chunking::Adaptive, f)
    }

    /// Like [`map`](Self::map), giving `f` a per-thread state made by `init`
    /// (rayon's `map_init`): for buffers, decoders or resizers that are
    /// costly to build and can be reused from item to item.
    ///
    /// `init` runs at most once per thread that takes part in the call (the
    /// caller included), and only on threads that get some items. (A worker
    /// that blocks inside `f` on this same pool may take up this call again
    /// while waiting, and then makes a second state.) The states are dropped
    /// on their threads when the call ends.
    ///
    /// # Panics
    ///
    /// As [`map`](Self::map) does if `init`, `f` or a state's drop panics.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = stealpool::Pool::new(2)?;
    /// let inits = AtomicUsize::new(0);
    /// let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    /// let lengths = pool.map_init(
    ///     &lines,
    ///     || {
    ///         inits.fetch_add(1, Ordering::Relaxed);
    ///         String::with_capacity(64) // a scratch buffer, reused
    ///     },
    ///     |buffer, line| {
    ///         buffer.clear();
    ///         buffer.push_str(line);
    ///         buffer.len()
    ///     },
    /// );
    /// assert_eq!(lengths[10], 7);
    /// assert!(inits.into_inner() <= pool.threads());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_init<T, S, R, I, F>(&self, input: &[T], init: I, f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        I: Fn() -> S + Sync,
        F: Fn(&mut S, &T) -> R + Sync,
    {
        let result = try_map_init(
            self.registry(),
            input,
            Chunking::Adaptive,
            init,
            |state, item| Ok::<R, Infallible>(f(state, item)),
        );
        match result {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Runs `f` on every item of `input` in parallel, with the adaptive
    /// chunking of [`map`](Self::map).
    ///
    /// # Panics
    ///
    /// As [`map`](Self::map) does if `f` panics.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let pool = stealpool::Pool::new(2)?;
    /// let total = AtomicU64::new(0);
    /// pool.for_each(&[1, 2, 3, 4], |x| {
    ///     total.fetch_add(*x, Ordering::Relaxed);
    /// });
    /// assert_eq!(total.into_inner(), 10);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn for_each<T, F>(&self, input: &[T], f: F)
    where
        T: Sync,
        F: Fn(&T) + Sync,
    {
        for_each(self.registry(), input, Chunking::Adaptive, f);
    }
}
