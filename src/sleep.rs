//! The sleep/wake protocol: idle workers spin briefly, then sleep on their own
//! slot; whoever publishes work wakes one of them per job it published at
//! once, beyond those already searching.
//!
//! `docs/design.md` ("Sleeping and waking") gives the full argument; in short:
//!
//! * A worker is **busy**, **searching** (awake, looking for work) or
//!   **sleeping** (blocked on its slot's condition variable). `counters` holds
//!   how many are searching and how many sleeping, packed in one word so that a
//!   publisher reads both at once.
//! * A **publisher** (a push of a job, a latch set, shutdown) first makes its
//!   news visible, then runs `fence(SeqCst)`, then reads `counters` (or a
//!   worker's `state`) to decide whom to wake.
//! * A worker **going to sleep** first announces it (`state` and
//!   counter), then runs `fence(SeqCst)`, then checks once more for news (its
//!   latch, the queues). Only if there is none does it block.
//!
//! The two fences are totally ordered. If the publisher's comes first, the
//! sleeper's re-check sees the news; if the sleeper's comes first, the
//! publisher sees the sleeper and wakes it. Either way nothing is lost, and no
//! correctness depends on a timeout.
//!
//! Publishers skip the wake-up when some worker is already searching: that
//! worker will find the job. When the last searcher stops searching it wakes a
//! sleeper if work is left, so a burst of jobs pushed one by one recruits
//! workers one at a time, and only as many as there are jobs for. Jobs
//! published together (a call's wave of tickets, `new_work_for`) wake their
//! workers in that one step.
//!
//! A worker that waits inside a call (`isolation.rs`) is none of these: it
//! runs only the jobs its wait accepts, so general news must not wake it.
//! It *shows* its wait in its slot (the awaited call's address), and a
//! publisher whose job that wait accepts *pokes* it: sets the slot's `poked`
//! flag and wakes it if it sleeps. The same two-fence argument, with the
//! showing in place of the counters and `poked` in place of the queues,
//! loses no poke (`docs/design.md`).

use crate::isolation::{Call, Shown, Verdict, SHOWN_ENCLOSING};
use crate::stats::StatCounter;
use crate::sync::Ordering;
use crate::sync::{fence, lock, wait, AtomicBool, AtomicPtr, AtomicUsize, Condvar, Mutex};
use crossbeam_utils::CachePadded;
use std::ptr;

/// Bits of `counters` per field: from the low end, the counts of sleeping
/// (idle) workers, of searching workers, and of workers showing a wait.
const FIELD: u32 = usize::BITS / 3;
const ONE_SLEEPING: usize = 1;
const ONE_SEARCHING: usize = 1 << FIELD;
const ONE_WAITING: usize = 1 << (2 * FIELD);
const FIELD_MASK: usize = (1 << FIELD) - 1;

/// The most workers one pool may have, so that each counter fits its field.
pub(crate) const MAX_THREADS: usize = FIELD_MASK;

fn sleeping_of(counters: usize) -> usize {
    counters & FIELD_MASK
}

fn searching_of(counters: usize) -> usize {
    (counters >> FIELD) & FIELD_MASK
}

fn waiting_of(counters: usize) -> usize {
    (counters >> (2 * FIELD)) & FIELD_MASK
}

/// A slot's `state`: the worker is not blocked.
const AWAKE: usize = 0;
/// The worker is (about to be) blocked, idle: any job is news to it.
const IDLE: usize = 1;
/// The worker is (about to be) blocked in a wait: only its probe and pokes
/// are news to it.
const WAITING: usize = 2;

/// Where one worker sleeps.
struct Slot {
    /// `AWAKE`, `IDLE` or `WAITING`. Written only with `mutex` held; read
    /// without it by publishers that look for a sleeper.
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
    /// The wait the worker shows to publishers (see `isolation::Shown`),
    /// field by field: the awaited call, or null.
    awaited: AtomicPtr<Call>,
    /// `Shown::foreign`.
    foreign: AtomicBool,
    /// `Shown::enclosing`.
    enclosing: [AtomicPtr<Call>; SHOWN_ENCLOSING],
    /// `Shown::deep`.
    deep: AtomicBool,
    /// For a deep foreign wait: the addresses of its enclosing calls past
    /// those in `enclosing` (`Waiting::enclosing_beyond`), written by the
    /// worker before it shows the wait, read by publishers whose job's call
    /// the atomics leave open (`Verdict::Unlisted`). Without it a deep
    /// waiter was poked for the jobs it refuses, and two of them poked each
    /// other for one such job without end, each setting it aside.
    beyond: Mutex<Vec<usize>>,
    /// Set by a publisher whose job the shown wait accepts; cleared by the
    /// worker before each search.
    poked: AtomicBool,
    /// Times this slot's worker blocked (it is the only writer).
    parks: StatCounter,
}

/// Blocks on `slot`'s condition variable, whose mutex `guard` holds, until
/// a waker sets the state back to `AWAKE` (under the mutex, so the loop also
/// absorbs spurious condition-variable wake-ups). The park is counted before
/// blocking, so that a worker asleep now is counted.
fn block(slot: &Slot, mut guard: crate::sync::MutexGuard<'_, ()>) {
    slot.parks.add(1);
    while slot.state.load(Ordering::Relaxed) != AWAKE {
        guard = wait(&slot.condvar, guard);
    }
}

/// The sleep state of one pool.
pub(crate) struct Sleep {
    counters: CachePadded<AtomicUsize>,
    slots: Box<[CachePadded<Slot>]>,
    /// Where `wake_one` starts looking, rotated so that wake-ups spread.
    next_wake: AtomicUsize,
    /// Wake-ups issued, for `Pool::stats`.
    wakeups: StatCounter,
}

impl Sleep {
    pub(crate) fn new(threads: usize) -> Sleep {
        let slots = (0..threads)
            .map(|_| {
                CachePadded::new(Slot {
                    state: AtomicUsize::new(AWAKE),
                    mutex: Mutex::new(()),
                    condvar: Condvar::new(),
                    awaited: AtomicPtr::new(ptr::null_mut()),
                    foreign: AtomicBool::new(false),
                    enclosing: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
                    deep: AtomicBool::new(false),
                    beyond: Mutex::new(Vec::new()),
                    poked: AtomicBool::new(false),
                    parks: StatCounter::default(),
                })
            })
            .collect();
        Sleep {
            counters: CachePadded::new(AtomicUsize::new(0)),
            slots,
            next_wake: AtomicUsize::new(0),
            wakeups: StatCounter::default(),
        }
    }

    /// The number of times workers blocked so far, counted when they block
    /// (a worker asleep now is counted).
    pub(crate) fn parks(&self) -> u64 {
        self.slots.iter().map(|slot| slot.parks.get()).sum()
    }

    /// How many workers sleep idle now (a hint, stale at once).
    pub(crate) fn idle_sleepers(&self) -> usize {
        // Relaxed: a hint for the map family's choice to ask for help
        // (`engagement::Punctuality`), which either choice keeps correct.
        sleeping_of(self.counters.load(Ordering::Relaxed))
    }

    /// Whether some worker is idle now, searching or asleep (a hint).
    pub(crate) fn any_idle(&self) -> bool {
        // Relaxed: a hint for `join`'s early offer, which either answer
        // keeps correct (an offer is a push, as at any heartbeat).
        let counters = self.counters.load(Ordering::Relaxed);
        sleeping_of(counters) + searching_of(counters) > 0
    }

    /// The number of wake-ups issued so far.
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.get()
    }

    /// A worker with nothing to do starts searching.
    pub(crate) fn start_searching(&self) {
        // Relaxed: the count only steers wake-up decisions; the fences in
        // `new_work` and `stop_searching` order it where it matters.
        self.counters.fetch_add(ONE_SEARCHING, Ordering::Relaxed);
    }

    /// A searching worker stops searching (it found a job, or its latch was
    /// set). If it was the last searcher, publishers may have skipped waking
    /// anyone because of it, so it passes the baton: it wakes a sleeper when
    /// work is left.
    ///
    /// Returns the number of workers it woke (0 or 1).
    #[cfg_attr(stealpool_mutant = "baton_dropped", allow(unreachable_code))]
    pub(crate) fn stop_searching(&self, work_left: impl FnOnce() -> bool) -> usize {
        let before = self.counters.fetch_sub(ONE_SEARCHING, Ordering::Relaxed);
        // Mutant `baton_dropped`: the last searcher never passes the baton.
        #[cfg(stealpool_mutant = "baton_dropped")]
        return 0;
        if searching_of(before) != 1 || sleeping_of(before) == 0 {
            return 0;
        }
        // SeqCst fence, pairing with the one in `new_work`: a publisher that
        // saw us searching (and so woke nobody) ran its fence before this one,
        // so `work_left` sees its job (or a later state in which someone took
        // it). (Mutant `baton_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "baton_no_fence"))]
        fence(Ordering::SeqCst);
        if work_left() {
            self.wake_one()
        } else {
            0
        }
    }

    /// Called after a new job was made visible (pushed on a deque or the
    /// injector). Wakes one idle sleeper unless a searcher will find the
    /// job, and pokes every waiting worker whose shown wait accepts it:
    /// `judge(shown)`, see `isolation::Shown::judge`.
    ///
    /// Returns the number of idle workers it woke (0 or 1).
    #[inline]
    pub(crate) fn new_work(&self, judge: impl Fn(&Shown) -> Verdict) -> usize {
        self.new_work_for(1, judge)
    }

    /// Called after `jobs` new jobs (at least one) were made visible at
    /// once: a wave of a call's tickets (`drive.rs`). Wakes idle sleepers
    /// until `jobs` workers search for them (those searching already count),
    /// all in this one step rather than one woken worker waking the next,
    /// and pokes waiters as `new_work` does (`judge` is asked once per
    /// waiter: the jobs are of one call).
    ///
    /// Returns the number of idle workers it woke (at most `jobs`).
    #[inline]
    pub(crate) fn new_work_for(&self, jobs: usize, judge: impl Fn(&Shown) -> Verdict) -> usize {
        // SeqCst fence, pairing with the fence in `sleep` (and in
        // `stop_searching`, `show_waiting`): either the sleeper's re-check
        // (the waiter's search) sees our push, or our loads below see the
        // sleeper counted (the wait shown).
        // (Mutant `new_work_no_fence` leaves the fence out.)
        #[cfg(not(stealpool_mutant = "new_work_no_fence"))]
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        let counters = self.counters.load(Ordering::Relaxed);
        // Waking more than one is only faster, never needed for liveness: a
        // woken worker comes back as a searcher, and the last searcher to
        // stop passes the baton while work is left (`stop_searching`).
        let wanted = jobs
            .saturating_sub(searching_of(counters))
            .min(sleeping_of(counters));
        // Mutant `wave_wakes_one`: a wave wakes a single sleeper, and the
        // rest of its helpers come one after the other through the baton.
        #[cfg(stealpool_mutant = "wave_wakes_one")]
        let wanted = wanted.min(1);
        let mut woken = 0;
        while woken < wanted {
            match self.wake_one() {
                0 => break,
                one => woken += one,
            }
        }
        // Mutant `waiters_never_poked`: only idle workers hear of new jobs.
        #[cfg(not(stealpool_mutant = "waiters_never_poked"))]
        if waiting_of(counters) > 0 {
            self.poke_waiters(judge);
        }
        woken
    }

    /// Pokes every worker whose shown wait accepts a job (see `new_work`).
    #[cold]
    fn poke_waiters(&self, judge: impl Fn(&Shown) -> Verdict) {
        for (index, slot) in self.slots.iter().enumerate() {
            // Relaxed loads: ordered after the publisher's push by the fence
            // in `new_work`. A showing read half old, half new (the worker
            // showed a nested wait or restored an outer one meanwhile) can
            // only be wrong about a wait whose own search, after its own
            // fence, comes after ours, and sees the job anyway.
            let awaited = slot.awaited.load(Ordering::Relaxed);
            if awaited.is_null() {
                continue;
            }
            let shown = Shown {
                awaited,
                foreign: slot.foreign.load(Ordering::Relaxed),
                enclosing: std::array::from_fn(|i| {
                    slot.enclosing[i].load(Ordering::Relaxed).cast_const()
                }),
                deep: slot.deep.load(Ordering::Relaxed),
            };
            let accepts = match judge(&shown) {
                Verdict::Accepts => true,
                Verdict::Refuses => false,
                // Mutant `deep_waits_over_accept`: a deep waiter is poked
                // for every job of an unlisted call, the jobs of its far
                // enclosing calls (which it refuses) included.
                #[cfg(stealpool_mutant = "deep_waits_over_accept")]
                Verdict::Unlisted(_) => true,
                // The list may be newer than the atomics read above (the
                // worker showed another wait meanwhile): as with a showing
                // read half old, half new, only a wait whose search comes
                // after ours can be misjudged, and that search sees the job.
                #[cfg(not(stealpool_mutant = "deep_waits_over_accept"))]
                Verdict::Unlisted(call) => !lock(&slot.beyond).contains(&(call as usize)),
            };
            if !accepts {
                continue;
            }
            // Release: a waiter that takes the poke (Acquire) sees the job.
            slot.poked.store(true, Ordering::Release);
            // SeqCst fence, pairing with the one in `sleep_waiting`: either
            // the waiter's re-check sees `poked`, or we see it asleep here.
            // (Mutant `poke_no_fence` leaves it out.)
            #[cfg(not(stealpool_mutant = "poke_no_fence"))]
            fence(Ordering::SeqCst);
            // Relaxed: ordered by the fence above.
            if slot.state.load(Ordering::Relaxed) == WAITING {
                self.wake(index);
            }
        }
    }

    /// Worker `index` shows that it waits (`shown`), replacing what it
    /// showed before; `beyond` lists a deep foreign wait's other enclosing
    /// calls (`Waiting::enclosing_beyond`). `first`: it showed no wait
    /// before, and now counts as waiting.
    pub(crate) fn show_waiting(
        &self,
        index: usize,
        shown: &Shown,
        beyond: impl FnOnce(&mut Vec<usize>),
        first: bool,
    ) {
        let slot = &self.slots[index];
        if shown.deep {
            // Before the atomics and the fence, like them. The lock is the
            // slot's own: only publishers that find this wait deep take it.
            let mut list = lock(&slot.beyond);
            list.clear();
            beyond(&mut list);
        }
        // Relaxed: ordered before the waiter's search by the fence below.
        slot.awaited
            .store(shown.awaited.cast_mut(), Ordering::Relaxed);
        slot.foreign.store(shown.foreign, Ordering::Relaxed);
        for (field, &node) in slot.enclosing.iter().zip(&shown.enclosing) {
            field.store(node.cast_mut(), Ordering::Relaxed);
        }
        slot.deep.store(shown.deep, Ordering::Relaxed);
        if first {
            // Relaxed: as the other counters, ordered by the fences.
            self.counters.fetch_add(ONE_WAITING, Ordering::Relaxed);
        }
        // SeqCst fence, pairing with the one in `new_work`: either the
        // publisher sees the showing and pokes us, or our next search sees
        // its job. (Mutant `show_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "show_no_fence"))]
        fence(Ordering::SeqCst);
    }

    /// Worker `index` no longer waits: it stops counting as waiting.
    pub(crate) fn hide_waiting(&self, index: usize) {
        let slot = &self.slots[index];
        // Relaxed: a publisher that still sees the old showing pokes us for
        // nothing, which is harmless.
        slot.awaited.store(ptr::null_mut(), Ordering::Relaxed);
        self.counters.fetch_sub(ONE_WAITING, Ordering::Relaxed);
    }

    /// Worker `index` takes the pokes it got, before a search: the search
    /// sees the jobs they were for.
    pub(crate) fn take_poke(&self, index: usize) {
        // Acquire: pairs with the Release of the poke, so that the search
        // that follows sees the publisher's job.
        self.slots[index].poked.swap(false, Ordering::Acquire);
    }

    /// Puts worker `index`, which waits inside a call, to sleep unless
    /// `done` (its probe) or a poke says otherwise after the sleep was
    /// announced. Returns whether it actually blocked.
    pub(crate) fn sleep_waiting(&self, index: usize, done: impl FnOnce() -> bool) -> bool {
        let slot = &self.slots[index];
        let guard = lock(&slot.mutex);
        // Relaxed: the fence below orders it before the re-check.
        slot.state.store(WAITING, Ordering::Relaxed);
        // SeqCst fence, pairing with the latch setter's
        // (`wake_worker_for_latch`) and the poker's (`poke_waiters`): either
        // they see us asleep, or we see the latch or the poke here.
        // (Mutant `waiting_sleep_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "waiting_sleep_no_fence"))]
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence; the next search takes the poke
        // with Acquire.
        if done() || slot.poked.load(Ordering::Relaxed) {
            slot.state.store(AWAKE, Ordering::Relaxed);
            return false;
        }
        block(slot, guard);
        true
    }

    /// Puts worker `index`, which is searching, to sleep unless `has_news`
    /// says otherwise after the sleep was announced. Returns with the worker
    /// searching again, either because it was woken or because there was news.
    ///
    /// Returns `true` if the worker actually blocked.
    pub(crate) fn sleep(&self, index: usize, has_news: impl FnOnce() -> bool) -> bool {
        let slot = &self.slots[index];
        let guard = lock(&slot.mutex);
        // Mutant `sleep_check_before_announce`: looks for news before the
        // sleep is announced, so a publisher can miss the sleeper while the
        // sleeper misses the news.
        #[cfg(stealpool_mutant = "sleep_check_before_announce")]
        let has_news = {
            let news = has_news();
            move || news
        };
        // Announce: state first, then counters (searching -> sleeping).
        // Relaxed: the fence below orders both before the re-check.
        slot.state.store(IDLE, Ordering::Relaxed);
        self.counters
            .fetch_add(ONE_SLEEPING.wrapping_sub(ONE_SEARCHING), Ordering::Relaxed);
        // SeqCst fence, pairing with the publishers' fences (`new_work`,
        // `wake_worker_for_latch`): either they see our announce,
        // or we see their news here. (Mutant `sleep_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "sleep_no_fence"))]
        fence(Ordering::SeqCst);
        if has_news() {
            // Nobody can have woken us: a waker changes `state` only with
            // the mutex, which we hold. Undo the announce ourselves.
            slot.state.store(AWAKE, Ordering::Relaxed);
            self.counters
                .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::Relaxed);
            return false;
        }
        // The waker also moves us back to searching in `counters`.
        block(slot, guard);
        true
    }

    /// Wakes worker `index` if it sleeps (idle or in a wait). Returns
    /// whether it did.
    fn wake(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        let _guard = lock(&slot.mutex);
        // Relaxed: the mutex orders this with the sleeper's writes.
        let state = slot.state.load(Ordering::Relaxed);
        if state == AWAKE {
            return false;
        }
        slot.state.store(AWAKE, Ordering::Relaxed);
        // A woken idle worker comes back as a searcher, so that publishers
        // do not wake a second worker for the job this one is about to
        // find. (A waiting worker is not counted in either field.)
        if state == IDLE {
            self.counters
                .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::Relaxed);
        }
        slot.condvar.notify_one();
        // Several threads may wake workers at once, so this counter needs a
        // read-modify-write; it sits on the path of a system call anyway.
        self.wakeups.add_shared(1);
        true
    }

    /// Wakes one idle sleeping worker, if any. Returns the number woken (0
    /// or 1).
    fn wake_one(&self) -> usize {
        let n = self.slots.len();
        // Relaxed: only spreads wake-ups; any start index is correct.
        let start = self.next_wake.fetch_add(1, Ordering::Relaxed) % n;
        for offset in 0..n {
            let index = (start + offset) % n;
            // Relaxed peek: a stale `AWAKE` can only skip a worker that is
            // still re-checking (and will see the news), a stale `IDLE` is
            // corrected under the slot's mutex in `wake`. A waiting sleeper
            // is not woken for general news: its wait may not accept it.
            if self.slots[index].state.load(Ordering::Relaxed) == IDLE && self.wake(index) {
                return 1;
            }
        }
        0
    }

    /// Wakes worker `index` after a latch it may be waiting on was set.
    pub(crate) fn wake_worker_for_latch(&self, index: usize) {
        // SeqCst fence, pairing with the one in `sleep`: either the worker's
        // re-check sees the latch set, or we see it sleeping here. (Mutant
        // `latch_wake_no_fence` leaves it out.)
        #[cfg(not(stealpool_mutant = "latch_wake_no_fence"))]
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if self.slots[index].state.load(Ordering::Relaxed) != AWAKE {
            self.wake(index);
        }
    }

    /// Wakes every sleeping worker (shutdown).
    ///
    /// No fence is needed here, unlike `wake_worker_for_latch`: that one
    /// peeks at `state` without the lock, while this takes every slot's
    /// mutex (in `wake`), which a sleeper holds from its announce through
    /// its re-check of the news (the `terminate` flag, stored before this
    /// call). Either we lock first, and the sleeper's later lock makes the
    /// flag visible to its re-check, or it blocked first (releasing the
    /// mutex in `wait`), and we see it sleeping. (A mutant that dropped the
    /// fence this function once had survived every loom model: an
    /// equivalent mutant, `docs/verification.md`.)
    pub(crate) fn wake_all(&self) {
        for index in 0..self.slots.len() {
            self.wake(index);
        }
    }
}

#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod tests {
    use super::{
        searching_of, sleeping_of, waiting_of, Sleep, MAX_THREADS, ONE_SEARCHING, ONE_SLEEPING,
        ONE_WAITING,
    };
    use crate::isolation::{Call, Shown, Verdict, SHOWN_ENCLOSING};
    use crate::sync::{thread, AtomicUsize, Ordering};
    use std::ptr;
    use std::time::{Duration, Instant};

    /// Spins until `done`, failing after ten seconds.
    fn until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            thread::yield_now();
        }
    }

    #[test]
    fn a_wave_wakes_the_sleepers_its_jobs_need_in_one_step() {
        crate::test_watchdog::arm();
        let sleep = Sleep::new(3);
        let woken = AtomicUsize::new(0);
        thread::scope(|scope| {
            for index in 0..3 {
                let (sleep, woken) = (&sleep, &woken);
                scope.spawn(move || {
                    sleep.start_searching();
                    assert!(sleep.sleep(index, || false), "slept without blocking");
                    woken.fetch_add(1, Ordering::SeqCst);
                });
            }
            let checks = std::panic::catch_unwind(|| {
                until("three asleep", || sleep.idle_sleepers() == 3);
                // One publish of two jobs wakes two sleepers, not one that
                // would wake the next.
                assert_eq!(sleep.new_work_for(2, |_| Verdict::Accepts), 2);
                until("two woken", || woken.load(Ordering::SeqCst) == 2);
                assert_eq!(sleep.idle_sleepers(), 1);
                // The two woken search (they never stopped): they count
                // against the next jobs, so one job or two wake nobody,
                // three wake one.
                assert_eq!(sleep.new_work(|_| Verdict::Accepts), 0);
                assert_eq!(sleep.new_work_for(2, |_| Verdict::Accepts), 0);
                assert_eq!(sleep.new_work_for(3, |_| Verdict::Accepts), 1);
            });
            // A failed check leaves sleepers behind: wake them, so that the
            // scope ends and the failure is reported instead of a hang.
            if let Err(panic) = checks {
                sleep.wake_all();
                std::panic::resume_unwind(panic);
            }
        });
        assert_eq!(woken.load(Ordering::SeqCst), 3);
        assert_eq!(sleep.wakeups(), 3);
    }

    #[test]
    fn the_counters_word_keeps_its_three_counts_apart() {
        let word = 5 * ONE_WAITING + 3 * ONE_SEARCHING + 2 * ONE_SLEEPING;
        assert_eq!(
            (sleeping_of(word), searching_of(word), waiting_of(word)),
            (2, 3, 5)
        );
        let full = MAX_THREADS * (ONE_WAITING + ONE_SEARCHING + ONE_SLEEPING);
        assert_eq!(
            (sleeping_of(full), searching_of(full), waiting_of(full)),
            (MAX_THREADS, MAX_THREADS, MAX_THREADS)
        );
    }

    /// `any_idle` (join's early offer), the baton, and what `new_work`
    /// returns, on three workers: two searching, one asleep.
    #[test]
    fn the_idle_counts_steer_the_offer_the_baton_and_the_wake_ups() {
        crate::test_watchdog::arm();
        let sleep = Sleep::new(3);
        assert!(!sleep.any_idle(), "nobody is idle yet");
        sleep.start_searching();
        assert!(sleep.any_idle(), "a searcher is idle");
        sleep.start_searching();
        thread::scope(|scope| {
            let sleeper = &sleep;
            scope.spawn(move || {
                sleeper.start_searching();
                assert!(sleeper.sleep(2, || false), "slept without blocking");
                // Woken: searching again; nothing to find.
                sleeper.stop_searching(|| false);
            });
            let checks = std::panic::catch_unwind(|| {
                until("one asleep", || sleep.idle_sleepers() == 1);
                assert!(sleep.any_idle());
                // Two search: a job wakes nobody.
                assert_eq!(sleep.new_work(|_| Verdict::Accepts), 0);
                // A searcher that is not the last passes no baton, work or
                // not; the last one, with work left, wakes the sleeper.
                assert_eq!(sleep.stop_searching(|| true), 0);
                assert_eq!(sleep.stop_searching(|| true), 1);
            });
            if let Err(panic) = checks {
                sleep.wake_all();
                std::panic::resume_unwind(panic);
            }
        });
        assert!(!sleep.any_idle(), "everyone stopped searching");
        // With nobody searching, a job wakes a sleeper, and says so.
        thread::scope(|scope| {
            let sleeper = &sleep;
            scope.spawn(move || {
                sleeper.start_searching();
                assert!(sleeper.sleep(0, || false), "slept without blocking");
                sleeper.stop_searching(|| false);
            });
            until("one asleep", || sleep.idle_sleepers() == 1);
            let woke = sleep.new_work(|_| Verdict::Accepts);
            if woke != 1 {
                sleep.wake_all();
            }
            assert_eq!(woke, 1);
        });
    }

    /// A publish pokes each worker whose shown wait accepts its job, and
    /// only those, however many show one (four here, past the two low bits
    /// of the waiting count).
    #[test]
    fn a_publish_pokes_the_waiters_that_accept_its_job() {
        let sleep = Sleep::new(5);
        let calls = [0u8; 4];
        let call = |i: usize| ptr::from_ref(&calls[i]).cast::<Call>();
        for i in 0..4 {
            let shown = Shown {
                awaited: call(i),
                foreign: false,
                enclosing: [ptr::null(); SHOWN_ENCLOSING],
                deep: false,
            };
            sleep.show_waiting(i, &shown, |_| {}, true);
        }
        sleep.new_work(|shown| {
            if shown.awaited == call(1) || shown.awaited == call(3) {
                Verdict::Accepts
            } else {
                Verdict::Refuses
            }
        });
        let poked: Vec<bool> = sleep
            .slots
            .iter()
            .map(|slot| slot.poked.load(Ordering::SeqCst))
            .collect();
        assert_eq!(poked, [false, true, false, true, false]);
        // A worker takes its pokes before it searches; one that no longer
        // waits is no longer poked.
        sleep.take_poke(1);
        sleep.take_poke(3);
        sleep.hide_waiting(1);
        sleep.new_work(|_| Verdict::Accepts);
        let poked: Vec<bool> = sleep
            .slots
            .iter()
            .map(|slot| slot.poked.load(Ordering::SeqCst))
            .collect();
        assert_eq!(poked, [true, false, true, true, false]);
    }

    /// A waiter asleep in its wait is woken by a publish its wait accepts.
    #[test]
    fn a_poke_wakes_a_waiter_asleep_in_its_wait() {
        crate::test_watchdog::arm();
        let sleep = Sleep::new(2);
        let call = 0u8;
        let shown = Shown {
            awaited: ptr::from_ref(&call).cast::<Call>(),
            foreign: false,
            enclosing: [ptr::null(); SHOWN_ENCLOSING],
            deep: false,
        };
        sleep.show_waiting(1, &shown, |_| {}, true);
        let woken = AtomicUsize::new(0);
        thread::scope(|scope| {
            let (sleeper, woken) = (&sleep, &woken);
            scope.spawn(move || {
                assert!(sleeper.sleep_waiting(1, || false), "slept without blocking");
                woken.fetch_add(1, Ordering::SeqCst);
            });
            let checks = std::panic::catch_unwind(|| {
                until("the waiter asleep", || sleep.parks() == 1);
                // A general wake-up leaves a waiter alone.
                assert_eq!(sleep.new_work(|_| Verdict::Refuses), 0);
                thread::sleep(Duration::from_millis(10));
                assert_eq!(
                    woken.load(Ordering::SeqCst),
                    0,
                    "woken for a job it refuses"
                );
                sleep.new_work(|_| Verdict::Accepts);
                until("the waiter woken", || woken.load(Ordering::SeqCst) == 1);
            });
            if let Err(panic) = checks {
                sleep.wake_all();
                std::panic::resume_unwind(panic);
            }
        });
    }
}
