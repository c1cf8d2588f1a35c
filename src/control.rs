//! Control of a call from outside it: [`CancelToken`] and deadlines (what
//! stops a call, item by item), [`Cancelled`] (what a stopped call returns)
//! and [`Progress`] (items finished, readable from any thread); and
//! [`Watch`], how the map family looks at them per item at no cost to a
//! call that has none.

use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::time::Instant;

/// A flag that stops the calls it is given to: clone it, hand a clone to a
/// call with [`CallOptions::cancel_on`](crate::CallOptions::cancel_on), and
/// call [`cancel`](Self::cancel) from any thread.
///
/// A cancelled call starts no item after it sees the flag (each thread looks
/// before every item), lets the items already running finish, and returns
/// [`Cancelled`]. One token may stop many calls, at once or one after the
/// other; it cannot be reset (make a new one). A closure can look at the
/// token too, to cut a long item short.
///
/// ```
/// use stealpool::{CancelToken, Pool};
/// let pool = Pool::new(2)?;
/// let token = CancelToken::new();
/// let out = pool.options().cancel_on(&token).map(0..1000, |i| {
///     if i == 10 {
///         token.cancel(); // from inside, for the example; usually another thread
///     }
///     i
/// });
/// assert!(out.is_err());
/// assert!(token.is_cancelled());
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    ///
    /// ```
    /// assert!(!stealpool::CancelToken::new().is_cancelled());
    /// ```
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every call this token was or will be given to.
    ///
    /// ```
    /// let token = stealpool::CancelToken::new();
    /// let clone = token.clone();
    /// clone.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        // Relaxed: the flag publishes nothing; a call that sees it late
        // runs one more item, which the per-item rule allows.
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or a clone.
    ///
    /// ```
    /// let token = stealpool::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        // Relaxed: see `cancel`.
        self.0.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The error of a call stopped by its [`CancelToken`] or its deadline.
///
/// The results already made were dropped (once each), and so were the items
/// of an owned input that no closure took.
///
/// ```
/// let pool = stealpool::Pool::new(2)?;
/// let token = stealpool::CancelToken::new();
/// token.cancel();
/// let err = pool.options().cancel_on(&token).map(0..10, |i| i).unwrap_err();
/// assert_eq!(err.finished(), 0);
/// assert_eq!(err.to_string(), "the call was cancelled after 0 items");
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled {
    pub(crate) finished: usize,
}

impl Cancelled {
    /// How many items the closure finished before the call stopped (their
    /// results were dropped).
    ///
    /// ```
    /// let pool = stealpool::Pool::new(1)?;
    /// let token = stealpool::CancelToken::new();
    /// let err = pool
    ///     .options()
    ///     .cancel_on(&token)
    ///     .for_each(0..100, |i| if i == 4 { token.cancel() })
    ///     .unwrap_err();
    /// assert_eq!(err.finished(), 5); // items 0 to 4: a 1-thread pool runs in order
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn finished(&self) -> usize {
        self.finished
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the call was cancelled after {} items", self.finished)
    }
}

impl std::error::Error for Cancelled {}

/// Counter slots of a [`Progress`]: each thread counts in its own, so that
/// counting costs no cache-line transfers between cores.
const PROGRESS_SLOTS: usize = 16;

/// How far the calls it is given to have got: items finished and items in
/// all, readable at any time from any thread (for a progress bar).
///
/// Hand it to a call with [`CallOptions::progress`](crate::CallOptions::progress).
/// A call adds its length to [`total`](Self::total) when it starts and each
/// item to [`done`](Self::done) when its closure returns. Clones share the
/// counts; one `Progress` given to several calls sums them.
///
/// ```
/// let pool = stealpool::Pool::new(2)?;
/// let progress = stealpool::Progress::new();
/// let watcher = progress.clone(); // read it from another thread
/// pool.options().progress(&progress).for_each(0..500, |_| {});
/// assert_eq!((watcher.done(), watcher.total()), (500, 500));
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Clone, Default)]
pub struct Progress(Arc<Counts>);

#[derive(Default)]
struct Counts {
    total: AtomicUsize,
    done: [CachePadded<AtomicUsize>; PROGRESS_SLOTS],
}

impl Progress {
    /// A progress at 0 of 0.
    ///
    /// ```
    /// let progress = stealpool::Progress::new();
    /// assert_eq!((progress.done(), progress.total()), (0, 0));
    /// ```
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Items finished so far.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let progress = stealpool::Progress::new();
    /// pool.options().progress(&progress).map(&[1, 2, 3], |x| x * 2);
    /// assert_eq!(progress.done(), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn done(&self) -> usize {
        // Relaxed: a reading for display; each slot only grows.
        self.0
            .done
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .sum()
    }

    /// Items in all, over the calls started so far.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let progress = stealpool::Progress::new();
    /// pool.options().progress(&progress).for_each(0..7, |_| {});
    /// assert_eq!(progress.total(), 7);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn total(&self) -> usize {
        // Relaxed: a reading for display.
        self.0.total.load(Ordering::Relaxed)
    }

    /// Adds `items` to the total.
    pub(crate) fn add_total(&self, items: usize) {
        // Relaxed: a count for display.
        self.0.total.fetch_add(items, Ordering::Relaxed);
    }

    /// Counts one finished item on the calling thread.
    pub(crate) fn count_one(&self) {
        // Relaxed: a count for display.
        self.slot().fetch_add(1, Ordering::Relaxed);
    }

    /// The calling thread's counter.
    fn slot(&self) -> &AtomicUsize {
        let index = crate::current_thread_index().map_or(0, |i| i + 1);
        &self.0.done[index % PROGRESS_SLOTS]
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("done", &self.done())
            .field("total", &self.total())
            .finish()
    }
}

/// What a call of the map family looks at per item: whether to stop, and
/// whom to tell that an item finished. A plain call watches `()`, whose
/// `WATCHED` is false, so its loops compile to what they were without.
pub(crate) trait Watch: Sync {
    /// Whether there is anything to look at.
    const WATCHED: bool;
    /// What tells the call to start no more items, read once per chunk.
    fn signal(&self) -> Signal<'_>;
    /// The counter to add finished items to on the calling thread.
    fn counter(&self) -> Option<&AtomicUsize>;
    /// Adds items finished by one chunk to the call's count.
    fn finished(&self, items: usize);
    /// The error of a stopped call.
    fn cancelled(&self) -> Cancelled;
}

impl Watch for () {
    const WATCHED: bool = false;
    #[inline]
    fn signal(&self) -> Signal<'_> {
        Signal {
            flag: None,
            deadline: None,
        }
    }
    #[inline]
    fn counter(&self) -> Option<&AtomicUsize> {
        None
    }
    #[inline]
    fn finished(&self, _items: usize) {}
    fn cancelled(&self) -> Cancelled {
        Cancelled { finished: 0 }
    }
}

/// A call's token flag and deadline, copied out of its [`Watch`] once per
/// chunk: the check before each item is then a load and a branch on values
/// the loop keeps in registers, rather than a walk from the watch (which the
/// compiler must redo after every call of the user's closure).
#[derive(Clone, Copy)]
pub(crate) struct Signal<'a> {
    flag: Option<&'a AtomicBool>,
    deadline: Option<Instant>,
}

impl Signal<'_> {
    /// Whether the call should start no more items.
    #[inline]
    pub(crate) fn raised(&self) -> bool {
        // Relaxed: see `CancelToken::cancel`.
        self.flag.is_some_and(|flag| flag.load(Ordering::Relaxed))
            || self.deadline.is_some_and(crate::sync::reached)
    }
}

/// The controls of one call: its token, deadline and progress.
pub(crate) struct Watched<'a> {
    token: Option<&'a CancelToken>,
    deadline: Option<Instant>,
    progress: Option<&'a Progress>,
    /// Items finished by this call, for [`Cancelled::finished`].
    finished: AtomicUsize,
}

impl<'a> Watched<'a> {
    pub(crate) fn new(
        token: Option<&'a CancelToken>,
        deadline: Option<Instant>,
        progress: Option<&'a Progress>,
        len: usize,
    ) -> Self {
        if let Some(progress) = progress {
            progress.add_total(len);
        }
        Watched {
            token,
            deadline,
            progress,
            finished: AtomicUsize::new(0),
        }
    }
}

impl Watch for Watched<'_> {
    const WATCHED: bool = true;
    #[inline]
    fn signal(&self) -> Signal<'_> {
        Signal {
            flag: self.token.map(|token| &*token.0),
            deadline: self.deadline,
        }
    }
    #[inline]
    fn counter(&self) -> Option<&AtomicUsize> {
        self.progress.map(Progress::slot)
    }
    fn finished(&self, items: usize) {
        // Relaxed: read by the caller after every chunk has stopped, which
        // the drive's gate and latch order after this.
        self.finished.fetch_add(items, Ordering::Relaxed);
    }
    fn cancelled(&self) -> Cancelled {
        Cancelled {
            // Relaxed: see `finished`.
            finished: self.finished.load(Ordering::Relaxed),
        }
    }
}

/// What stops a call that outlives the borrow of its options (an `imap`'s
/// batches, a spawned task): a clone of the token and the deadline, and the
/// count of items finished, shared by the clones.
#[derive(Clone)]
pub(crate) struct Stopper {
    token: Option<CancelToken>,
    deadline: Option<Instant>,
    finished: Arc<AtomicUsize>,
}

impl Stopper {
    pub(crate) fn new(token: Option<&CancelToken>, deadline: Option<Instant>) -> Stopper {
        Stopper {
            token: token.cloned(),
            deadline,
            finished: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` unless the token or the deadline says to stop.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> Result<R, Cancelled> {
        let stopped = self.token.as_ref().is_some_and(CancelToken::is_cancelled)
            || self.deadline.is_some_and(crate::sync::reached);
        if stopped {
            return Err(Cancelled {
                // Relaxed: a count for the report.
                finished: self.finished.load(Ordering::Relaxed),
            });
        }
        let result = f();
        // Relaxed: as above.
        self.finished.fetch_add(1, Ordering::Relaxed);
        Ok(result)
    }
}
