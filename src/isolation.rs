//! Isolation: a thread that waits inside a pool call runs only that call's
//! work.
//!
//! Every pool call that hands work to other threads (a map that asked for
//! help, a join, `apply`, a scope, a task) gets a [`Call`]: a node on
//! the stack (or, for a task, in its shared state) that points to the call it
//! was made in, its *parent*. The nodes of one thread of calls form a tree,
//! rooted at a call made outside every pool job. Each job knows its call, and
//! a worker running a job works *inside* that call (`WorkerThread::enter`),
//! so the calls it makes become children of it.
//!
//! A worker that waits for a call states what it will accept ([`Waiting`]):
//!
//! * [`Waiting::Idle`]: anything (the main loop, the drain at shutdown);
//! * [`Waiting::Own`]: only the jobs of calls *under* the awaited one (the
//!   call itself or its descendants): the map's tickets, the join's `b` and
//!   what it forked, the scope's tasks, and calls nested inside those;
//! * [`Waiting::Foreign`]: a worker waiting for a call on *another* pool
//!   takes the jobs under the awaited call and every other job of its own
//!   pool except those of the calls that enclose its wait (the call it
//!   works in and that call's ancestors; for a call made there, the awaited
//!   call's ancestors; a task's or an `Imap`'s call is a root, whose
//!   ancestors say nothing), and those of the calls that enclose the
//!   foreign waits below it on the thread's stack: a foreign wait may run a
//!   job of an unrelated call, which may wait again, and the outer loop
//!   whose item holds a lock across the first call must not be re-entered
//!   there either ([`EnclosingWait`]). Refusing more would
//!   deadlock one-thread pools that call into each other: two callers at
//!   once, each pool's worker waiting for the other's job
//!   (`tests/cross_pool.rs`), or the two branches of one `join` each holding
//!   the worker of the pool the other calls back into (found by the stress
//!   test).
//!
//! A job that a waiter will not run is *set aside*: pushed on the pool's
//! injector, where an idle worker or a waiter that accepts it takes it
//! (`WorkerThread::set_aside`). The sleep protocol pokes waiters that accept
//! a newly published job (`Sleep::new_work`), so a waiter needs no timeout.
//!
//! Lifetimes: a node outlives every job of its call and every child call
//! (a call waits for all its jobs before it returns; a task's node lives as
//! long as its job), so the chain from a live job's node to its root is
//! alive. Publishers that may lose the job to another thread before they
//! look at the waiters copy the chain's addresses first ([`chain_of`]) and
//! compare only addresses afterwards.

use std::ptr;

/// A pool call that waits for work it handed out: a node of the call tree.
///
/// Once a pointer to a node has been handed out, the node must not move.
pub(crate) struct Call {
    /// The call this one was made in, or null for a root.
    parent: *const Call,
}

// SAFETY: a `Call` is an address, read by any thread that holds a job of the
// call (or of a call under it); the nodes it leads to are alive as long as
// such a job is (see the module documentation).
unsafe impl Send for Call {}
// SAFETY: as above; a node is never written after it is made.
unsafe impl Sync for Call {}

impl Call {
    /// A new node under `parent` (null: a new root).
    ///
    /// # Safety
    ///
    /// `parent` is null or points to a live node that outlives the new one
    /// (what every walk up the chain relies on).
    pub(crate) unsafe fn under(parent: *const Call) -> Call {
        Call { parent }
    }

    /// The call this one was made in, or null (the mutant
    /// `foreign_wait_ignores_its_context` reads it).
    #[cfg(stealpool_mutant = "foreign_wait_ignores_its_context")]
    pub(crate) fn parent(&self) -> *const Call {
        self.parent
    }

    /// A new root node.
    pub(crate) const fn root() -> Call {
        Call {
            parent: ptr::null(),
        }
    }
}

/// What a waiting worker accepts to run, by the call of the job.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Waiting {
    /// Not waiting for a call: any job.
    Idle,
    /// Waiting for this call of the worker's own pool: only jobs under it.
    Own(*const Call),
    /// Waiting for this call on another pool: the jobs under it, and every
    /// other job but those of the calls that enclose the wait and the
    /// foreign waits below it on the thread. The second field is the wait's
    /// own frame, which says what encloses it (`WorkerThread::wait_until`
    /// sets it); while it is null, the awaited call's ancestors are taken to
    /// enclose it.
    Foreign(*const Call, *const EnclosingWait),
}

/// A foreign wait under way on a worker's stack: what encloses it, for
/// itself and for the foreign waits that the jobs it runs make in turn,
/// which refuse what it refuses.
pub(crate) struct EnclosingWait {
    /// The call the worker worked in when it began to wait (null: none):
    /// its jobs and those of its ancestors are refused.
    pub(crate) inside: *const Call,
    /// The next foreign wait below it on the thread, or null.
    pub(crate) below: *const EnclosingWait,
}

impl Waiting {
    /// The waiting rule for a wait on `call`, made on a pool that is (`own`)
    /// or is not the waiting worker's.
    pub(crate) fn for_call(call: *const Call, own: bool) -> Waiting {
        if own {
            Waiting::Own(call)
        } else {
            Waiting::Foreign(call, ptr::null())
        }
    }

    /// Whether a job of `job` (null: a job of no call) may run in this wait.
    ///
    /// # Safety
    ///
    /// `job` is null or a live node (its job is held by the caller), and the
    /// awaited call is alive (its waiter is the caller).
    #[inline]
    pub(crate) unsafe fn accepts(self, job: *const Call) -> bool {
        // Mutant `waiter_runs_foreign`: every wait accepts every job, as
        // before isolation.
        #[cfg(stealpool_mutant = "waiter_runs_foreign")]
        return true;
        #[cfg(not(stealpool_mutant = "waiter_runs_foreign"))]
        match self {
            Waiting::Idle => true,
            // SAFETY: forwarded to the caller.
            Waiting::Own(awaited) => unsafe { is_under(job, awaited) },
            // Refused: the calls that enclose this wait and the waits below.
            // SAFETY: forwarded to the caller; the wait's frame and those
            // below are alive (on this thread's stack), and their calls.
            Waiting::Foreign(awaited, this) => unsafe {
                job.is_null()
                    || is_under(job, awaited)
                    || !refused_by(awaited, this).any(|node| ptr::eq(node, job))
            },
        }
    }

    /// What a waiter shows to publishers (`Sleep`), who compare addresses
    /// only: see [`Shown`].
    ///
    /// # Safety
    ///
    /// The awaited call is alive.
    pub(crate) unsafe fn shown(self) -> Shown {
        let mut shown = Shown {
            awaited: ptr::null(),
            foreign: false,
            enclosing: [ptr::null(); SHOWN_ENCLOSING],
            deep: false,
        };
        match self {
            Waiting::Idle => {}
            Waiting::Own(awaited) => shown.awaited = awaited,
            Waiting::Foreign(awaited, this) => {
                shown.awaited = awaited;
                shown.foreign = true;
                // SAFETY: the awaited call, the wait's frame and those below
                // are alive, and so are the calls they lead to.
                let mut refused = unsafe { refused_by(awaited, this) };
                for (slot, node) in shown.enclosing.iter_mut().zip(&mut refused) {
                    *slot = node;
                }
                // The others go behind the slot's lock.
                shown.deep = refused.next().is_some();
            }
        }
        shown
    }
}

impl Waiting {
    /// For a foreign wait whose showing does not list every call whose jobs
    /// it refuses (`Shown::deep`): appends the addresses of the others to
    /// `out`: its enclosing calls past the listed ones, then those of the
    /// foreign waits below it. Nothing for other waits.
    ///
    /// # Safety
    ///
    /// The awaited call is alive, and so are the waits below.
    pub(crate) unsafe fn enclosing_beyond(self, out: &mut Vec<usize>) {
        let Waiting::Foreign(awaited, this) = self else {
            return;
        };
        // SAFETY: as in `shown`.
        let refused = unsafe { refused_by(awaited, this) };
        out.extend(refused.skip(SHOWN_ENCLOSING).map(|node| node as usize));
    }
}

/// The most enclosing calls a foreign wait shows in its slot's atomics
/// (nearest first); a deeper wait says so (`deep`), and lists the others
/// behind its slot's lock (`Waiting::enclosing_beyond`).
pub(crate) const SHOWN_ENCLOSING: usize = 8;

/// What a showing says about a job ([`Shown::judge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The wait accepts the job.
    Accepts,
    /// The wait refuses the job (or shows no wait).
    Refuses,
    /// A deep foreign wait, and the job's call (this one) is neither under
    /// the awaited call nor one of the listed enclosing calls: the wait
    /// accepts the job unless the call is among its other enclosing calls
    /// (`Waiting::enclosing_beyond`), which the publisher looks up.
    Unlisted(*const Call),
}

/// A wait as publishers see it: addresses to compare, never to dereference
/// (the wait may be over by the time they look; a stale showing only costs
/// a spurious poke, see `Sleep`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown {
    /// The awaited call, or null (no wait).
    pub(crate) awaited: *const Call,
    /// A wait on another pool's call (`Waiting::Foreign`).
    pub(crate) foreign: bool,
    /// For a foreign wait: the awaited call's nearest ancestors, null after
    /// the root.
    pub(crate) enclosing: [*const Call; SHOWN_ENCLOSING],
    /// For a foreign wait: it has more ancestors than `enclosing` holds.
    pub(crate) deep: bool,
}

impl Shown {
    /// Whether this wait accepts a job whose call chain is `chain` (the
    /// job's call first, up to its root; empty for a job of no call), as
    /// far as the showing tells: exactly, but for a deep foreign wait's
    /// unlisted enclosing calls ([`Verdict::Unlisted`]).
    pub(crate) fn judge(&self, mut chain: impl Iterator<Item = *const Call>) -> Verdict {
        if self.awaited.is_null() {
            return Verdict::Refuses;
        }
        let Some(call) = chain.next() else {
            return if self.foreign {
                Verdict::Accepts
            } else {
                Verdict::Refuses
            };
        };
        if ptr::eq(call, self.awaited) || chain.any(|node| ptr::eq(node, self.awaited)) {
            return Verdict::Accepts;
        }
        if !self.foreign
            || self
                .enclosing
                .iter()
                .any(|&node| !node.is_null() && ptr::eq(node, call))
        {
            return Verdict::Refuses;
        }
        if self.deep {
            Verdict::Unlisted(call)
        } else {
            Verdict::Accepts
        }
    }
}

/// The nodes from `call` up to its root.
///
/// # Safety
///
/// `call` is null or a live node, alive while the iterator is used.
pub(crate) unsafe fn walk(call: *const Call) -> impl Iterator<Item = *const Call> {
    std::iter::successors((!call.is_null()).then_some(call), |&node| {
        // SAFETY: a live node's ancestors are alive (the caller's contract).
        let parent = unsafe { (*node).parent };
        (!parent.is_null()).then_some(parent)
    })
}

/// The calls a foreign wait on `awaited` refuses, nearest first: those its
/// frame `this` and the frames below it enclose (each one's `inside` and
/// that call's ancestors), or, with no frame, the awaited call's ancestors.
///
/// # Safety
///
/// `awaited`, the frame and the frames below it are alive, and so are the
/// calls they lead to, while the iterator is used.
unsafe fn refused_by(awaited: *const Call, this: *const EnclosingWait) -> Refused {
    // SAFETY: forwarded to the caller.
    match unsafe { this.as_ref() } {
        Some(this) => Refused {
            node: this.inside,
            // Mutant `nested_wait_forgets_below`: a foreign wait refuses
            // only the calls that enclose it, not those of the foreign waits
            // below it on the thread.
            #[cfg(not(stealpool_mutant = "nested_wait_forgets_below"))]
            below: this.below,
            #[cfg(stealpool_mutant = "nested_wait_forgets_below")]
            below: ptr::null(),
        },
        // SAFETY: the awaited call is alive.
        None => Refused {
            node: unsafe { (*awaited).parent },
            below: ptr::null(),
        },
    }
}

/// The iterator of [`refused_by`]: the nodes from `node` up to its root,
/// then those of each wait from `below` down.
struct Refused {
    node: *const Call,
    below: *const EnclosingWait,
}

impl Iterator for Refused {
    type Item = *const Call;

    fn next(&mut self) -> Option<*const Call> {
        loop {
            if !self.node.is_null() {
                let node = self.node;
                // SAFETY: `refused_by`, the only maker of this private type,
                // requires every node and wait it reaches to be alive while
                // it is used.
                self.node = unsafe { (*node).parent };
                return Some(node);
            }
            // SAFETY: as above.
            let wait = unsafe { self.below.as_ref() }?;
            self.node = wait.inside;
            self.below = wait.below;
        }
    }
}

/// Whether `node` is `awaited` or a descendant of it.
///
/// # Safety
///
/// `node` is null or a live node.
unsafe fn is_under(mut node: *const Call, awaited: *const Call) -> bool {
    while !node.is_null() {
        if ptr::eq(node, awaited) {
            return true;
        }
        // SAFETY: a live node's ancestors are alive.
        node = unsafe { (*node).parent };
    }
    false
}

/// The addresses from `node` up to its root, the root last: what a publisher
/// keeps to recognise, after it let go of a job, the waiters that accept it.
///
/// # Safety
///
/// `node` is null or a live node.
pub(crate) unsafe fn chain_of(node: *const Call) -> Vec<*const Call> {
    // SAFETY: forwarded to the caller.
    unsafe { walk(node) }.collect()
}

#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn a_wait_accepts_exactly_the_jobs_under_its_call() {
        // Each node is placed before a pointer to it is taken, and outlives
        // the nodes made under it (all live to the end of this frame).
        let root = Call::root();
        // SAFETY: `root` is alive.
        let outer = unsafe { Call::under(&root) };
        // SAFETY: `outer` is alive.
        let inner = unsafe { Call::under(&outer) };
        // SAFETY: `outer` is alive.
        let sibling = unsafe { Call::under(&outer) };
        // SAFETY: `inner` is alive.
        let nested = unsafe { Call::under(&inner) };
        let other_tree = Call::root();
        // SAFETY: every node is alive in this frame.
        unsafe {
            let own = Waiting::Own(&inner);
            assert!(own.accepts(&inner));
            assert!(own.accepts(&nested));
            assert!(!own.accepts(&outer), "an enclosing call");
            assert!(!own.accepts(&sibling), "a sibling call");
            assert!(!own.accepts(&root));
            assert!(!own.accepts(&other_tree), "an unrelated call");
            assert!(!own.accepts(ptr::null()), "a job of no call");
            let foreign = Waiting::Foreign(&inner, ptr::null());
            assert!(foreign.accepts(&nested));
            assert!(!foreign.accepts(&outer), "an enclosing call");
            assert!(foreign.accepts(&sibling), "not enclosing the wait");
            assert!(!foreign.accepts(&root), "an enclosing call");
            assert!(foreign.accepts(&other_tree), "an unrelated tree");
            assert!(foreign.accepts(ptr::null()), "a job of no call");
            assert!(Waiting::Idle.accepts(&sibling));

            // What publishers see agrees with `accepts`.
            for waiting in [own, foreign] {
                for job in [
                    &nested as *const Call,
                    &inner,
                    &outer,
                    &sibling,
                    &root,
                    &other_tree,
                    ptr::null(),
                ] {
                    assert_eq!(
                        waiting.shown().judge(walk(job)),
                        if waiting.accepts(job) {
                            Verdict::Accepts
                        } else {
                            Verdict::Refuses
                        },
                        "{waiting:?}"
                    );
                }
            }
        }
    }

    /// A foreign wait deeper than the showing's atomics hold: with the list
    /// of its other enclosing calls, publishers judge every job exactly.
    #[test]
    fn a_deep_foreign_wait_is_judged_exactly() {
        const DEPTH: usize = SHOWN_ENCLOSING + 4;
        // Boxed so that each node stays where it is while more are made.
        let mut chain: Vec<Box<Call>> = vec![Box::new(Call::root())];
        let mut siblings: Vec<Box<Call>> = Vec::new();
        for _ in 0..DEPTH {
            let parent: *const Call = &**chain.last().expect("the root is there");
            // SAFETY: `parent` is boxed and outlives the new node.
            chain.push(Box::new(unsafe { Call::under(parent) }));
            // SAFETY: as above.
            siblings.push(Box::new(unsafe { Call::under(parent) }));
        }
        let awaited: *const Call = &**chain.last().expect("made above");
        let waiting = Waiting::Foreign(awaited, ptr::null());
        // SAFETY: every node is alive until the end of the test.
        unsafe {
            let shown = waiting.shown();
            assert!(shown.deep);
            let mut beyond = Vec::new();
            waiting.enclosing_beyond(&mut beyond);
            assert_eq!(beyond.len(), DEPTH - SHOWN_ENCLOSING);
            let mut unlisted = 0;
            for job in chain.iter().chain(&siblings) {
                let job: *const Call = &**job;
                let judged = match shown.judge(walk(job)) {
                    Verdict::Accepts => true,
                    Verdict::Refuses => false,
                    Verdict::Unlisted(call) => {
                        unlisted += 1;
                        !beyond.contains(&(call as usize))
                    }
                };
                assert_eq!(judged, waiting.accepts(job));
            }
            // The far ancestors, and the siblings beside them.
            assert!(unlisted > 0);
            // The nearest ancestors are refused from the atomics alone.
            let parent: *const Call = &*chain[DEPTH - 1];
            assert!(!waiting.accepts(parent));
            assert_eq!(shown.judge(walk(parent)), Verdict::Refuses);
        }
    }
}
