//! The parallel-map workloads: `seq`, `stealpool` (`Pool::map`), `rayon`
//! (`par_iter().map().collect()` inside `install`) and `scope`
//! (`std::thread::scope` with one equal static chunk per thread, spawned per
//! call), every one returning its results in input order; the tick
//! workloads (`tick-2ms`, `tick-1ms`: a small map called on a fixed schedule
//! on otherwise idle pools) run `seq`, `stealpool`, `rayon` and `polling`
//! (the spinning helpers of [`super::polling`]) instead of `scope`.
//!
//! The maps over the other inputs of `Pool::map` (`small-range` over an
//! index range, `small-owned` over an owned `Vec`, `small-mut` over a
//! mutable slice, `owned-strings` and `owned-strings-push` over an owned
//! `Vec<String>`) run `seq`, `stealpool` and `rayon`, each system over the
//! same kind of input; the watched maps (`uniform-watched`, `small-call-watched`) run `seq`, plain
//! `stealpool`, `stealpool-token` (`options().cancel_on(&token)`, a token
//! never cancelled) and `stealpool-progress` (`options().progress(&p)`).

use super::{
    checksum, spin, splitmix64, Calibration, Item, Kind, Output, Runners, System, Workload,
};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::Duration;

/// The systems of the maps over other inputs than a borrowed slice.
const INPUT_SYSTEMS: &[System] = &[System::Seq, System::Stealpool, System::Rayon];

/// The systems of the watched maps: plain `stealpool` beside the same call
/// with a cancel token and with a progress counter.
const WATCHED_SYSTEMS: &[System] = &[
    System::Seq,
    System::Stealpool,
    System::StealpoolToken,
    System::StealpoolProgress,
];

/// One element of the mutable input of `small-mut`: the item and where its
/// result is written.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The item to run.
    pub item: Item,
    /// Its result, written by the call.
    pub out: u64,
}

impl Slot {
    /// Runs the item, writes its result into the slot and returns it.
    #[inline]
    fn run(&mut self) -> u64 {
        self.out = self.item.run();
        self.out
    }
}

/// FNV-1a over the bytes of `s`.
#[inline]
fn hash_bytes(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The work of `owned-strings` on one string, moved in and returned: its
/// bytes hashed, then upper-cased in place (no allocation: what is timed is
/// the move in and out and the work on the bytes).
#[inline]
fn upper(mut s: String) -> String {
    let hash = hash_bytes(&s);
    s.make_ascii_uppercase();
    // Keeps the hash (so the reads are not dead code) in the first letter's
    // case: every string starts with `s`.
    if hash & 1 == 1 {
        s.replace_range(..1, "s");
    }
    s
}

/// The work of `owned-strings-push` on one string, moved in and returned: a
/// letter chosen by a hash of its bytes pushed onto it. The strings are
/// clones, with no spare capacity, so every push grows the string through
/// the allocator (`realloc`).
#[inline]
fn push_letter(mut s: String) -> String {
    let hash = hash_bytes(&s);
    s.push(char::from(b'a' + (hash % 26) as u8));
    s
}

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
    /// The wrapping sum of [`Item::run`] over every item, reduced without
    /// collecting (`Pool::map_reduce`, rayon's `map().reduce()`).
    SumSpin(Vec<Item>),
    /// For every outer item, a map of the inner items (seeded by the outer
    /// one), folded with [`checksum`].
    Nested {
        /// The outer map's input.
        outer: Vec<Item>,
        /// Every inner map's input.
        inner: Vec<Item>,
    },
    /// [`Item::run`] over the index range `0..len`, the item of index `i`
    /// looked up in the vector (stealpool `map(0..len, f)`, rayon
    /// `(0..len).into_par_iter()`, seq `(0..len).map(f)`).
    SpinRange(Vec<Item>),
    /// [`Item::run`] over a fresh copy of the items, made in the call and
    /// moved into it (stealpool `map(vec, f)`, rayon `into_par_iter()`, seq
    /// `into_iter()`): every system pays the same copy.
    SpinOwned(Vec<Item>),
    /// [`Slot::run`] over a mutable slice: each item writes its result into
    /// its own element and returns it (stealpool `map(&mut slots, f)`, rayon
    /// `par_iter_mut()`, seq `iter_mut()`).
    SpinMut(RefCell<Vec<Slot>>),
    /// [`upper`] (or, with `push`, [`push_letter`]) over an owned
    /// `Vec<String>`, each string moved into the closure and returned
    /// (stealpool `map(vec, f)`, rayon `into_par_iter()`, seq `into_iter()`,
    /// all collected).
    OwnedStrings {
        /// The strings every call gets a copy of.
        master: Vec<String>,
        /// Copies made (untimed) by [`Body::prepare`] for the next calls.
        prepared: RefCell<Vec<Vec<String>>>,
        /// Push a letter (through the allocator) instead of upper-casing in
        /// place.
        push: bool,
    },
    /// [`Item::run`] over every item, as [`Body::Spin`], run by plain
    /// `stealpool` and with a cancel token or a progress counter.
    Watched(Vec<Item>),
}

impl Body {
    /// The items one call processes (inner items, for a nested workload).
    pub fn items(&self) -> usize {
        match self {
            Body::Square(input) => input.len(),
            Body::Spin(input) => input.len(),
            Body::SumSquares(input) => input.len(),
            Body::SumF64(input) => input.len(),
            Body::SumSpin(input) => input.len(),
            Body::Nested { outer, inner } => outer.len() * inner.len(),
            Body::SpinRange(items) | Body::SpinOwned(items) | Body::Watched(items) => items.len(),
            Body::SpinMut(slots) => slots.borrow().len(),
            Body::OwnedStrings { master, .. } => master.len(),
        }
    }

    /// The systems of this body if they are not the default ones of a map.
    pub fn systems(&self) -> Option<&'static [System]> {
        match self {
            Body::SpinRange(_) | Body::SpinOwned(_) | Body::SpinMut(_) => Some(INPUT_SYSTEMS),
            Body::OwnedStrings { .. } => Some(INPUT_SYSTEMS),
            Body::Watched(_) => Some(WATCHED_SYSTEMS),
            _ => None,
        }
    }

    /// Makes the untimed copies of the owned input of the next `calls`
    /// calls (`owned-strings`; nothing for the other bodies).
    pub fn prepare(&self, calls: usize) {
        if let Body::OwnedStrings {
            master, prepared, ..
        } = self
        {
            let mut prepared = prepared.borrow_mut();
            while prepared.len() < calls {
                prepared.push(master.clone());
            }
        }
    }

    /// Makes one call with `system`.
    ///
    /// # Panics
    ///
    /// If `system` does not run this body.
    pub fn call(&self, runners: &Runners, system: System) -> Output {
        let values = match self {
            Body::Square(input) => runners.map(system, input, |x| x.wrapping_mul(*x)),
            Body::Spin(input) | Body::Watched(input) => runners.map(system, input, Item::run),
            Body::SumSquares(input) => {
                vec![runners.reduce(system, input, |x| x.wrapping_mul(*x), 0, u64::wrapping_add)]
            }
            Body::SumF64(input) => {
                let sum = runners.reduce(system, input, |x| *x, 0.0, |a, b| a + b);
                vec![(sum / 1000.0).round() as u64]
            }
            Body::SumSpin(input) => {
                vec![runners.reduce(system, input, Item::run, 0, u64::wrapping_add)]
            }
            Body::Nested { outer, inner } => runners.map(system, outer, |o| {
                let results = runners.map(inner_system(system), inner, |x| {
                    spin(o.seed ^ x.seed, x.iters)
                });
                checksum(&results)
            }),
            Body::SpinRange(items) => range_map(runners, system, items),
            Body::SpinOwned(items) => owned_map(runners, system, items.clone(), |x| x.run()),
            Body::SpinMut(slots) => mut_map(runners, system, &mut slots.borrow_mut()),
            Body::OwnedStrings {
                master,
                prepared,
                push,
            } => {
                // The copy made by `prepare`, else one made here (timed).
                let input = prepared.borrow_mut().pop();
                let input = input.unwrap_or_else(|| master.clone());
                return Output::Strings(if *push {
                    owned_map(runners, system, input, push_letter)
                } else {
                    owned_map(runners, system, input, upper)
                });
            }
        };
        Output::Values(values)
    }
}

/// [`Item::run`] over the index range `0..items.len()`, the item of index
/// `i` being `items[i]`.
fn range_map(runners: &Runners, system: System, items: &[Item]) -> Vec<u64> {
    let f = |i: usize| items[i].run();
    let range = 0..items.len();
    match system {
        System::Seq => range.map(f).collect(),
        System::Stealpool => runners.pool.map(range, f),
        System::Rayon => {
            use rayon::prelude::*;
            runners
                .rayon
                .install(|| range.into_par_iter().map(f).collect())
        }
        other => panic!("{} does not run the range map", other.name()),
    }
}

/// `f` over the owned `input`, each item moved into `f`.
fn owned_map<T, R, F>(runners: &Runners, system: System, input: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    match system {
        System::Seq => input.into_iter().map(f).collect(),
        System::Stealpool => runners.pool.map(input, f),
        System::Rayon => {
            use rayon::prelude::*;
            runners
                .rayon
                .install(|| input.into_par_iter().map(f).collect())
        }
        other => panic!("{} does not run the owned map", other.name()),
    }
}

/// [`Slot::run`] over the mutable `slots`.
fn mut_map(runners: &Runners, system: System, slots: &mut [Slot]) -> Vec<u64> {
    match system {
        System::Seq => slots.iter_mut().map(Slot::run).collect(),
        System::Stealpool => runners.pool.map(slots, Slot::run),
        System::Rayon => {
            use rayon::prelude::*;
            runners
                .rayon
                .install(|| slots.par_iter_mut().map(Slot::run).collect())
        }
        other => panic!("{} does not run the mutable map", other.name()),
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
            System::StealpoolToken => self
                .pool
                .options()
                .cancel_on(&self.token)
                .map(input, f)
                .expect("the benchmarks' token is never cancelled"),
            System::StealpoolProgress => self.pool.options().progress(&self.progress).map(input, f),
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
            System::StealpoolToken => self
                .pool
                .options()
                .cancel_on(&self.token)
                .map_reduce(input, f, || identity, combine)
                .expect("the benchmarks' token is never cancelled"),
            System::StealpoolProgress => self.pool.options().progress(&self.progress).map_reduce(
                input,
                f,
                || identity,
                combine,
            ),
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
        "sum-1us" => plain(
            "sum-1us",
            "wrapping sum of 100k items of ~1 us, reduced without collecting",
            Body::SumSpin(spin_items(100_000, &|_| US)),
        ),
        "uniform" => plain(
            "uniform",
            "100k items of ~1 us",
            Body::Spin(spin_items(100_000, &|_| US)),
        ),
        "uniform-watched" => plain(
            "uniform-watched",
            "uniform by stealpool plain, with a never-cancelled token, with a progress",
            Body::Watched(spin_items(100_000, &|_| US)),
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
        "small-call-watched" => Workload {
            calls_per_sample: 2000,
            ..plain(
                "small-call-watched",
                "small-call by stealpool plain, with a never-cancelled token, with a progress",
                Body::Watched(spin_items(16, &|_| 0.1 * US)),
            )
        },
        "small-range" => Workload {
            calls_per_sample: 2000,
            ..plain(
                "small-range",
                "maps of 0..16 (item i's ~100 ns cost looked up by index), back to back",
                Body::SpinRange(spin_items(16, &|_| 0.1 * US)),
            )
        },
        "small-owned" => Workload {
            calls_per_sample: 2000,
            ..plain(
                "small-owned",
                "maps of a fresh owned Vec of 16 items of ~100 ns (copied in every call), back to back",
                Body::SpinOwned(spin_items(16, &|_| 0.1 * US)),
            )
        },
        "small-mut" => Workload {
            calls_per_sample: 2000,
            ..plain(
                "small-mut",
                "maps of a mutable slice of 16 items of ~100 ns, each writing its element, back to back",
                Body::SpinMut(RefCell::new(
                    spin_items(16, &|_| 0.1 * US)
                        .into_iter()
                        .map(|item| Slot { item, out: 0 })
                        .collect(),
                )),
            )
        },
        "owned-strings" => plain(
            "owned-strings",
            "200k owned Strings of 20-40 bytes, each moved in, hashed, upper-cased in place, \
             returned (copy untimed)",
            Body::OwnedStrings {
                master: strings(200_000),
                prepared: RefCell::new(Vec::new()),
                push: false,
            },
        ),
        "owned-strings-push" => plain(
            "owned-strings-push",
            "200k owned Strings of 20-40 bytes, each moved in, a letter pushed (realloc), \
             returned (copy untimed)",
            Body::OwnedStrings {
                master: strings(200_000),
                prepared: RefCell::new(Vec::new()),
                push: true,
            },
        ),
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

/// `len` strings of 20 to 40 bytes (seeded lengths and letters), each made
/// with exactly its length as capacity, as a clone makes them.
fn strings(len: usize) -> Vec<String> {
    (0..len)
        .map(|i| {
            let mut state = i as u64;
            let target = 20 + (splitmix64(&mut state) % 21) as usize;
            let mut s = format!("s{i}-");
            while s.len() < target {
                s.push(char::from(b'a' + (splitmix64(&mut state) % 26) as u8));
            }
            s.shrink_to_fit();
            s
        })
        .collect()
}
