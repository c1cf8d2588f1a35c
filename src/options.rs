//! Per-call options for the `map` family: [`Pool::options`] gives a
//! [`CallOptions`] (chunk size, progress) whose methods make the call; a
//! cancel token or a deadline turns it into a [`Cancellable`], whose calls
//! return `Result<_, Cancelled>`. The plain methods of `Pool` are these
//! calls with no option set.

use crate::cancellable::Cancellable;
use crate::collect::{for_each, map_init, never_cancelled, try_map_init, Stop};
use crate::control::{CancelToken, Progress, Watched};
use crate::drive::Chunking;
use crate::input::{Input, Source};
use crate::reduce::map_reduce;
use crate::{Imap, ImapUnordered, Pool};
use std::fmt;
use std::time::Instant;

/// What both option types hold.
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) chunking: Chunking,
    pub(crate) token: Option<&'a CancelToken>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) progress: Option<&'a Progress>,
}

impl<'a> Settings<'a> {
    fn chunk_size(mut self, chunk_size: usize) -> Self {
        assert!(chunk_size > 0, "stealpool: a chunk_size must be at least 1");
        self.chunking = Chunking::Fixed(chunk_size);
        self
    }

    /// The watch of a call over `len` items (counted into the progress at
    /// once).
    pub(crate) fn watch(&self, len: usize) -> Watched<'a> {
        Watched::new(self.token, self.deadline, self.progress, len)
    }
}

impl fmt::Debug for Settings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("chunking", &self.chunking)
            .field("token", &self.token)
            .field("deadline", &self.deadline)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

/// Options for one call of the `map` family: [`chunk_size`](Self::chunk_size)
/// and [`progress`](Self::progress); [`cancel_on`](Self::cancel_on) and
/// [`deadline`](Self::deadline) make it [`Cancellable`]. Made by
/// [`Pool::options`]; its `map`, `try_map`, `map_init`, `for_each`,
/// `map_reduce`, `imap` and `imap_unordered` make the call, as `Pool`'s
/// methods of the same name do (which are these with no option set).
///
/// A token or a deadline makes every one of these calls, and `spawn` and
/// `scope`, stoppable ([`Cancellable`]).
///
/// ```
/// let pool = stealpool::Pool::new(2)?;
/// let progress = stealpool::Progress::new();
/// let doubled = pool
///     .options()
///     .chunk_size(100)
///     .progress(&progress)
///     .map(0..1000, |i| i * 2);
/// assert_eq!(doubled[999], 1998);
/// assert_eq!(progress.done(), 1000);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "options do nothing until a call is made with them"]
pub struct CallOptions<'a>(pub(crate) Settings<'a>);

impl Pool {
    /// Options for one call of the `map` family (see [`CallOptions`]): a
    /// fixed chunk size, a [`Progress`], a [`CancelToken`], a deadline.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let out = pool.options().chunk_size(3).map(&[1, 2, 3, 4], |x| x + 1);
    /// assert_eq!(out, [2, 3, 4, 5]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn options(&self) -> CallOptions<'_> {
        CallOptions(Settings {
            pool: self,
            chunking: Chunking::Adaptive,
            token: None,
            deadline: None,
            progress: None,
        })
    }
}

/// The option setters both types share.
macro_rules! setters {
    ($Type:ident) => {
        impl<'a> $Type<'a> {
            /// Cuts the call into chunks of exactly `chunk_size` items (the
            /// last may be shorter), each run by one thread in order, like
            /// the `chunksize` of Python's `Pool.map` (rayon:
            /// `with_min_len`). Without it, the call starts alone and sizes
            /// its chunks adaptively; with it, the chunks are offered to the
            /// workers at once: use it when you know each chunk is worth a
            /// thread.
            ///
            /// # Panics
            ///
            /// If `chunk_size` is 0.
            ///
            /// ```
            /// let pool = stealpool::Pool::new(2)?;
            /// let input: Vec<u32> = (0..10).collect();
            /// let doubled = pool.options().chunk_size(3).map(&input, |x| x * 2);
            /// assert_eq!(doubled, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
            /// # Ok::<(), stealpool::BuildError>(())
            /// ```
            pub fn chunk_size(self, chunk_size: usize) -> Self {
                $Type(self.0.chunk_size(chunk_size))
            }

            /// Counts the call's items into `progress`: its length into
            /// [`Progress::total`] when the call starts, each item into
            /// [`Progress::done`] when its closure returns (a relaxed
            /// increment of a counter of the thread's own).
            ///
            /// ```
            /// let pool = stealpool::Pool::new(2)?;
            /// let progress = stealpool::Progress::new();
            /// pool.options().progress(&progress).for_each(0..100, |_| {});
            /// assert_eq!(progress.done(), 100);
            /// # Ok::<(), stealpool::BuildError>(())
            /// ```
            pub fn progress(self, progress: &'a Progress) -> Self {
                $Type(Settings {
                    progress: Some(progress),
                    ..self.0
                })
            }

            /// Stops the call when `token` is cancelled (see
            /// [`Cancellable`]); replaces a token given before.
            ///
            /// ```
            /// let pool = stealpool::Pool::new(2)?;
            /// let token = stealpool::CancelToken::new();
            /// let out = pool.options().cancel_on(&token).map(0..4, |i| i);
            /// assert_eq!(out, Ok(vec![0, 1, 2, 3]));
            /// # Ok::<(), stealpool::BuildError>(())
            /// ```
            pub fn cancel_on(self, token: &'a CancelToken) -> Cancellable<'a> {
                Cancellable(Settings {
                    token: Some(token),
                    ..self.0
                })
            }

            /// Stops the call at `deadline` (see [`Cancellable`]); replaces
            /// a deadline given before.
            ///
            /// ```
            /// use std::time::Instant;
            /// let pool = stealpool::Pool::new(2)?;
            /// let past = Instant::now();
            /// let out = pool.options().deadline(past).map(0..4, |i| i);
            /// assert_eq!(out.unwrap_err().finished(), 0);
            /// # Ok::<(), stealpool::BuildError>(())
            /// ```
            pub fn deadline(self, deadline: Instant) -> Cancellable<'a> {
                Cancellable(Settings {
                    deadline: Some(deadline),
                    ..self.0
                })
            }
        }
    };
}

setters!(CallOptions);
setters!(Cancellable);

impl<'a> CallOptions<'a> {
    /// [`Pool::map`] with these options.
    ///
    /// # Panics
    ///
    /// As [`Pool::map`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// assert_eq!(pool.options().chunk_size(2).map(0..5, |i| i * i), [0, 1, 4, 9, 16]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map<I, R, F>(self, input: I, f: F) -> Vec<R>
    where
        I: Input,
        R: Send,
        F: Fn(I::Item) -> R + Sync,
    {
        self.map_init(input, || (), |(), item| f(item))
    }

    /// [`Pool::try_map`] with these options.
    ///
    /// # Errors
    ///
    /// As [`Pool::try_map`].
    ///
    /// # Panics
    ///
    /// As [`Pool::try_map`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let parsed = pool.options().chunk_size(1).try_map(&["1", "x"], |s| s.parse::<i32>());
    /// assert!(parsed.is_err());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn try_map<I, R, E, F>(self, input: I, f: F) -> Result<Vec<R>, E>
    where
        I: Input,
        R: Send,
        E: Send,
        F: Fn(I::Item) -> Result<R, E> + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let f = |(): &mut (), item| f(item);
        let registry = settings.pool.registry();
        let result = match settings.progress {
            None => try_map_init(registry, source, settings.chunking, &(), || (), f),
            Some(_) => {
                let watch = settings.watch(source.len());
                try_map_init(registry, source, settings.chunking, &watch, || (), f)
            }
        };
        result.map_err(|stop| match stop {
            Stop::Error(error) => error,
            Stop::Cancelled(_) => unreachable!("a call with no token nor deadline was cancelled"),
        })
    }

    /// [`Pool::map_init`] with these options.
    ///
    /// # Panics
    ///
    /// As [`Pool::map_init`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let out = pool.options().chunk_size(8).map_init(0..32, Vec::new, |scratch, i| {
    ///     scratch.push(i);
    ///     i + 1
    /// });
    /// assert_eq!(out[31], 32);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_init<I, S, R, N, F>(self, input: I, init: N, f: F) -> Vec<R>
    where
        I: Input,
        R: Send,
        N: Fn() -> S + Sync,
        F: Fn(&mut S, I::Item) -> R + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let registry = settings.pool.registry();
        never_cancelled(match settings.progress {
            None => map_init(registry, source, settings.chunking, &(), init, f),
            Some(_) => {
                let watch = settings.watch(source.len());
                map_init(registry, source, settings.chunking, &watch, init, f)
            }
        })
    }

    /// [`Pool::for_each`] with these options.
    ///
    /// # Panics
    ///
    /// As [`Pool::for_each`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let mut values = vec![1, 2, 3, 4];
    /// pool.options().chunk_size(2).for_each(&mut values, |v| *v *= 10);
    /// assert_eq!(values, [10, 20, 30, 40]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn for_each<I, F>(self, input: I, f: F)
    where
        I: Input,
        F: Fn(I::Item) + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let registry = settings.pool.registry();
        never_cancelled(match settings.progress {
            None => for_each(registry, source, settings.chunking, &(), f),
            Some(_) => {
                let watch = settings.watch(source.len());
                for_each(registry, source, settings.chunking, &watch, f)
            }
        })
    }

    /// [`Pool::map_reduce`] with these options. The chunk size counts
    /// blocks, not items (see [`Pool::map_reduce`] for how an input is cut
    /// into blocks): it changes who folds which blocks, never the result.
    ///
    /// # Panics
    ///
    /// As [`Pool::map_reduce`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let sum = pool.options().chunk_size(64).map_reduce(0..10_000u64 as usize, |i| i, || 0, |a, b| a + b);
    /// assert_eq!(sum, 49_995_000);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_reduce<In, R, F, N, C>(self, input: In, f: F, identity: N, combine: C) -> R
    where
        In: Input,
        R: Send,
        F: Fn(In::Item) -> R + Sync,
        N: FnOnce() -> R,
        C: Fn(R, R) -> R + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let registry = settings.pool.registry();
        never_cancelled(match settings.progress {
            None => map_reduce(
                registry,
                source,
                settings.chunking,
                &(),
                f,
                identity,
                combine,
            ),
            Some(_) => {
                let watch = settings.watch(source.len());
                map_reduce(
                    registry,
                    source,
                    settings.chunking,
                    &watch,
                    f,
                    identity,
                    combine,
                )
            }
        })
    }
}

impl<'a> CallOptions<'a> {
    /// [`Pool::imap`] with these options: a chunk size fixes the length of
    /// the batches that go to the workers (Python's `imap(f, it,
    /// chunksize)`) instead of sizing them by the measured cost of an item;
    /// a progress counts each item as its closure returns, and adds the
    /// input's length to its total if the iterator knows it exactly.
    ///
    /// # Panics
    ///
    /// As [`Pool::imap`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let progress = stealpool::Progress::new();
    /// let lengths: Vec<usize> = pool
    ///     .options()
    ///     .chunk_size(16)
    ///     .progress(&progress)
    ///     .imap(vec!["a", "bb", "ccc"], |s| s.len())
    ///     .collect();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// assert_eq!((progress.done(), progress.total()), (3, 3));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn imap<I, R, F>(self, input: I, f: F) -> Imap<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let settings = self.0;
        let input = input.into_iter();
        let imap = match settings.progress {
            None => settings.pool.imap(input, f),
            Some(progress) => {
                let progress = counted_in(progress, &input);
                settings.pool.imap(input, move |item| {
                    let result = f(item);
                    progress.count_one();
                    result
                })
            }
        };
        match settings.chunking {
            Chunking::Fixed(batch) => imap.with_batch(batch),
            Chunking::Adaptive => imap,
        }
    }

    /// [`Pool::imap_unordered`] with these options (see
    /// [`imap`](Self::imap)).
    ///
    /// # Panics
    ///
    /// As [`Pool::imap_unordered`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let mut out: Vec<u32> = pool.options().chunk_size(4).imap_unordered(0..10u32, |x| x + 1).collect();
    /// out.sort();
    /// assert_eq!(out, (1..=10).collect::<Vec<_>>());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn imap_unordered<I, R, F>(self, input: I, f: F) -> ImapUnordered<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let settings = self.0;
        let input = input.into_iter();
        let imap = match settings.progress {
            None => settings.pool.imap_unordered(input, f),
            Some(progress) => {
                let progress = counted_in(progress, &input);
                settings.pool.imap_unordered(input, move |item| {
                    let result = f(item);
                    progress.count_one();
                    result
                })
            }
        };
        match settings.chunking {
            Chunking::Fixed(batch) => imap.with_batch(batch),
            Chunking::Adaptive => imap,
        }
    }
}

/// A handle on `progress` for an imap over `input`, whose length (if the
/// iterator knows it exactly) goes into the total.
pub(crate) fn counted_in(progress: &Progress, input: &impl Iterator) -> Progress {
    if let (low, Some(high)) = input.size_hint() {
        if low == high {
            progress.add_total(low);
        }
    }
    progress.clone()
}
