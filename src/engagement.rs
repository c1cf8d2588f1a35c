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
//! The figures are [`StatCounter`]s, which stay `std` atomics even under a
//! model checker: they publish nothing but themselves. A call's figures are
//! read after its helpers left through the ticket's gate and latch, which
//! order the helpers' writes before the caller's reads.

use crate::stats::{StatCounter, Stats};
use crate::sync::Instant;

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
}

impl CallEngagement {
    /// A call that asks for help now.
    pub(crate) fn published_now() -> CallEngagement {
        CallEngagement {
            published: Instant::now(),
            first: StatCounter::default(),
            last: StatCounter::default(),
            helpers: StatCounter::default(),
        }
    }

    /// A helper starts on the call.
    pub(crate) fn helper_starts(&self) {
        let nanos = u64::try_from(Instant::now().since(self.published).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1)
            + 1;
        self.first.set_first(nanos);
        self.last.max_shared(nanos);
        self.helpers.add_shared(1);
    }
}

/// A pool's engagement totals.
#[derive(Default)]
pub(crate) struct Engagement {
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
