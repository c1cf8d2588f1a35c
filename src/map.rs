//! The `map` family (`Pool::map`, `map_chunked`, `try_map`, `map_init`,
//! `for_each`) over any [`Input`]: results written in place, in input order.
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

use crate::drive::{drive, Chunking};
use crate::input::{drop_untaken, Input, Source, Taking};
use crate::panic::{discard, drop_each, Panic};
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

/// Records, if a chunk unwinds or fails, the results it wrote and the units
/// it never started, for the caller to drop once every chunk has stopped.
struct Record<'a> {
    start: usize,
    /// Results were written for `start..written`.
    written: usize,
    /// Units `start..next` started (took their item).
    next: usize,
    end: usize,
    partial: &'a Mutex<Vec<Range<usize>>>,
    untaken: &'a Mutex<Vec<Range<usize>>>,
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        // `lock` ignores poisoning, so this cannot panic while the chunk
        // unwinds (short of running out of memory, which aborts).
        if self.written > self.start {
            lock(self.partial).push(self.start..self.written);
        }
        if self.end > self.next {
            lock(self.untaken).push(self.next..self.end);
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
    /// The first error `f` returned.
    error: Option<E>,
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

    /// [`raise`](Self::raise) as a result.
    pub(crate) fn into_err<T>(self) -> Result<T, E> {
        Err(self.raise())
    }

    /// Re-raises the call's panic, or else the first panic of a clean-up
    /// drop, or else returns the error.
    #[cold]
    pub(crate) fn raise(self) -> E {
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
            Some(error) => error,
            // A range fails only by panicking or by recording an error.
            None => unreachable!("a failed map with neither a panic nor an error"),
        }
    }
}

/// Runs `unit(state, i)` for every `i` in `0..len`, in parallel, and returns
/// the results in index order; stops at the first error or panic.
///
/// `state` is made by `init` at most once per participating thread (lazily,
/// on a thread's first chunk) and passed to every unit it runs. `unit` is
/// called at most once per index, and every index it is called with is
/// below `len`: a unit is where the caller takes its item from the input.
///
/// On failure every result made is dropped (once each, after every chunk has
/// stopped) and the [`Failure`] lists the units that never started.
pub(crate) fn collect<St, R, E, I, U>(
    registry: &Arc<Registry>,
    len: usize,
    chunking: Chunking,
    init: I,
    unit: U,
) -> Result<Vec<R>, Failure<E>>
where
    R: Send,
    E: Send,
    I: Fn() -> St + Sync,
    U: Fn(&mut St, usize) -> Result<R, E> + Sync,
{
    let mut output: Vec<R> = Vec::with_capacity(len);
    let out = Out(output.as_mut_ptr());
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let partial: Mutex<Vec<Range<usize>>> = Mutex::new(Vec::new());
    let untaken: Mutex<Vec<Range<usize>>> = Mutex::new(Vec::new());
    let body = |state: &mut Option<St>, range: Range<usize>| -> bool {
        let state = match state {
            Some(state) => state,
            None => state.insert(init()),
        };
        let out = &out;
        let mut record = Record {
            start: range.start,
            written: range.start,
            next: range.start,
            end: range.end,
            partial: &partial,
            untaken: &untaken,
        };
        for i in range {
            record.next = i + 1;
            match unit(state, i) {
                Ok(result) => {
                    // SAFETY: index `i` is ours alone and inside the capacity.
                    unsafe { out.0.add(i).write(result) };
                    record.written = i + 1;
                }
                Err(error) => {
                    drop(record);
                    let mut first = lock(&first_error);
                    if first.is_none() {
                        *first = Some(error);
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
    let written = outcome.finished().into_iter().chain(into_inner(partial));
    // One at a time, each under `catch_unwind` (`drop_each`): every result is
    // dropped even if some drops panic.
    // SAFETY: finished ranges and the written prefixes of failed ones are
    // disjoint and hold results that no one else drops (the output's length
    // is still 0, and every chunk has stopped); each index is read once.
    let drop_panic = drop_each(written.flatten().map(|i| unsafe { out.0.add(i).read() }));
    let mut untaken = into_inner(untaken);
    untaken.push(outcome.claimed..len);
    Err(Failure {
        panic: outcome.panic,
        drop_panic,
        error: into_inner(first_error),
        untaken,
    })
}

/// Maps the items of `source` through `f`, with a state made by `init` at
/// most once per participating thread and passed to every call of `f` on
/// that thread; stops at the first error, then drops the items never taken.
pub(crate) fn try_map_init<S, St, R, E, I, F>(
    registry: &Arc<Registry>,
    source: S,
    chunking: Chunking,
    init: I,
    f: F,
) -> Result<Vec<R>, E>
where
    S: Source,
    R: Send,
    E: Send,
    I: Fn() -> St + Sync,
    F: Fn(&mut St, S::Item) -> Result<R, E> + Sync,
{
    // SAFETY: `collect` calls a unit once per index below `len`.
    let unit = |state: &mut St, i: usize| f(state, unsafe { source.take(i) });
    match collect(registry, source.len(), chunking, init, unit) {
        Ok(output) => Ok(output),
        Err(mut failure) => {
            // SAFETY: the units that never started took no item.
            let drop_panic = unsafe { drop_untaken(&source, failure.untaken.drain(..)) };
            failure.dropped(drop_panic);
            failure.into_err()
        }
    }
}

/// [`try_map_init`] for an `f` that cannot fail.
fn map_init<S, St, R, I, F>(
    registry: &Arc<Registry>,
    source: S,
    chunking: Chunking,
    init: I,
    f: F,
) -> Vec<R>
where
    S: Source,
    R: Send,
    I: Fn() -> St + Sync,
    F: Fn(&mut St, S::Item) -> R + Sync,
{
    let result = try_map_init(registry, source, chunking, init, |state, item| {
        Ok::<R, Infallible>(f(state, item))
    });
    match result {
        Ok(output) => output,
        Err(never) => match never {},
    }
}

/// Runs `f` on every item of `source`; after a panic, drops the items never
/// taken and re-raises it.
fn for_each<S, F>(registry: &Arc<Registry>, source: S, chunking: Chunking, f: F)
where
    S: Source,
    F: Fn(S::Item) + Sync,
{
    let untaken: Mutex<Vec<Range<usize>>> = Mutex::new(Vec::new());
    let body = |_: &mut (), range: Range<usize>| -> bool {
        // SAFETY: the drive's claims are disjoint and below `len`.
        unsafe { Taking::new(&source, range, &untaken) }.for_each(&f);
        true
    };
    let outcome = drive(registry, source.len(), chunking, &body);
    if let Some(panic) = outcome.panic {
        let mut untaken = into_inner(untaken);
        untaken.push(outcome.claimed..source.len());
        // SAFETY: a range stopped by a panic recorded the items it did not
        // take, and the claims ended at `claimed`.
        if let Some(extra) = unsafe { drop_untaken(&source, untaken) } {
            discard(extra);
        }
        resume_unwind(panic);
    }
}

impl Pool {
    /// Applies `f` to every item of `input` in parallel and returns the results
    /// in input order.
    ///
    /// `input` is any [`Input`](crate::Input): a borrowed slice (`f` gets
    /// `&T`), a mutable slice (`&mut T`), an owned `Vec<T>` (`T`, moved) or
    /// an index range (`usize`). It and `f` are borrowed for the call only,
    /// so `f` may use local variables. The calling thread does the first part of the work itself
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
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let cubes = pool.map(0..4, |i| i * i * i);
    /// assert_eq!(cubes, [0, 1, 8, 27]);
    /// let lengths = pool.map(vec![String::from("ab"), String::from("c")], |s| s.len());
    /// assert_eq!(lengths, [2, 1]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
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
    pub fn map<I, R, F>(&self, input: I, f: F) -> Vec<R>
    where
        I: Input,
        R: Send,
        F: Fn(I::Item) -> R + Sync,
    {
        let source = input.into_source();
        map_init(
            self.registry(),
            source,
            Chunking::Adaptive,
            || (),
            |(), item| f(item),
        )
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
    pub fn map_chunked<I, R, F>(&self, input: I, chunk_size: usize, f: F) -> Vec<R>
    where
        I: Input,
        R: Send,
        F: Fn(I::Item) -> R + Sync,
    {
        assert!(
            chunk_size > 0,
            "stealpool: map_chunked needs a chunk_size of at least 1"
        );
        let source = input.into_source();
        map_init(
            self.registry(),
            source,
            Chunking::Fixed(chunk_size),
            || (),
            |(), item| f(item),
        )
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
    pub fn try_map<I, R, E, F>(&self, input: I, f: F) -> Result<Vec<R>, E>
    where
        I: Input,
        R: Send,
        E: Send,
        F: Fn(I::Item) -> Result<R, E> + Sync,
    {
        let source = input.into_source();
        try_map_init(
            self.registry(),
            source,
            Chunking::Adaptive,
            || (),
            |(), item| f(item),
        )
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
    pub fn map_init<I, S, R, N, F>(&self, input: I, init: N, f: F) -> Vec<R>
    where
        I: Input,
        R: Send,
        N: Fn() -> S + Sync,
        F: Fn(&mut S, I::Item) -> R + Sync,
    {
        let source = input.into_source();
        map_init(self.registry(), source, Chunking::Adaptive, init, f)
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
    pub fn for_each<I, F>(&self, input: I, f: F)
    where
        I: Input,
        F: Fn(I::Item) + Sync,
    {
        for_each(self.registry(), input.into_source(), Chunking::Adaptive, f);
    }
}
