//! What a stress run did, counted: for its summary line, and for the check
//! that the generator exercised everything it should.

use crate::gen::{DROP_MODES, KINDS, SITES};
use crate::values::WHATS;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How often each thing happened over a whole run, for the summary and the
/// coverage check.
#[derive(Debug, Default)]
pub struct Tally {
    pub programs: AtomicUsize,
    pub calls: [AtomicUsize; KINDS.len()],
    /// Faults fired, by site and form (struct, string): a drop site's when
    /// an armed value's drop panicked.
    pub raised: [[AtomicUsize; 2]; SITES.len()],
    /// Armed drops made by the engine (not by the test's own code), by
    /// `What`.
    pub engine_drops: [AtomicUsize; WHATS.len()],
    /// Drops of an `imap` iterator or a detached task's handle that raised
    /// the panic of a value the engine still held.
    pub held_drop_panics: AtomicUsize,
    /// Failures that reached a call's caller with an expected code.
    pub caught: AtomicUsize,
    pub nested: AtomicUsize,
    pub from_worker: AtomicUsize,
    pub cross_pool: AtomicUsize,
    pub concurrent_programs: AtomicUsize,
    /// The pools' own counters (`Pool::stats`), summed over the run.
    pub jobs_run: AtomicUsize,
    pub worker_steals: AtomicUsize,
    pub wakeups: AtomicUsize,
    /// The most plain callers a program had.
    pub most_callers: AtomicUsize,
    pub orphan_drops: [AtomicUsize; 4],
    pub early_drops: AtomicUsize,
    pub detached: AtomicUsize,
    /// Rendezvous items that had to wait for their partner.
    pub rendezvous_waits: AtomicUsize,
    /// Nested calls made by an item holding its node's lock (see
    /// `Node::locked`).
    pub locked_calls: AtomicUsize,
    /// Items that found their node's lock held by another thread and
    /// blocked on it.
    pub lock_waits: AtomicUsize,
    pub pool_sizes: [AtomicUsize; 4],
    /// Worker handles checked against `current_thread_index()`.
    pub handle_checks: AtomicUsize,
    /// `Worker::join`s made on a handle passed down by an item.
    pub handle_joins: AtomicUsize,
    /// `Worker::join`s whose `b` ran on another worker than `a`.
    pub stolen_bs: AtomicUsize,
    /// `in_worker` calls made on a worker of their own pool (run inline).
    pub inline_in_worker: AtomicUsize,
}

/// Adds one to a tally counter.
pub fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Tally {
    /// Every count that a CI run must see non-zero, named.
    pub fn coverage(&self) -> Vec<(String, usize)> {
        let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        let mut all = Vec::new();
        for (kind, count) in KINDS.iter().zip(&self.calls) {
            all.push((format!("calls of {kind:?}"), get(count)));
        }
        for (site, forms) in SITES.iter().zip(&self.raised) {
            let [structs, strings] = site.forms();
            if structs {
                all.push((
                    format!("{site:?} faults with a struct payload"),
                    get(&forms[0]),
                ));
            }
            if strings {
                all.push((
                    format!("{site:?} faults with a String payload"),
                    get(&forms[1]),
                ));
            }
        }
        for (what, count) in WHATS.iter().zip(&self.engine_drops) {
            all.push((
                format!("{what} values whose drop panicked, dropped by the engine"),
                get(count),
            ));
        }
        all.push((
            "imap iterators or detached tasks whose drop raised a held value's panic".to_owned(),
            get(&self.held_drop_panics),
        ));
        for (mode, count) in DROP_MODES.iter().zip(&self.orphan_drops) {
            all.push((format!("orphan pools dropped {mode}"), get(count)));
        }
        for (threads, count) in self.pool_sizes.iter().enumerate() {
            all.push((format!("pools of {} threads", threads + 1), get(count)));
        }
        for (name, count) in [
            ("failures checked at their caller", &self.caught),
            ("nested calls", &self.nested),
            ("calls from workers", &self.from_worker),
            ("calls from a worker of another pool", &self.cross_pool),
            (
                "programs with several plain callers",
                &self.concurrent_programs,
            ),
            ("imaps dropped before their end", &self.early_drops),
            ("detached tasks", &self.detached),
            ("rendezvous waits", &self.rendezvous_waits),
            ("nested calls made holding a lock", &self.locked_calls),
            ("worker handles checked", &self.handle_checks),
            ("Worker::joins on a handle passed down", &self.handle_joins),
            ("Worker::joins whose b was stolen", &self.stolen_bs),
            ("in_worker calls on their own pool", &self.inline_in_worker),
            ("jobs run by workers", &self.jobs_run),
            ("steals from another worker's deque", &self.worker_steals),
            ("wake-ups of sleeping workers", &self.wakeups),
        ] {
            all.push((name.to_owned(), get(count)));
        }
        all
    }

    /// One line: calls per kind, faults fired, and the rest.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        let calls: Vec<String> = KINDS
            .iter()
            .zip(&self.calls)
            .map(|(kind, count)| format!("{kind:?} {}", get(count)))
            .collect();
        let faults: Vec<String> = SITES
            .iter()
            .zip(&self.raised)
            .map(|(site, f)| format!("{site:?} {}+{}", get(&f[0]), get(&f[1])))
            .collect();
        let engine: Vec<String> = WHATS
            .iter()
            .zip(&self.engine_drops)
            .map(|(what, count)| format!("{what} {}", get(count)))
            .collect();
        format!(
            "calls: {}; faults fired (struct+string): {}; armed drops made by the engine: {}; \
             held values' drop panics raised by dropping an imap or a task handle: {}; \
             failures checked: {}; \
             nested {}, from workers {}, cross-pool {}, detached tasks {}, \
             rendezvous waits {}, nested calls holding a lock {}, lock waits {}, \
             imaps dropped early {}, orphan drops {:?}; \
             worker handles checked {}, Worker::joins on a handle passed down {}, \
             Worker::join b's stolen {}, in_worker inline {}; \
             pools: {} jobs run, {} steals, {} wake-ups",
            calls.join(", "),
            faults.join(", "),
            engine.join(", "),
            get(&self.held_drop_panics),
            get(&self.caught),
            get(&self.nested),
            get(&self.from_worker),
            get(&self.cross_pool),
            get(&self.detached),
            get(&self.rendezvous_waits),
            get(&self.locked_calls),
            get(&self.lock_waits),
            get(&self.early_drops),
            self.orphan_drops.iter().map(get).collect::<Vec<_>>(),
            get(&self.handle_checks),
            get(&self.handle_joins),
            get(&self.stolen_bs),
            get(&self.inline_in_worker),
            get(&self.jobs_run),
            get(&self.worker_steals),
            get(&self.wakeups),
        )
    }
}
