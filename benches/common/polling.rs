//! The reference system of the tick workloads: a hand-written "polling
//! helper" map that shows what helpers which are always on time can reach.
//!
//! `threads - 1` helper threads (one on a 2-thread run) **spin** between
//! calls, polling an atomic for the next job and never parking, while the
//! runner has them [engaged](Helper::engage) (the runner engages them for the
//! samples of the `polling` system only, so that they burn no core while the
//! other systems are timed; outside an engagement they park). A call
//! publishes its job, a map cut into chunks of [`CHUNK`] items; the caller
//! and every helper claim chunks through one atomic cursor and write their
//! results in place, and the caller returns once every chunk is done and no
//! helper is still inside the job.
//!
//! This is not a pool: no nesting, one call at a time (a second concurrent
//! call runs sequentially on its caller), a helper that panics aborts the
//! process. It is the lower bound on the latency of a parallel map whose
//! helpers are already running when the call comes, paid for by a core
//! spinning all the time; the tick workloads report process CPU time beside
//! wall time so that the price shows.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Items per chunk: about 4 µs of the tick workloads' ~60 ns items, small
/// enough that the ~50 µs call still splits into a dozen chunks.
pub const CHUNK: usize = 64;

/// One call's work: `chunks` chunks, claimed through `cursor`.
struct Job<'a> {
    /// The call's number, so that a helper runs each job once.
    id: u64,
    /// The next chunk to claim (may run past `chunks`).
    cursor: AtomicUsize,
    /// Chunks in the job.
    chunks: usize,
    /// Chunks finished (their results written).
    done: AtomicUsize,
    /// Runs one chunk.
    run: &'a (dyn Fn(usize) + Sync),
}

impl Job<'_> {
    /// Claims and runs chunks until none is left.
    fn work(&self) {
        loop {
            let chunk = self.cursor.fetch_add(1, Ordering::Relaxed);
            if chunk >= self.chunks {
                return;
            }
            (self.run)(chunk);
            // Release: the chunk's results before the count that the caller
            // reads with Acquire.
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// A value alone on its cache line(s), so that the helpers' registrations
/// do not bounce the line the idle helpers poll.
#[repr(align(128))]
struct Padded<T>(T);

/// What the caller and the helpers share.
struct Shared {
    /// The published job, or null. Points into the caller's stack while the
    /// caller is inside [`Helper::map`].
    job: Padded<AtomicPtr<Job<'static>>>,
    /// Helpers inside the published job: the caller withdraws the job, then
    /// waits for this to be 0 before its stack frame goes.
    busy: Padded<AtomicUsize>,
    /// Active engagements: the helpers spin while it is above 0, else park.
    engaged: AtomicUsize,
    /// Set once when the [`Helper`] drops.
    exit: AtomicBool,
    /// Whether a call is in progress (calls are one at a time).
    in_call: AtomicBool,
    /// The next job's id.
    next_id: AtomicU64,
}

/// The polling helpers: `threads - 1` spinning threads (see the module
/// documentation).
pub struct Helper {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// While alive, the helpers spin between calls instead of parking.
pub struct Engaged<'a>(&'a Helper);

impl Drop for Engaged<'_> {
    fn drop(&mut self) {
        self.0.shared.engaged.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Helper {
    /// Starts `threads - 1` helpers (none for one thread: every call then
    /// runs on its caller), parked until [engaged](Self::engage).
    pub fn new(threads: usize) -> Result<Helper, String> {
        let shared = Arc::new(Shared {
            job: Padded(AtomicPtr::new(std::ptr::null_mut())),
            busy: Padded(AtomicUsize::new(0)),
            engaged: AtomicUsize::new(0),
            exit: AtomicBool::new(false),
            in_call: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let mut helper = Helper {
            shared,
            threads: Vec::new(),
        };
        for index in 0..threads.saturating_sub(1) {
            let shared = Arc::clone(&helper.shared);
            let thread = std::thread::Builder::new()
                .name(format!("polling-helper-{index}"))
                .spawn(move || helper_loop(&shared))
                .map_err(|e| format!("cannot start a polling helper: {e}"))?;
            // Pushed at once, so that a later failure still joins it.
            helper.threads.push(thread);
        }
        Ok(helper)
    }

    /// Makes the helpers spin (poll for jobs without parking) until the
    /// returned guard drops.
    pub fn engage(&self) -> Engaged<'_> {
        self.shared.engaged.fetch_add(1, Ordering::AcqRel);
        for thread in &self.threads {
            thread.thread().unpark();
        }
        Engaged(self)
    }

    /// Maps `f` over `input`, keeping input order: the caller and the
    /// helpers (if engaged) claim chunks of [`CHUNK`] items.
    pub fn map<T, R, F>(&self, input: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        let len = input.len();
        let shared = &*self.shared;
        if self.threads.is_empty()
            || len <= CHUNK
            || shared
                .in_call
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return input.iter().map(f).collect();
        }

        let mut output: Vec<R> = Vec::with_capacity(len);
        let slots = SlotPtr(output.spare_capacity_mut().as_mut_ptr());
        let run = |chunk: usize| {
            let start = chunk * CHUNK;
            let end = (start + CHUNK).min(len);
            for (i, item) in input[start..end].iter().enumerate() {
                // SAFETY: `start + i < len <= capacity`, and chunks are
                // disjoint, each claimed by one thread through the cursor.
                unsafe { (*slots.get().add(start + i)).write(f(item)) };
            }
        };
        let job = Job {
            id: shared.next_id.fetch_add(1, Ordering::Relaxed),
            cursor: AtomicUsize::new(0),
            chunks: len.div_ceil(CHUNK),
            done: AtomicUsize::new(0),
            run: &run,
        };
        let published: *const Job<'_> = &job;
        shared.job.0.store(
            published.cast::<Job<'static>>().cast_mut(),
            Ordering::SeqCst,
        );
        // Withdraws the job and waits for the helpers to leave it, also if
        // `f` panics on this thread.
        let _withdraw = Withdraw(shared);

        job.work();
        while job.done.load(Ordering::Acquire) < job.chunks {
            std::hint::spin_loop();
        }
        drop(_withdraw);
        // SAFETY: every chunk of `0..len` is done (its results written,
        // ordered before the Acquire load of `done`), each exactly once.
        unsafe { output.set_len(len) };
        output
    }
}

/// Withdraws the published job when dropped: clears it, waits until no
/// helper is inside it, and ends the call.
struct Withdraw<'a>(&'a Shared);

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        // SeqCst with the helpers' registration (Dekker): either a helper
        // sees the job withdrawn after registering, or this sees it busy.
        shared.job.0.store(std::ptr::null_mut(), Ordering::SeqCst);
        while shared.busy.0.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        shared.in_call.store(false, Ordering::Release);
    }
}

/// The output's slots, shared by the threads of one call.
struct SlotPtr<R>(*mut MaybeUninit<R>);

impl<R> Clone for SlotPtr<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for SlotPtr<R> {}

impl<R> SlotPtr<R> {
    /// The pointer (a method, so that closures capture the whole wrapper).
    fn get(self) -> *mut MaybeUninit<R> {
        self.0
    }
}

// SAFETY: the threads of a call write disjoint slots (see `Helper::map`),
// and `R: Send` there.
unsafe impl<R: Send> Sync for SlotPtr<R> {}
// SAFETY: as above.
unsafe impl<R: Send> Send for SlotPtr<R> {}

/// A helper: while engaged, polls for jobs and runs chunks of each new one;
/// otherwise parks.
fn helper_loop(shared: &Shared) {
    let mut last_id = 0;
    loop {
        if shared.exit.load(Ordering::Acquire) {
            return;
        }
        if shared.engaged.load(Ordering::Acquire) == 0 {
            std::thread::park();
            continue;
        }
        let job = shared.job.0.load(Ordering::Acquire);
        if job.is_null() {
            std::hint::spin_loop();
            continue;
        }
        shared.busy.0.fetch_add(1, Ordering::SeqCst);
        if shared.job.0.load(Ordering::SeqCst) == job {
            // SAFETY: the job is still published after this helper
            // registered as busy, so the caller waits for `busy` to drop to
            // 0 before its frame (and the job) goes.
            let job = unsafe { &*job };
            if job.id != last_id {
                last_id = job.id;
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.work()));
                if ran.is_err() {
                    // The caller would wait forever for the chunk.
                    std::process::abort();
                }
            }
        }
        shared.busy.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.shared.exit.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
