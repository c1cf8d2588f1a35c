//! The parallel-map workloads: `seq`, `stealpool` (`Pool::map`), `rayon`
//! (`par_iter().map().collect()` inside `install`) and `scope`
//! (`std::thread::scope` with one equal static chunk per thread, spawned per
//! call), every one returning its results in input order; the tick
//! workloads (`tick-2ms`, `tick-1ms`: a small map called on a fixed schedule
//! on otherwise idle pools) run `seq`, `stealpool`, `rayon` and `polling`
//! (the spinning helpers of [`super::polling`]) instead of `scope`.

use super::{checksum, spin, splitmix64, Calibration, Item, Kind, Runners, System, Workload};
use std::mem::MaybeUninit;
use std::time::Duration;

/// The input of a map workload and what one call does with it.
pub enum Body {
    /// `x.wrapping_mul(x)` over every item.
    Square(Vec<u64>),
    /// [`Item::run`] over every item.
    Spin(Vec<Item>),
    /// The wrapping sum of `x.wrapping_mul(x)` over every item, reduced
    /// without collecting (`Pool::map_reduce`, rayon's `map().reduce()`).
    SumSquares(Vec<u64>),
    /// The `f64` sum of every item, reduced without collecting (stealpool's
    /// deterministic `map_reduce` against per-thread folds); the result is
    /// rounded to a multiple of 1,000 for the check against `seq`, since
    /// every order of addition rounds differently.
    SumF64(Vec<f64>),
    /// For every outer item, a map of the inner items (seeded by the outer
    /// one), folded with [`checksum`].
    Nested {
        /// The outer map's input.
        outer: Vec<Item>,
        /// Every inner map's input.
        inner: Vec<Item>,
    },
}

impl Body {
    /// The items one call processes (inner items, for a nested workload).
    pub fn items(&self) -> usize {
        match self {
            Body::Square(input) => input.len(),
            Body::Spin(input) => input.len(),
            Body::SumSquares(input) => input.len(),
            Body::SumF64(input) => input.len(),
            Body::Nested { outer, inner } => outer.len() * inner.len(),
        }
    }

    /// Makes one call with `system`.
    pub fn call(&self, runners: &Runners, system: System) -> Vec<u64> {
        match self {
            Body::Square(input) => runners.map(system, input, |x| x.wrapping_mul(*x)),
            Body::Spin(input) => runners.map(system, input, Item::run),
            Body::SumSquares(input) => {
                vec![runners.reduce(system, input, |x| x.wrapping_mul(*x), 0, u64::wrapping_add)]
            }
            Body::SumF64(input) => {
                let sum = runners.reduce(system, input, |x| *x, 0.0, |a, b| a + b);
                vec![(sum / 1000.0).round() as u64]
            }
            Body::Nested { outer, inner } => runners.map(system, outer, |o| {
                let results = runners.map(inner_system(system), inner, |x| {
                    spin(o.seed ^ x.seed, x.iters)
                });
                checksum(&results)
            }),
        }
    }
}

/// The system that runs the inner maps of a nested workload: the same one,
/// except that `scope` runs them sequentially (spawning threads per inner
/// call would measure thread creation, not nesting).
fn inner_system(system: System) -> System {
    match system {
        System::Scope => System::Seq,
        other => other,
    }
}

impl Runners {
    /// Maps `f` over `input` with `system`, keeping input order.
    ///
    /// # Panics
    ///
    /// If `system` does not run maps (chili, channel).
    pub fn map<T, R, F>(&self, system: System, input: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync + Send,
    {
        match system {
            System::Seq => input.iter().map(f).collect(),
            System::Stealpool => self.pool.map(input, f),
            System::Rayon => {
                use rayon::prelude::*;
                self.rayon.install(|| input.par_iter().map(f).collect())
            }
            System::Scope => scope_map(self.threads, input, f),
            System::Polling => self.polling.map(input, f),
            System::Chili | System::Channel => {
                panic!("{} does not run map workloads", system.name())
            }
        }
    }
}

impl Runners {
    /// Maps `f` over `input` and combines the results with `combine`
    /// (associative, `identity` its neutral value) with `system`, without
    /// collecting them: seq folds left to right, stealpool calls
    /// `map_reduce` (a fixed combination order), rayon
    /// `par_iter().map().reduce()` (adaptive splits), scope one left fold
    /// per thread over equal static pieces, combined in order.
    ///
    /// # Panics
    ///
    /// If `system` does not run maps (chili, channel, polling).
    pub fn reduce<T, R, F, C>(
        &self,
        system: System,
        input: &[T],
        f: F,
        identity: R,
        combine: C,
    ) -> R
    where
        T: Sync,
        R: Send + Sync + Copy,
        F: Fn(&T) -> R + Sync + Send,
        C: Fn(R, R) -> R + Sync + Send,
    {
        match system {
            System::Seq => input.iter().map(f).fold(identity, combine),
            System::Stealpool => self.pool.map_reduce(input, f, || identity, combine),
            System::Rayon => {
                use rayon::prelude::*;
                self.rayon
                    .install(|| input.par_iter().map(f).reduce(|| identity, &combine))
            }
            System::Scope => {
                let chunk = input.len().div_ceil(self.threads.max(1)).max(1);
                let (f, combine) = (&f, &combine);
                let fold = move |piece: &[T]| piece.iter().map(f).fold(identity, combine);
                let partials: Vec<R> = std::thread::scope(|scope| {
                    let mut pieces = input.chunks(chunk);
                    let first = pieces.next();
                    let handles: Vec<_> = pieces
                        .map(|piece| scope.spawn(move || fold(piece)))
                        .collect();
                    let mut partials = vec![first.map_or(identity, fold)];
                    partials.extend(
                        handles
                            .into_iter()
                            .map(|h| h.join().expect("a fold panicked")),
                    );
                    partials
                });
                partials.into_iter().fold(identity, combine)
            }
            System::Chili | System::Channel | System::Polling => {
                panic!("{} does not run reduce workloads", system.name())
            }
        }
    }
}

/// Maps `f` over `input` with `std::thread::scope`: `threads` equal static
/// chunks, the first run by the caller and the others by one spawned thread
/// each, every result written in place into a pre-sized output.
pub fn scope_map<T, R, F>(threads: usize, input: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    fn fill<T, R>(input: &[T], output: &mut [MaybeUninit<R>], f: &(impl Fn(&T) -> R + Sync)) {
        for (slot, item) in output.iter_mut().zip(input) {
            slot.write(f(item));
        }
    }

    let len = input.len();
    let mut output: Vec<R> = Vec::with_capacity(len);
    if len == 0 {
        return output;
    }
    let chunk = len.div_ceil(threads.max(1));
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = input
            .chunks(chunk)
            .zip(output.spare_capacity_mut()[..len].chunks_mut(chunk));
        let first = parts.next();
        for (items, slots) in parts {
            scope.spawn(move || fill(items, slots, f));
        }
        if let Some((items, slots)) = first {
            fill(items, slots, f);
        }
    });
    // SAFETY: the chunks of `spare_capacity_mut()[..len]` cover every slot of
    // `0..len`, and each chunk was filled completely by a thread that the
    // scope has joined (had one panicked, `scope` would have re-raised the
    // panic and we would not be here).
    unsafe { output.set_len(len) };
    output
}

/// Nanoseconds in a microsecond, for readable cost formulas.
const US: f64 = 1_000.0;

/// A map workload with one call per sample and no pause.
fn plain(name: &'static str, description: &str, body: Body) -> Workload {
    Workload {
        name,
        description: description.to_owned(),
        kind: Kind::Map(body),
        calls_per_sample: 1,
        pause: None,
        tick: None,
    }
}

/// A tick workload: a map of `len` items of ~`item_ns` ns, called once every
/// `period` (see [`Workload::tick`]), `calls` calls per sample.
fn ticked(
    name: &'static str,
    cal: &Calibration,
    len: usize,
    item_ns: f64,
    period: Duration,
    calls: usize,
) -> Workload {
    let work_us = len as f64 * item_ns / US;
    Workload {
        calls_per_sample: calls,
        tick: Some(period),
        ..plain(
            name,
            &format!(
                "a map of {len} items of ~{item_ns:.0} ns (~{work_us:.0} us), one call \
                 every {} ms on otherwise idle pools",
                period.as_millis()
            ),
            Body::Spin((0..len).map(|i| cal.item(i, item_ns)).collect()),
        )
    }
}

/// Builds the map workload called `name`, or `None` if there is none.
pub fn workload(name: &str, calibration: &Calibration) -> Option<Workload> {
    let cal = calibration;
    let spin_items = |len: usize, cost: &dyn Fn(usize) -> f64| -> Vec<Item> {
        (0..len).map(|i| cal.item(i, cost(i))).collect()
    };
    let workload = match name {
        "tiny" => plain(
            "tiny",
            "x.wrapping_mul(x) over 10M u64, collected",
            Body::Square((0..10_000_000u64).map(|i| i ^ (i << 32)).collect()),
        ),
        "sum-sq" => plain(
            "sum-sq",
            "wrapping sum of x*x over 10M u64, reduced without collecting",
            Body::SumSquares((0..10_000_000u64).map(|i| i ^ (i << 32)).collect()),
        ),
        "sum-f64" => plain(
            "sum-f64",
            "f64 sum of 10M values in [1, 2), reduced without collecting",
            Body::SumF64(
                (0..10_000_000u64)
                    .map(|i| 1.0 + (i % 1000) as f64 / 1000.0)
                    .collect(),
            ),
        ),
        "uniform" => plain(
            "uniform",
            "100k items of ~1 us",
            Body::Spin(spin_items(100_000, &|_| US)),
        ),
        "skewed" => {
            let len = 20_000;
            plain(
                "skewed",
                "20k items, item i ~ 1 us + (i/len)^2 * 10 us",
                Body::Spin(spin_items(len, &|i| {
                    let x = i as f64 / len as f64;
                    US + x * x * 10.0 * US
                })),
            )
        }
        "skewed-rare" => {
            let len = 20_000;
            let mut heavy = vec![false; len];
            let mut state = 0x5eed;
            let mut count = 0;
            while count < len / 100 {
                let position = (splitmix64(&mut state) % len as u64) as usize;
                if !heavy[position] {
                    heavy[position] = true;
                    count += 1;
                }
            }
            plain(
                "skewed-rare",
                "20k items of ~1 us, 1% (seeded positions) of ~100 us",
                Body::Spin(spin_items(len, &|i| if heavy[i] { 100.0 * US } else { US })),
            )
        }
        "small-call" => Workload {
            calls_per_sample: 2000,
            ..plain(
                "small-call",
                "maps of 16 items of ~100 ns, back to back",
                Body::Spin(spin_items(16, &|_| 0.1 * US)),
            )
        },
        "small-call-pause" => Workload {
            calls_per_sample: 200,
            pause: Some(Duration::from_millis(1)),
            ..plain(
                "small-call-pause",
                "maps of 16 items of ~100 ns, 1 ms sleep (untimed) before each",
                Body::Spin(spin_items(16, &|_| 0.1 * US)),
            )
        },
        "nested" => plain(
            "nested",
            "64 outer items, each a map of 2k items of ~200 ns",
            Body::Nested {
                outer: spin_items(64, &|_| 0.0),
                inner: spin_items(2_000, &|_| 0.2 * US),
            },
        ),
        // ~0.5 ms of work every 2 ms, ~50 us every 1 ms; 32 and 64 calls (64
        // ms of schedule) per sample.
        "tick-2ms" => ticked("tick-2ms", cal, 8192, 60.0, Duration::from_millis(2), 32),
        "tick-1ms" => ticked("tick-1ms", cal, 1024, 50.0, Duration::from_millis(1), 64),
        _ => return None,
    };
    Some(workload)
}
