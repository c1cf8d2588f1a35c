//! Engagement: how soon helpers start on a call that asked for help.
//!
//! A map-family call that runs past its solo start publishes a ticket
//! (`drive.rs`). Each helper that enters it records how long after the
//! publication it started; when the call ends, the caller adds the call's
//! figures to its pool's totals, which [`Pool::stats`](crate::Pool::stats)
//! reports. The cost is a clock read and three relaxed read-modify-writes per
//! helper, and five per call that asked for help: only calls that already
//! ran for [`PROMOTE_AFTER`](crate::drive::PROMOTE_AFTER) pay it.
//!
//! ## Asking only for help that can arrive in time
//!
//! When every other worker sleeps, the help a call asks for starts only
//! after a wake-up, and on some machines a wake-up takes longer than the
//! whole call (an idle virtual CPU on a shared host: hundreds of µs). Asking
//! then costs the caller a wake-up and the woken worker's CPU, and helps
//! nothing: the call ends slower than its loop. So each pool keeps a
//! [`Punctuality`]: its estimate of how long after asking the first helper
//! of such a call starts, observed on every call that asked while everyone
//! slept (also from a helper that arrived after the call had ended). Such a
//! call asks only if, at its pace so far, more than twice that estimate of
//! work remains (so that a helper would do at least a quarter of it);
//! otherwise it goes on alone and looks again after about a quarter of the
//! estimate's worth of items (its items may get slower). A call with a
//! worker awake (searching, polling, or busy) asks as before: that help needs
//! no wake-up.
//!
//! The estimate rises to a slower observation, but at most to twice its
//! value at a time (so that one outlier, a virtual CPU descheduled for
//! milliseconds, cannot leave calls of a few milliseconds alone for long,
//! while wake-ups that really are slow get there in a few calls), and falls
//! to a faster one by a quarter of the difference; each call
//! that declined to ask and finished alone lowers it by 1/32, so that a pool
//! whose wake-ups got faster asks again within a few dozen calls, and that
//! ask measures anew. Until the first observation the estimate is zero:
//! every call asks. Under a model checker every call asks (the clock says
//! that time is always up).
//!
//! The figures are [`StatCounter`]s, which stay `std` atomics even under a
//! model checker: they publish nothing but themselves. A call's figures are
//! read after its helpers left through the ticket's gate and latch, which
//! order the helpers' writes before the caller's reads.

use crate::stats::{StatCounter, Stats};
use crate::sync::Instant;
use std::time::Duration;

/// One call's engagement, kept in its ticket.
pub(crate) struct CallEngagement {
    /// When the call asked for help.
    published: Instant,
    /// Nanoseconds from `published` to the first helper's start, plus one
    /// (zero: no helper yet).
    first: StatCounter,
    /// Nanoseconds to the latest helper's start so far, plus one.
    last: StatCounter,
    /// Helpers that started on the call.
    helpers: StatCounter,
    /// Whether every other worker slept when the call asked (its first
    /// arrival then measures a wake-up).
    woke: bool,
    /// Set by the first worker to run one of the call's tickets.
    arrived: StatCounter,
}

impl CallEngagement {
    /// A call that asks for help now; `woke`: every other worker sleeps.
    pub(crate) fn published_now(woke: bool) -> CallEngagement {
        CallEngagement {
            published: Instant::now(),
            first: StatCounter::default(),
            last: StatCounter::default(),
            helpers: StatCounter::default(),
            woke,
            arrived: StatCounter::default(),
        }
    }

    /// A worker runs one of the call's tickets, whether or not the call is
    /// still open. Returns the nanoseconds since the call asked, plus one,
    /// and tells `punctuality` (the pool's, if the runner is one of its
    /// workers) if this is the call's first arrival after a wake-up.
    pub(crate) fn arrives(&self, punctuality: Option<&Punctuality>) -> u64 {
        let nanos = u64::try_from(Instant::now().since(self.published).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1)
            + 1;
        if let Some(punctuality) = punctuality.filter(|_| self.woke) {
            if self.arrived.set_first(1) {
                punctuality.observe(nanos - 1);
            }
        }
        nanos
    }

    /// A helper starts on the call, `nanos` (from [`arrives`](Self::arrives))
    /// after it asked.
    pub(crate) fn helper_starts(&self, nanos: u64) {
        self.first.set_first(nanos);
        self.last.max_shared(nanos);
        self.helpers.add_shared(1);
    }
}

/// A pool's estimate of how late a woken helper starts, and the rule that
/// decides from it whether a call asks for help (see the module
/// documentation).
#[derive(Default)]
pub(crate) struct Punctuality {
    /// The estimate in nanoseconds; zero until the first observation. Read
    /// and written with relaxed loads and stores: two observations racing
    /// may lose one, which an estimate can afford.
    wake_nanos: StatCounter,
}

impl Punctuality {
    /// A first helper started `nanos` after a call that woke it asked.
    pub(crate) fn observe(&self, nanos: u64) {
        let estimate = self.wake_nanos.get();
        // Up to the observation but at most to twice the estimate (the
        // first observation is taken whole), down by a quarter of the
        // difference.
        let next = if estimate == 0 {
            nanos
        } else if nanos >= estimate {
            nanos.min(estimate.saturating_mul(2))
        } else {
            estimate - (estimate - nanos) / 4
        };
        self.wake_nanos.set(next);
    }

    /// A call declined to ask and finished alone.
    pub(crate) fn declined(&self) {
        let estimate = self.wake_nanos.get();
        self.wake_nanos.set(estimate - estimate / 32);
    }

    /// The current estimate.
    pub(crate) fn wake(&self) -> Duration {
        Duration::from_nanos(self.wake_nanos.get())
    }
}

/// Where a call's solo start stands when it looks at the clock: `done` of
/// its `len` items ran in `elapsed`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    pub(crate) elapsed: Duration,
    pub(crate) done: usize,
    pub(crate) len: usize,
}

impl Pace {
    /// The items not run yet.
    fn remaining(&self) -> usize {
        self.len.saturating_sub(self.done)
    }

    /// The pace as nanoseconds per items, neither zero.
    fn nanos_per_items(&self) -> (u128, u128) {
        (self.elapsed.as_nanos().max(1), (self.done as u128).max(1))
    }

    /// The time, in nanoseconds, that the rest would take the caller alone
    /// at its pace so far.
    fn alone(&self) -> u128 {
        let (elapsed, done) = self.nanos_per_items();
        elapsed.saturating_mul(self.remaining() as u128) / done
    }

    /// The items that `nanos` of the caller's time runs at this pace.
    fn items_in(&self, nanos: u128) -> usize {
        let (elapsed, done) = self.nanos_per_items();
        usize::try_from(nanos.saturating_mul(done) / elapsed).unwrap_or(usize::MAX)
    }
}

/// Whether a call at `pace` asks for help now, given that a helper starts
/// `wake` after the ask (zero: no wake-up is needed). `None`: ask.
/// `Some(batch)`: go on alone for `batch` more items (about a quarter of
/// `wake` at the pace so far, at least one), then look again.
pub(crate) fn ask_now(pace: Pace, wake: Duration) -> Option<usize> {
    if cfg!(any(loom, shuttle)) || wake.is_zero() {
        return None;
    }
    let wake = wake.as_nanos();
    if pace.alone() > wake.saturating_mul(2) {
        return None;
    }
    Some(pace.items_in(wake / 4).max(1))
}

/// How many helpers a call at `pace` engages at once when it asks for help:
/// the tickets it publishes in one step and the sleepers it wakes for them
/// (`Sleep::new_work_for`), instead of one helper that recruits the next.
/// As many as the remaining work can feed: at most one per item left beyond
/// the caller's next, and, when help needs a wake-up (`wake` non-zero), only
/// as many as each find more than twice the wake-up of work at the caller's
/// pace (`ask_now`'s rule, for one helper); at least one (the call asks), at
/// most `helpers`.
pub(crate) fn wave(pace: Pace, wake: Duration, helpers: usize) -> usize {
    let mut wave = helpers.min(pace.remaining().saturating_sub(1));
    if !wake.is_zero() {
        let fed = pace.alone() / wake.as_nanos().saturating_mul(2);
        wave = wave.min(usize::try_from(fed).unwrap_or(usize::MAX));
    }
    wave.max(1)
}

/// A pool's engagement totals, and its punctuality.
#[derive(Default)]
pub(crate) struct Engagement {
    /// How late woken helpers start, for the choice to ask.
    pub(crate) punctuality: Punctuality,
    asked: StatCounter,
    helped: StatCounter,
    helpers: StatCounter,
    first_nanos: StatCounter,
    last_nanos: StatCounter,
}

impl Engagement {
    /// Adds a finished call's figures (any thread: the caller may be outside
    /// the pool).
    pub(crate) fn add(&self, call: &CallEngagement) {
        self.asked.add_shared(1);
        let helpers = call.helpers.get();
        if helpers == 0 {
            return;
        }
        self.helped.add_shared(1);
        self.helpers.add_shared(helpers);
        self.first_nanos.add_shared(call.first.get() - 1);
        self.last_nanos.add_shared(call.last.get() - 1);
    }

    /// Copies the totals into `stats`.
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        stats.calls_asking_help = self.asked.get();
        stats.calls_helped = self.helped.get();
        stats.helpers_started = self.helpers.get();
        stats.first_helper_nanos = self.first_nanos.get();
        stats.last_helper_nanos = self.last_nanos.get();
    }
}

#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod tests {
    use super::{ask_now, wave, CallEngagement, Pace, Punctuality};
    use std::time::Duration;

    const US: Duration = Duration::from_micros(1);

    /// `done` items in `elapsed`, `remaining` left.
    fn pace(elapsed: Duration, done: usize, remaining: usize) -> Pace {
        Pace {
            elapsed,
            done,
            len: done + remaining,
        }
    }

    #[test]
    fn asks_when_no_wake_up_is_needed_or_none_was_seen() {
        assert_eq!(ask_now(pace(5 * US, 10, 1), Duration::ZERO), None);
        // Even when the rest would take no time at all.
        assert_eq!(ask_now(pace(Duration::ZERO, 10, 1), Duration::ZERO), None);
    }

    #[test]
    fn asks_only_if_more_than_twice_the_wake_up_remains() {
        // 1 µs an item: 1000 items left is 1 ms alone.
        assert_eq!(ask_now(pace(10 * US, 10, 1000), 400 * US), None);
        assert!(ask_now(pace(10 * US, 10, 1000), 500 * US).is_some());
        assert!(ask_now(pace(10 * US, 10, 1000), 10_000 * US).is_some());
        // What remains counts, not what ran: 1 µs an item either way.
        assert_eq!(ask_now(pace(100 * US, 100, 1000), 400 * US), None);
        assert!(ask_now(pace(1000 * US, 1000, 100), 400 * US).is_some());
    }

    #[test]
    fn goes_on_for_about_a_quarter_of_the_wake_up() {
        // 1 µs an item, a 400 µs wake-up: look again after 100 items.
        assert_eq!(ask_now(pace(10 * US, 10, 100), 400 * US), Some(100));
        // Items slower than a quarter of the wake-up: one at a time.
        assert_eq!(ask_now(pace(10 * US, 1, 1), 20 * US), Some(1));
    }

    #[test]
    fn extreme_values_neither_overflow_nor_divide_by_zero() {
        let huge = Pace {
            elapsed: Duration::MAX,
            done: 1,
            len: usize::MAX,
        };
        assert_eq!(ask_now(huge, 400 * US), None);
        assert!(ask_now(pace(Duration::ZERO, 0, 0), Duration::MAX).is_some());
        let all_but_one = Pace {
            elapsed: Duration::ZERO,
            done: usize::MAX - 1,
            len: usize::MAX,
        };
        assert_eq!(ask_now(all_but_one, Duration::MAX), Some(usize::MAX));
        // A length below what ran (never made by `drive`) leaves nothing.
        let past = Pace {
            elapsed: 10 * US,
            done: 10,
            len: 5,
        };
        assert_eq!(ask_now(past, 400 * US), Some(100));
        assert_eq!(wave(huge, 400 * US, 15), 15);
    }

    #[test]
    fn a_wave_engages_as_many_helpers_as_the_work_can_feed() {
        // No wake-up needed: every helper, but one per item left beyond one.
        assert_eq!(wave(pace(10 * US, 10, 1000), Duration::ZERO, 15), 15);
        assert_eq!(wave(pace(10 * US, 10, 4), Duration::ZERO, 15), 3);
        assert_eq!(wave(pace(10 * US, 10, 1), Duration::ZERO, 15), 1);
        // 1000 items left at 1 µs alone: 1 ms, each helper needs 2 x 100 µs.
        assert_eq!(wave(pace(10 * US, 10, 1000), 100 * US, 15), 5);
        assert_eq!(wave(pace(10 * US, 10, 1000), 10 * US, 15), 15);
        // Always at least one: the call asked.
        assert_eq!(wave(pace(10 * US, 10, 1000), 10_000 * US, 15), 1);
        assert_eq!(wave(pace(Duration::ZERO, 0, 0), Duration::MAX, 0), 1);
    }

    #[test]
    fn the_first_arrival_of_a_call_that_woke_a_helper_is_observed() {
        let punctuality = Punctuality::default();
        let call = CallEngagement::published_now(true);
        let first = call.arrives(Some(&punctuality));
        assert!(first >= 1);
        // What `arrives` returns is the time since the ask, plus one.
        assert_eq!(punctuality.wake(), Duration::from_nanos(first - 1));
        let second = call.arrives(Some(&punctuality));
        assert!(second >= first);
        assert_eq!(punctuality.wake(), Duration::from_nanos(first - 1));
        // A call that found a worker awake teaches nothing about wake-ups.
        let untaught = Punctuality::default();
        CallEngagement::published_now(false).arrives(Some(&untaught));
        assert_eq!(untaught.wake(), Duration::ZERO);
    }

    #[test]
    fn the_estimate_rises_at_most_twofold_falls_slowly_and_decays_when_declined() {
        let punctuality = Punctuality::default();
        assert_eq!(punctuality.wake(), Duration::ZERO);
        punctuality.observe(400_000);
        assert_eq!(punctuality.wake(), 400 * US);
        punctuality.observe(800_000);
        assert_eq!(punctuality.wake(), 800 * US);
        // One outlier doubles it at most.
        punctuality.observe(10_000_000_000);
        assert_eq!(punctuality.wake(), 1_600 * US);
        // Down by a quarter of the difference.
        punctuality.observe(400_000);
        assert_eq!(punctuality.wake(), 1_300 * US);
        punctuality.observe(0);
        assert_eq!(punctuality.wake(), Duration::from_nanos(975_000));
        punctuality.declined();
        assert_eq!(
            punctuality.wake(),
            Duration::from_nanos(975_000 - 975_000 / 32)
        );
    }
}
