//! [`Cancellable`]: the calls of the `map` family (and `spawn`, `scope`,
//! `imap`) that a [`CancelToken`](crate::CancelToken) or a deadline stops,
//! made by [`CallOptions::cancel_on`](crate::CallOptions::cancel_on) or
//! [`CallOptions::deadline`](crate::CallOptions::deadline). Each returns
//! `Result<_, Cancelled>`; the calls without a stop are in `options.rs`.

use crate::collect::{for_each, map_init, try_map_init, Stop};
use crate::control::{Cancelled, Stopper};
use crate::input::{Input, Source};
use crate::options::{counted_in, CallOptions, Settings};
use crate::reduce::map_reduce;
#[cfg(doc)]
use crate::{CancelToken, Pool};
use crate::{Imap, ImapUnordered, Scope, Task};

/// A call of the `map` family (or a `spawn`, a `scope`) that a
/// [`CancelToken`] or a deadline stops: its methods return [`Cancelled`] if
/// the call stopped before every item finished (a spawned task: before it
/// started; a scope: before every task started). Made by [`CallOptions::cancel_on`] or
/// [`CallOptions::deadline`].
///
/// The call looks at the token and the deadline before every item, on every
/// thread: once it sees either, no further item starts, the items already
/// running finish, and it returns `Err(Cancelled)` after every chunk has
/// stopped, having dropped the results made (and the items of an owned input
/// never taken) once each. A call whose every item finished returns its
/// results even if the token was cancelled meanwhile: never a partial
/// result. A token cancelled before the call, or a deadline already past,
/// runs no item (and an empty input returns `Ok` at once). A deadline reads the clock before every item (tens of
/// nanoseconds); a token reads a flag.
///
/// ```
/// use std::time::{Duration, Instant};
/// let pool = stealpool::Pool::new(2)?;
/// let deadline = Instant::now() + Duration::from_millis(20);
/// let slow = pool.options().deadline(deadline).for_each(0..1000, |_| {
///     std::thread::sleep(Duration::from_millis(1));
/// });
/// let cancelled = slow.unwrap_err();
/// assert!(cancelled.finished() < 1000);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "options do nothing until a call is made with them"]
pub struct Cancellable<'a>(pub(crate) Settings<'a>);

impl<'a> Cancellable<'a> {
    /// [`Pool::map`], stopped by the token or the deadline.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if the call stopped before every item finished.
    ///
    /// # Panics
    ///
    /// As [`Pool::map`]: a panic wins over a cancellation.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// let out = pool.options().cancel_on(&token).map(vec![1, 2], |x| x * 2);
    /// assert_eq!(out, Ok(vec![2, 4]));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map<I, R, F>(self, input: I, f: F) -> Result<Vec<R>, Cancelled>
    where
        I: Input,
        R: Send,
        F: Fn(I::Item) -> R + Sync,
    {
        self.map_init(input, || (), |(), item| f(item))
    }

    /// [`Pool::try_map`], stopped by the token or the deadline; a stop is
    /// the error `E::from(Cancelled)`, so that `?` carries either.
    ///
    /// # Errors
    ///
    /// The first error `f` returned, or the [`Cancelled`] converted into
    /// `E` if the call stopped first.
    ///
    /// # Panics
    ///
    /// As [`Pool::try_map`].
    ///
    /// ```
    /// use stealpool::{CancelToken, Cancelled, Pool};
    /// #[derive(Debug)]
    /// enum Error {
    ///     Parse(std::num::ParseIntError),
    ///     Stopped(Cancelled),
    /// }
    /// impl From<Cancelled> for Error {
    ///     fn from(c: Cancelled) -> Self {
    ///         Error::Stopped(c)
    ///     }
    /// }
    /// let pool = Pool::new(2)?;
    /// let token = CancelToken::new();
    /// token.cancel();
    /// let out = pool
    ///     .options()
    ///     .cancel_on(&token)
    ///     .try_map(&["1", "2"], |s| s.parse::<i32>().map_err(Error::Parse));
    /// assert!(matches!(out, Err(Error::Stopped(_))));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn try_map<I, R, E, F>(self, input: I, f: F) -> Result<Vec<R>, E>
    where
        I: Input,
        R: Send,
        E: Send + From<Cancelled>,
        F: Fn(I::Item) -> Result<R, E> + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let watch = settings.watch(source.len());
        let f = |(): &mut (), item| f(item);
        let registry = settings.pool.registry();
        let result = try_map_init(registry, source, settings.chunking, &watch, || (), f);
        result.map_err(|stop| match stop {
            Stop::Error(error) => error,
            Stop::Cancelled(cancelled) => E::from(cancelled),
        })
    }

    /// [`Pool::map_init`], stopped by the token or the deadline.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if the call stopped before every item finished.
    ///
    /// # Panics
    ///
    /// As [`Pool::map_init`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// let out = pool.options().cancel_on(&token).map_init(0..3, || 10, |base, i| *base + i);
    /// assert_eq!(out, Ok(vec![10, 11, 12]));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_init<I, S, R, N, F>(self, input: I, init: N, f: F) -> Result<Vec<R>, Cancelled>
    where
        I: Input,
        R: Send,
        N: Fn() -> S + Sync,
        F: Fn(&mut S, I::Item) -> R + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let watch = settings.watch(source.len());
        let registry = settings.pool.registry();
        map_init(registry, source, settings.chunking, &watch, init, f)
    }

    /// [`Pool::for_each`], stopped by the token or the deadline.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if the call stopped before every item finished.
    ///
    /// # Panics
    ///
    /// As [`Pool::for_each`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// assert_eq!(pool.options().cancel_on(&token).for_each(0..3, |_| {}), Ok(()));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn for_each<I, F>(self, input: I, f: F) -> Result<(), Cancelled>
    where
        I: Input,
        F: Fn(I::Item) + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let watch = settings.watch(source.len());
        let registry = settings.pool.registry();
        for_each(registry, source, settings.chunking, &watch, f)
    }

    /// [`Pool::map_reduce`], stopped by the token or the deadline.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if the call stopped before every item was folded.
    ///
    /// # Panics
    ///
    /// As [`Pool::map_reduce`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// let sum = pool.options().cancel_on(&token).map_reduce(1..5, |i| i, || 0, |a, b| a + b);
    /// assert_eq!(sum, Ok(10));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_reduce<In, R, F, N, C>(
        self,
        input: In,
        f: F,
        identity: N,
        combine: C,
    ) -> Result<R, Cancelled>
    where
        In: Input,
        R: Send,
        F: Fn(In::Item) -> R + Sync,
        N: FnOnce() -> R,
        C: Fn(R, R) -> R + Sync,
    {
        let settings = self.0;
        let source = input.into_source();
        let watch = settings.watch(source.len());
        let registry = settings.pool.registry();
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

    /// [`Pool::imap`], stopped by the token or the deadline: each item looks
    /// at them before it starts, and once they say stop, every item not
    /// yet started yields `Err(Cancelled)` instead of running. Collecting
    /// into a `Result` (or stopping at the first `Err`) drops the iterator,
    /// which skips the batches still queued.
    ///
    /// # Panics
    ///
    /// As [`Pool::imap`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// let all: Result<Vec<u32>, _> = pool.options().cancel_on(&token).imap(0..10u32, |x| x * 2).collect();
    /// assert_eq!(all.unwrap().len(), 10);
    /// token.cancel();
    /// let none: Result<Vec<u32>, _> = pool.options().cancel_on(&token).imap(0..10u32, |x| x * 2).collect();
    /// assert!(none.is_err());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn imap<I, R, F>(self, input: I, f: F) -> Imap<Result<R, Cancelled>>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let (options, input, f) = self.streamed(input, f);
        options.imap(input, f)
    }

    /// [`Pool::imap_unordered`], stopped by the token or the deadline (see
    /// [`imap`](Self::imap)).
    ///
    /// # Panics
    ///
    /// As [`Pool::imap_unordered`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// token.cancel();
    /// let mut out = pool.options().cancel_on(&token).imap_unordered(0..3u32, |x| x);
    /// assert_eq!(out.next().map(|r| r.is_err()), Some(true));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn imap_unordered<I, R, F>(self, input: I, f: F) -> ImapUnordered<Result<R, Cancelled>>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let (options, input, f) = self.streamed(input, f);
        options.imap_unordered(input, f)
    }

    /// The plain options, input and closure of a stoppable `imap`: `f`
    /// wrapped to look at the token and deadline before each item, and to
    /// count only the items that ran into the progress.
    #[allow(clippy::type_complexity)]
    fn streamed<I, R, F>(
        self,
        input: I,
        f: F,
    ) -> (
        CallOptions<'a>,
        I::IntoIter,
        impl Fn(I::Item) -> Result<R, Cancelled> + Send + Sync + 'static,
    )
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let settings = self.0;
        let input = input.into_iter();
        let progress = settings
            .progress
            .map(|progress| counted_in(progress, &input));
        let stopper = Stopper::new(settings.token, settings.deadline);
        let f = move |item| {
            let result = stopper.run(|| f(item));
            if let (Some(progress), Ok(_)) = (&progress, &result) {
                progress.count_one();
            }
            result
        };
        let plain = CallOptions(Settings {
            progress: None,
            token: None,
            deadline: None,
            ..settings
        });
        (plain, input, f)
    }

    /// [`Pool::spawn`], unless the token is cancelled or the deadline has
    /// passed when the task would start: then `f` never runs, and the task's
    /// result says so. A task already running is not stopped (`f` can look
    /// at the token itself).
    ///
    /// ```
    /// let pool = stealpool::Pool::new(1)?;
    /// let token = stealpool::CancelToken::new();
    /// let kept = pool.options().cancel_on(&token).spawn(|| 1);
    /// assert_eq!(kept.join(), Ok(1));
    /// token.cancel();
    /// let skipped = pool.options().cancel_on(&token).spawn(|| unreachable!());
    /// assert_eq!(skipped.join().unwrap_err().finished(), 0);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn spawn<R, F>(self, f: F) -> Task<Result<R, Cancelled>>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let settings = self.0;
        let stopper = Stopper::new(settings.token, settings.deadline);
        let progress = settings.progress.cloned();
        if let Some(progress) = &progress {
            progress.add_total(1);
        }
        settings.pool.spawn(move || {
            let result = stopper.run(f);
            if let (Some(progress), Ok(_)) = (progress, &result) {
                progress.count_one();
            }
            result
        })
    }

    /// [`Pool::scope`], whose tasks do not start once the token is cancelled
    /// or the deadline has passed: a task spawned after that, or queued and
    /// not yet started, is dropped without running. The body itself runs to
    /// its end (it can look at the token), and the scope still waits for
    /// every task that started.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if any task was skipped ([`Cancelled::finished`]: the
    /// tasks that ran); the body's value is then dropped.
    ///
    /// # Panics
    ///
    /// As [`Pool::scope`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = stealpool::Pool::new(2)?;
    /// let token = stealpool::CancelToken::new();
    /// let ran = AtomicUsize::new(0);
    /// let out = pool.options().cancel_on(&token).scope(|s| {
    ///     s.spawn(|| {
    ///         ran.fetch_add(1, Ordering::Relaxed);
    ///     });
    ///     "body done"
    /// });
    /// assert_eq!(out, Ok("body done"));
    /// token.cancel();
    /// let out = pool.options().cancel_on(&token).scope(|s| {
    ///     s.spawn(|| unreachable!("a task spawned after the cancel"));
    /// });
    /// assert_eq!(out.unwrap_err().finished(), 0);
    /// assert_eq!(ran.into_inner(), 1);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn scope<'env, R, F>(self, f: F) -> Result<R, Cancelled>
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let settings = self.0;
        let stop = (settings.token.cloned(), settings.deadline);
        match crate::scope::scope(settings.pool, Some(stop), f) {
            (_, Some((skipped, ran))) if skipped > 0 => Err(Cancelled { finished: ran }),
            (value, _) => Ok(value),
        }
    }
}
