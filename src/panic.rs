//! Panics as the engine handles them: the payload type, and the rule that a
//! user's panic never escapes a worker, whether raised by user code or by the
//! `Drop` of a user value that the engine drops.
//!
//! User code runs under `catch_unwind`; its payload travels to whoever waits
//! for the result. The engine also drops user values of its own accord (the
//! results of a failed map, a detached task's result, a second panic's
//! payload): those drops are user code too, and go through [`drop_caught`],
//! which hands a panic back instead of unwinding. Where no one waits for it
//! (a detached task), the panic is [`report`]ed on stderr like a hook's and
//! the worker carries on.

use std::any::Any;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The payload of a panic.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Drops `value`, returning the panic its `Drop` raised, if any.
#[inline]
pub(crate) fn drop_caught<T>(value: T) -> Option<Panic> {
    catch_unwind(AssertUnwindSafe(move || drop(value))).err()
}

/// Drops a panic payload that will not be re-raised (a second panic of the
/// same call). Its own `Drop` may panic, with a payload whose drop may panic
/// in turn: each is dropped the same way, and after a few rounds the last
/// one is forgotten (leaked) rather than risk an endless chain.
pub(crate) fn discard(mut panic: Panic) {
    for _ in 0..4 {
        match drop_caught(panic) {
            None => return,
            Some(again) => panic = again,
        }
    }
    std::mem::forget(panic);
}

/// Keeps the first of several panics: `first` becomes `panic` if empty,
/// otherwise `panic` is discarded.
pub(crate) fn keep_first(first: &mut Option<Panic>, panic: Panic) {
    match first {
        None => *first = Some(panic),
        Some(_) => discard(panic),
    }
}

/// The message of a panic payload, for a report.
pub(crate) fn message(panic: &Panic) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}

/// Reports a panic that nobody waits for (a hook's, or a drop on a worker of
/// a value nobody owns any more) on stderr, and discards it.
#[cold]
pub(crate) fn report(what: &str, index: Option<usize>, panic: Panic) {
    let message = message(&panic);
    match index {
        Some(index) => eprintln!("stealpool: {what} panicked on worker {index}: {message}"),
        None => eprintln!("stealpool: {what} panicked: {message}"),
    }
    discard(panic);
}

/// Holds a value while user code that may unwind runs (a join's `a` result
/// while `b` runs). If that code unwinds, the unwinding drops the holder,
/// which drops the value under `catch_unwind` and discards its panic: the
/// panic already unwinding is the one re-raised, and a `Drop` that panics
/// during it would abort the process. On the normal path
/// [`into_inner`](Self::into_inner) takes the value back at no cost.
pub(crate) struct HeldAcrossUnwind<T>(ManuallyDrop<T>);

impl<T> HeldAcrossUnwind<T> {
    #[inline(always)]
    pub(crate) fn new(value: T) -> Self {
        HeldAcrossUnwind(ManuallyDrop::new(value))
    }

    #[inline(always)]
    pub(crate) fn into_inner(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped (it is a `ManuallyDrop`), so the
        // value is taken out exactly once, here.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for HeldAcrossUnwind<T> {
    fn drop(&mut self) {
        // SAFETY: `into_inner` forgets the holder, so this runs only for a
        // holder whose value was never taken, once.
        let value = unsafe { ManuallyDrop::take(&mut self.0) };
        if let Some(panic) = drop_caught(value) {
            discard(panic);
        }
    }
}

/// Aborts the process when dropped during unwinding: the engine's own code
/// must never unwind (a worker that unwound would strand the jobs in its
/// deque), so reaching this is a bug in stealpool, not in the user.
pub(crate) struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("stealpool: a job unwound out of the scheduler; aborting");
        std::process::abort();
    }
}

/// Drops each of `values` in turn, even if some drops panic; returns the
/// first panic (later ones are discarded).
pub(crate) fn drop_each<T>(values: impl IntoIterator<Item = T>) -> Option<Panic> {
    let mut first = None;
    for value in values {
        if let Some(panic) = drop_caught(value) {
            keep_first(&mut first, panic);
        }
    }
    first
}

/// Re-raises the panic of a `Drop` that had to finish its work first,
/// unless the thread is already unwinding (a second panic would abort).
pub(crate) fn resume_after_drop(panic: Option<Panic>) {
    if let Some(panic) = panic {
        if crate::sync::panicking() {
            discard(panic);
        } else {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A queue of user values that drops like one value: when dropped, every
/// value is dropped, and if some `Drop`s panic, the first panic is raised
/// once all are done. (A plain `VecDeque` drops the values after a panicking
/// one while unwinding, so a second panicking value aborts the process.)
pub(crate) struct DropEach<T>(pub(crate) VecDeque<T>);

impl<T> Default for DropEach<T> {
    fn default() -> Self {
        DropEach(VecDeque::new())
    }
}

impl<T> Drop for DropEach<T> {
    fn drop(&mut self) {
        resume_after_drop(drop_each(self.0.drain(..)));
    }
}
