//! The `map` family's plain calls, over any [`Input`]: `Pool::map`,
//! `try_map`, `map_init` and `for_each` (the core they share
//! is in `collect.rs`; the same calls with options, in `options.rs`).

use crate::input::Input;
use crate::Pool;

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
        self.options().map(input, f)
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
        self.options().try_map(input, f)
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
        self.options().map_init(input, init, f)
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
        self.options().for_each(input, f)
    }
}
