//! What the `map` family runs over: the public [`Input`] trait, implemented
//! for borrowed slices (`f` gets `&T`), mutable slices (`&mut T`), owned
//! vectors (`T`, moved) and index ranges (`usize`), and the [`Source`] each
//! input becomes for the duration of a call.
//!
//! A source hands out item `i` by index, to whichever thread claimed `i`; the
//! drive's claims are disjoint, so each index is taken at most once. An owned
//! source ([`Source::OWNS_ITEMS`]) leaves the items a failed call never took
//! to the call, which drops them once every chunk has stopped.

use crate::sync::lock;
use crate::sync::Mutex;
use std::marker::PhantomData;
use std::ops::Range;

/// An input of the `map` family ([`Pool::map`](crate::Pool::map),
/// [`try_map`](crate::Pool::try_map), [`map_init`](crate::Pool::map_init),
/// [`for_each`](crate::Pool::for_each),
/// [`map_reduce`](crate::Pool::map_reduce)): what the closure is given for
/// each item, in input order.
///
/// | input | the closure gets | |
/// |---|---|---|
/// | `&[T]`, `&Vec<T>`, `&[T; N]` | `&T` | `T: Sync` |
/// | `&mut [T]`, `&mut Vec<T>`, `&mut [T; N]` | `&mut T`, each element once | `T: Send` |
/// | `Vec<T>` | `T`, moved out, each item once | `T: Send` |
/// | `Range<usize>` | each index of the range (none if it is empty or reversed) | |
///
/// An owned `Vec<T>` is consumed: each item is moved into the closure
/// exactly once, and if the call stops early (a panic, an error) the items
/// never moved are dropped, once each, before the call returns or re-raises.
///
/// The trait is sealed: the inputs above are the ones the pool knows how to
/// split. [`Pool::imap`](crate::Pool::imap) takes any iterator.
///
/// ```
/// let pool = stealpool::Pool::new(2)?;
/// // An index range, like Python's `pool.map(f, range(n))`.
/// assert_eq!(pool.map(0..5, |i| i * i), [0, 1, 4, 9, 16]);
/// // An owned vector: the strings are moved into the closure, not cloned.
/// let words = vec![String::from("a"), String::from("b")];
/// assert_eq!(pool.map(words, |w| w + "!"), ["a!", "b!"]);
/// // A mutable slice: each element is handed out once.
/// let mut counts = vec![1, 2, 3];
/// pool.for_each(&mut counts, |c| *c *= 10);
/// assert_eq!(counts, [10, 20, 30]);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
pub trait Input: Sized + sealed::Sealed {
    /// What the closure is given for each item.
    type Item;
    #[doc(hidden)]
    type Source: Source<Item = Self::Item>;
    #[doc(hidden)]
    fn into_source(self) -> Self::Source;
}

pub(crate) mod sealed {
    /// Keeps [`Input`](super::Input) implemented by this crate only.
    pub trait Sealed {}
}

/// An input split by index for the duration of one call.
///
/// Not nameable outside the crate (it lives in a private module), so the
/// sealed [`Input`] can name it without making it part of the API.
pub trait Source: Sync {
    /// What `take` hands out.
    type Item;
    /// What [`take_at`](Self::take_at) needs (a pointer, a start), copied
    /// out of the source once per chunk: the chunk's loop keeps it in a
    /// register, where a loop through `&self` would load it from memory
    /// again after every call of the user's closure (which, as far as the
    /// compiler knows, may have written there). On a latency-bound item that
    /// reload sat on the item's critical path: ~3 ns an item, 6 % of a
    /// 60 ns item.
    type Cursor: Copy;
    /// Whether the source owns its items: if so, the items a call never took
    /// must be taken (and dropped) by the call before it ends.
    const OWNS_ITEMS: bool;
    /// The number of items.
    fn len(&self) -> usize;
    /// The cursor to take items with.
    fn cursor(&self) -> Self::Cursor;
    /// Item `index` of the source `cursor` came from.
    ///
    /// # Safety
    ///
    /// The source is alive, `index < len()`, and no index is taken twice by
    /// one call.
    unsafe fn take_at(cursor: Self::Cursor, index: usize) -> Self::Item;
    /// Item `index`.
    ///
    /// # Safety
    ///
    /// As [`take_at`](Self::take_at).
    #[inline]
    unsafe fn take(&self, index: usize) -> Self::Item {
        // SAFETY: the caller's contract.
        unsafe { Self::take_at(self.cursor(), index) }
    }
}

/// A borrowed slice: item `i` is `&slice[i]`.
pub struct Shared<'a, T>(&'a [T]);

impl<'a, T: Sync> Source for Shared<'a, T> {
    type Item = &'a T;
    type Cursor = &'a [T];
    const OWNS_ITEMS: bool = false;
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn cursor(&self) -> &'a [T] {
        self.0
    }
    #[inline]
    unsafe fn take_at(slice: &'a [T], index: usize) -> &'a T {
        // SAFETY: `index < len`, by the caller's contract.
        unsafe { slice.get_unchecked(index) }
    }
}

/// A mutable slice: item `i` is `&mut slice[i]`, handed out once.
pub struct Exclusive<'a, T> {
    start: *mut T,
    len: usize,
    borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: each element is handed out at most once (`take`'s contract), so no
// two threads hold a reference to the same element; sending `&mut T` to
// another thread needs `T: Send`.
unsafe impl<T: Send> Sync for Exclusive<'_, T> {}

impl<'a, T: Send> Source for Exclusive<'a, T> {
    type Item = &'a mut T;
    type Cursor = *mut T;
    const OWNS_ITEMS: bool = false;
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn cursor(&self) -> *mut T {
        self.start
    }
    #[inline]
    unsafe fn take_at(start: *mut T, index: usize) -> &'a mut T {
        // SAFETY: `index < len` and each index is taken once (the caller's
        // contract), and the slice is borrowed mutably for `'a`.
        unsafe { &mut *start.add(index) }
    }
}

/// An owned vector, whose items are moved out one by one.
///
/// The vector's length is set to 0 when the source is made: from then on it
/// only owns the buffer (freed when the source is dropped), and each item is
/// owned by whoever took it, or, if nobody did, by the call, which takes and
/// drops the leftovers.
pub struct Owned<T> {
    /// Length 0: owns the allocation only, freed when the source drops.
    _buffer: Vec<T>,
    start: *mut T,
    len: usize,
}

// SAFETY: each item is moved out at most once (`take`'s contract), to the
// thread that claimed it, which needs `T: Send`; the buffer itself is not
// touched until the source is dropped.
unsafe impl<T: Send> Sync for Owned<T> {}

impl<T: Send> Source for Owned<T> {
    type Item = T;
    type Cursor = *mut T;
    const OWNS_ITEMS: bool = true;
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn cursor(&self) -> *mut T {
        self.start
    }
    #[inline]
    unsafe fn take_at(start: *mut T, index: usize) -> T {
        // SAFETY: `index < len`, so the slot is inside the buffer (alive
        // with the source) and was initialised when the vector was handed
        // over; it is read once (the caller's contract) and the vector's
        // length of 0 keeps its drop from dropping it again.
        unsafe { start.add(index).read() }
    }
}

/// The indices `start..start + len`.
pub struct Indices {
    start: usize,
    len: usize,
}

impl Source for Indices {
    type Item = usize;
    type Cursor = usize;
    const OWNS_ITEMS: bool = false;
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn cursor(&self) -> usize {
        self.start
    }
    #[inline]
    unsafe fn take_at(start: usize, index: usize) -> usize {
        // `start + index < end` as `index < len`: no overflow.
        start + index
    }
}

impl<T: Sync> sealed::Sealed for &[T] {}
impl<'a, T: Sync> Input for &'a [T] {
    type Item = &'a T;
    type Source = Shared<'a, T>;
    fn into_source(self) -> Shared<'a, T> {
        Shared(self)
    }
}

impl<T: Sync> sealed::Sealed for &Vec<T> {}
impl<'a, T: Sync> Input for &'a Vec<T> {
    type Item = &'a T;
    type Source = Shared<'a, T>;
    fn into_source(self) -> Shared<'a, T> {
        Shared(self)
    }
}

impl<T: Sync, const N: usize> sealed::Sealed for &[T; N] {}
impl<'a, T: Sync, const N: usize> Input for &'a [T; N] {
    type Item = &'a T;
    type Source = Shared<'a, T>;
    fn into_source(self) -> Shared<'a, T> {
        Shared(self)
    }
}

impl<T: Send> sealed::Sealed for &mut [T] {}
impl<'a, T: Send> Input for &'a mut [T] {
    type Item = &'a mut T;
    type Source = Exclusive<'a, T>;
    fn into_source(self) -> Exclusive<'a, T> {
        Exclusive {
            len: self.len(),
            start: self.as_mut_ptr(),
            borrow: PhantomData,
        }
    }
}

impl<T: Send> sealed::Sealed for &mut Vec<T> {}
impl<'a, T: Send> Input for &'a mut Vec<T> {
    type Item = &'a mut T;
    type Source = Exclusive<'a, T>;
    fn into_source(self) -> Exclusive<'a, T> {
        self.as_mut_slice().into_source()
    }
}

impl<T: Send, const N: usize> sealed::Sealed for &mut [T; N] {}
impl<'a, T: Send, const N: usize> Input for &'a mut [T; N] {
    type Item = &'a mut T;
    type Source = Exclusive<'a, T>;
    fn into_source(self) -> Exclusive<'a, T> {
        self.as_mut_slice().into_source()
    }
}

impl<T: Send> sealed::Sealed for Vec<T> {}
impl<T: Send> Input for Vec<T> {
    type Item = T;
    type Source = Owned<T>;
    fn into_source(mut self) -> Owned<T> {
        let len = self.len();
        // SAFETY: 0 is within the capacity, and the items past the new
        // length stay initialised: they now belong to the source (see
        // `Owned`).
        unsafe { self.set_len(0) };
        Owned {
            start: self.as_mut_ptr(),
            _buffer: self,
            len,
        }
    }
}

impl sealed::Sealed for Range<usize> {}
impl Input for Range<usize> {
    type Item = usize;
    type Source = Indices;
    fn into_source(self) -> Indices {
        Indices {
            start: self.start,
            len: self.end.saturating_sub(self.start),
        }
    }
}

/// Takes the items of one range of a source in order, and records the ones
/// it did not take if it is dropped early (its chunk panicked or stopped), so
/// that the call can drop them once every chunk has stopped. Recording runs
/// no user code, so it is safe during unwinding.
pub(crate) struct Taking<'s, S: Source> {
    cursor: S::Cursor,
    next: usize,
    end: usize,
    untaken: &'s Mutex<Vec<Range<usize>>>,
}

impl<'s, S: Source> Taking<'s, S> {
    /// # Safety
    ///
    /// `range` is within the source and no index of it is taken elsewhere.
    pub(crate) unsafe fn new(
        source: &'s S,
        range: Range<usize>,
        untaken: &'s Mutex<Vec<Range<usize>>>,
    ) -> Self {
        Taking {
            cursor: source.cursor(),
            next: range.start,
            end: range.end,
            untaken,
        }
    }
}

impl<S: Source> Iterator for Taking<'_, S> {
    type Item = S::Item;
    #[inline]
    fn next(&mut self) -> Option<S::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        // SAFETY: `index` is in the range `new` was given, which is ours
        // alone, and `next` moves past it, so it is taken once.
        // The source outlives `'s`.
        Some(unsafe { S::take_at(self.cursor, index) })
    }
}

impl<S: Source> Drop for Taking<'_, S> {
    fn drop(&mut self) {
        if S::OWNS_ITEMS && self.next < self.end {
            // `lock` ignores poisoning: no panic while unwinding.
            lock(self.untaken).push(self.next..self.end);
        }
    }
}

/// Drops the items of `ranges`, which no one took, one at a time (see
/// [`drop_each`](crate::panic::drop_each)); returns the first panic of a
/// drop. Nothing to do for a source that owns no items.
///
/// # Safety
///
/// The ranges are within the source, disjoint, and none of their indices
/// was taken, nor will be.
pub(crate) unsafe fn drop_untaken<S: Source>(
    source: &S,
    ranges: impl IntoIterator<Item = Range<usize>>,
) -> Option<crate::panic::Panic> {
    if !S::OWNS_ITEMS {
        return None;
    }
    // SAFETY: by the caller's contract, each index is taken here once.
    crate::panic::drop_each(
        ranges
            .into_iter()
            .flatten()
            .map(|i| unsafe { source.take(i) }),
    )
}
