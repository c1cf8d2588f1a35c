//! The programs the stress test runs: their shape, the seeded generator, and
//! the sequential answer of every call in them.
//!
//! A program is a forest of calls ("nodes"). Each node is one call of the
//! public API (`map`, `spawn`, `scope`, ...) on one of the program's pools,
//! over a few items; an item may make a nested call (its child node) before
//! computing its own value, and may fail on purpose (an injected fault). The
//! roots are shared out among up to 8 plain threads that run at once, and a
//! program may have an "orphan" part: work on a pool of its own that is
//! dropped while another thread still holds the `Task`s and the `Imap`.
//!
//! Everything here is a pure function of the seed: the same seed gives the
//! same program and the same expected answers.

use crate::answers::expect;
use crate::common::Rng;
use std::collections::BTreeSet;

/// The calls the generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Map,
    MapChunked,
    TryMap,
    ForEach,
    MapInit,
    Apply,
    Spawn,
    Join,
    Scope,
    Imap,
    ImapUnordered,
    /// `Pool::in_worker`: one item, run with the handle it is given.
    InWorker,
    /// `Worker::join`: two items, each run with the handle its closure is
    /// given; through `Pool::in_worker`, or (`Node::via_handle`) with the
    /// handle of the item that makes the call.
    WorkerJoin,
}

/// Every kind, in a fixed order (the forced root of seed `s` is
/// `KINDS[s % KINDS.len()]`).
pub const KINDS: [Kind; 13] = [
    Kind::Map,
    Kind::MapChunked,
    Kind::TryMap,
    Kind::ForEach,
    Kind::MapInit,
    Kind::Apply,
    Kind::Spawn,
    Kind::Join,
    Kind::Scope,
    Kind::Imap,
    Kind::ImapUnordered,
    Kind::InWorker,
    Kind::WorkerJoin,
];

/// Where an injected fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The item panics.
    ItemPanic,
    /// The item returns `Err` (items of `try_map` only).
    ItemError,
    /// The input iterator of an `imap` panics.
    Input,
    /// The `init` of a `map_init` panics.
    Init,
    /// The body of a `scope` panics after spawning its tasks.
    Body,
    /// Every `map_init` state of the call panics in its drop.
    StateDrop,
    /// The item's result panics in its drop.
    ResultDrop,
    /// A value captured by the closure that runs the item (of `spawn`,
    /// `scope`, `apply`, `join`, `Worker::join`) panics in its drop: after
    /// the item returned (the closure then panics), or when the engine drops
    /// the closure unrun.
    CaptureDrop,
    /// The item's `imap` input panics in its drop (in `f`, which drops it
    /// first, or wherever an unmapped input is dropped).
    InputDrop,
    /// A struct panic payload panics in its drop (see `Fault::payload_bomb`);
    /// only tallied, never generated as a fault of its own.
    PayloadDrop,
}

/// Every site, in a fixed order (for the tallies).
pub const SITES: [Site; 10] = [
    Site::ItemPanic,
    Site::ItemError,
    Site::Input,
    Site::Init,
    Site::Body,
    Site::StateDrop,
    Site::ResultDrop,
    Site::CaptureDrop,
    Site::InputDrop,
    Site::PayloadDrop,
];

impl Site {
    /// Whether a fault of this site fires by a value's drop.
    pub fn is_drop(self) -> bool {
        matches!(
            self,
            Site::StateDrop
                | Site::ResultDrop
                | Site::CaptureDrop
                | Site::InputDrop
                | Site::PayloadDrop
        )
    }

    /// The payload forms a run must see fired at this site (struct,
    /// `String`).
    pub fn forms(self) -> [bool; 2] {
        match self {
            // An error is a struct; a payload's drop panics with the `String`
            // of the odd code after its own.
            Site::ItemError => [true, false],
            Site::PayloadDrop => [false, true],
            _ => [true, true],
        }
    }
}

/// An injected fault. Its code is unique in the program, and its parity
/// says how it travels: an odd code is a `String` panic payload, an even code
/// an `Injected` struct (as a panic payload, or as the `Err` of `try_map`).
/// A drop site's fault fires by the drop of a value armed with its code,
/// with the payload of that code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub site: Site,
    pub code: u64,
    /// A struct panic payload (of a panic site) whose own drop panics, with
    /// the `String` payload of [`Fault::payload_drop_code`].
    pub payload_bomb: bool,
}

impl Fault {
    /// Whether the fault travels as a `String` payload.
    pub fn is_string(self) -> bool {
        self.code % 2 == 1
    }

    /// The code the drop of this fault's payload panics with, if it does:
    /// the odd code after the fault's even one (never used by another fault).
    pub fn payload_drop_code(self) -> Option<u64> {
        self.payload_bomb.then_some(self.code + 1)
    }
}

/// The chance, in percent, that a node that may be locked is (see
/// `Node::locked`).
const LOCK_PERCENT: u64 = 30;

/// The pool index of the orphan part's pool.
pub const ORPHAN_POOL: usize = usize::MAX;

/// One item of a call.
#[derive(Clone, Debug)]
pub struct Item {
    /// Busy work before the item's value is made, in microseconds.
    pub spin_us: u32,
    /// A nested call, made first, whose value goes into the item's.
    pub child: Option<usize>,
    /// Fires after the child returned.
    pub fault: Option<Fault>,
    /// `Spawn` only: the task's handle is dropped without joining it.
    pub detach: bool,
    /// The item's result panics in its drop.
    pub result_bomb: Option<Fault>,
    /// The closure that runs the item captures a value that panics in its
    /// drop.
    pub capture_bomb: Option<Fault>,
    /// `Imap`, `ImapUnordered`: the item's input panics in its drop.
    pub input_bomb: Option<Fault>,
}

/// One call of the public API.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// An index into the program's pools, or [`ORPHAN_POOL`].
    pub pool: usize,
    pub depth: usize,
    pub salt: u64,
    pub items: Vec<Item>,
    /// `MapChunked`: the chunk size.
    pub chunk: usize,
    /// `Imap`, `ImapUnordered`: the window, if not the default.
    pub window: Option<usize>,
    /// `Imap`: how many results to take before dropping the iterator;
    /// `ImapUnordered`: `Some(0)` drops it at once.
    pub take: Option<usize>,
    /// `Imap`, `ImapUnordered`: the input iterator panics instead of
    /// yielding item `.0`.
    pub input_fault: Option<(usize, Fault)>,
    /// `MapInit`: every call of `init` panics.
    pub init_fault: Option<Fault>,
    /// `Scope`: the body panics after spawning.
    pub body_fault: Option<Fault>,
    /// `MapInit`: every state panics in its drop.
    pub state_bomb: Option<Fault>,
    /// `Spawn` on a pool of 2 threads or more, from a worker of that pool:
    /// an item that starts before item 0 blocks (without running other
    /// jobs) until item 0 has started, so item 0 must be run by another
    /// worker: a lost wake-up hangs here (see `exec::rendezvous`).
    pub rendezvous: bool,
    /// `WorkerJoin` made by an item of an `InWorker` or `WorkerJoin` node
    /// of the same pool: `Worker::join` on the handle that item was given
    /// (the recursion that passes its worker down), not through
    /// `Pool::in_worker`.
    pub via_handle: bool,
    /// Every item that runs on a worker of the node's own pool holds the
    /// node's lock (a `Mutex` of its own) across its nested call and its
    /// busy work, and releases it before its fault fires; items run
    /// elsewhere (the map family's caller) do not take it. Safe only
    /// because a wait runs only its own call's work: the holder, waiting
    /// for its nested call, never picks up another item of this node (which
    /// would take the lock again on the same thread, as before isolation:
    /// `exec::hold_lock` reports it at once). So the generator locks a node
    /// only if no pool could deadlock it: it is on a pool of the program
    /// (not the orphan's), one of its items makes a nested call, and every
    /// node under it is on its pool. The holder is then a worker of that
    /// pool, every thread that can block on the lock is running one of
    /// this node's items, and all the work the holder waits for is on its
    /// own pool, where a waiter can do all of its own call's work itself;
    /// a call to another pool could need a worker of this pool that is
    /// blocked on the lock (a foreign wait may run work of other calls).
    /// The lock only serializes: the answers do not change.
    pub locked: bool,
}

impl Node {
    /// The items the input iterator of an `imap` yields before it ends or
    /// panics.
    pub fn available(&self) -> usize {
        self.input_fault
            .map_or(self.items.len(), |(at, _)| at.min(self.items.len()))
    }
}

/// What a call must give: a value, or a failure whose code is one of a set
/// (several when items fail in parallel and the first in time wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Ok(u64),
    Fail(BTreeSet<u64>),
}

/// How the orphan part's pool is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropMode {
    /// Right after the work is handed to the holder thread.
    Now,
    /// After the holder may have started joining and iterating.
    AfterDelay(u32),
    /// By a task of the pool itself, holding the last handle.
    OnOwnWorker,
    /// By a third thread, while the holder consumes.
    OtherThread,
}

/// Every drop mode's name, in a fixed order (for the tallies).
pub const DROP_MODES: [&str; 4] = ["now", "after-delay", "on-own-worker", "other-thread"];

impl DropMode {
    pub fn index(self) -> usize {
        match self {
            DropMode::Now => 0,
            DropMode::AfterDelay(_) => 1,
            DropMode::OnOwnWorker => 2,
            DropMode::OtherThread => 3,
        }
    }
}

/// Work on a pool of its own, consumed by another thread while the pool is
/// dropped.
#[derive(Clone, Debug)]
pub struct Orphan {
    pub threads: usize,
    /// A `Spawn` node on [`ORPHAN_POOL`].
    pub tasks: usize,
    /// An `Imap` or `ImapUnordered` node on [`ORPHAN_POOL`].
    pub imap: Option<usize>,
    pub drop: DropMode,
    /// How long the holder waits before consuming, in microseconds.
    pub holder_delay_us: u32,
}

/// A whole program.
#[derive(Clone, Debug)]
pub struct Program {
    pub seed: u64,
    /// Thread counts of the pools.
    pub pools: Vec<usize>,
    pub nodes: Vec<Node>,
    /// The root nodes each plain thread runs, in order.
    pub callers: Vec<Vec<usize>>,
    pub orphan: Option<Orphan>,
    /// The expected outcome of every node.
    pub expect: Vec<Expect>,
    /// The codes of the faults whose payload panics in its drop.
    pub payload_bombs: BTreeSet<u64>,
}

/// Size limits of the generator.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Items in a whole program, roughly.
    pub budget: usize,
    /// Items of a small call.
    pub len: usize,
    /// Items of a big map-family call.
    pub big_len: usize,
    pub max_callers: usize,
    pub max_roots: usize,
    pub max_depth: usize,
    /// Microseconds of the costliest items.
    pub slow_us: u32,
    /// How long a rendezvous waits for its partner before it reports a
    /// lost wake-up.
    pub rendezvous_secs: u64,
}

impl Limits {
    /// For a normal run.
    pub const NORMAL: Limits = Limits {
        budget: 700,
        len: 24,
        big_len: 400,
        max_callers: 8,
        max_roots: 3,
        max_depth: 4,
        slow_us: 40,
        rendezvous_secs: 20,
    };
    /// Under valgrind (tens of times slower).
    pub const SMALL: Limits = Limits {
        budget: 60,
        len: 6,
        big_len: 24,
        max_callers: 3,
        max_roots: 2,
        max_depth: 2,
        slow_us: 5,
        rendezvous_secs: 300,
    };
}

/// A 64-bit mix (splitmix64's finalizer).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The value of item `i` of `node` whose child gave `child` (0 if none).
pub fn item_value(node: &Node, i: usize, child: u64) -> u64 {
    mix(node.salt, i as u64) ^ child.rotate_left(17)
}

/// The contribution of item `i`'s value to its call's value (the call's
/// value is the wrapping sum of these, so the order of arrival is free).
pub fn fold_term(node: &Node, i: usize, value: u64) -> u64 {
    mix(node.salt ^ value, i as u64 + 1)
}

struct Gen {
    rng: Rng,
    limits: Limits,
    pools: usize,
    /// Thread counts of the pools.
    threads: Vec<usize>,
    nodes: Vec<Node>,
    budget: usize,
    next_code: u64,
}

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn fault(&mut self, site: Site, string: bool) -> Fault {
        self.next_code += 2;
        let string = string && site != Site::ItemError;
        let payload_bomb = !string && !site.is_drop() && site != Site::ItemError && self.chance(25);
        Fault {
            site,
            code: self.next_code + u64::from(string),
            payload_bomb,
        }
    }

    /// The drop sites a node of `kind` may arm values for.
    fn bomb_sites(kind: Kind) -> &'static [Site] {
        match kind {
            Kind::Map | Kind::MapChunked | Kind::TryMap | Kind::MapInit | Kind::InWorker => {
                &[Site::ResultDrop]
            }
            // `for_each` has no results; a scope's tasks leave theirs in the
            // test's own slots.
            Kind::ForEach => &[],
            Kind::Scope => &[Site::CaptureDrop],
            Kind::Apply | Kind::Join | Kind::WorkerJoin | Kind::Spawn => {
                &[Site::ResultDrop, Site::CaptureDrop]
            }
            Kind::Imap | Kind::ImapUnordered => &[Site::ResultDrop, Site::InputDrop],
        }
    }

    fn len(&mut self, kind: Kind) -> usize {
        let limits = self.limits;
        let len = match kind {
            Kind::Apply | Kind::InWorker => return 1,
            Kind::Join | Kind::WorkerJoin => return 2,
            Kind::Spawn => self.below(limits.len / 2 + 1),
            Kind::Map | Kind::MapChunked | Kind::TryMap | Kind::ForEach | Kind::MapInit
                if self.chance(12) =>
            {
                limits.big_len / 4 + self.below(limits.big_len * 3 / 4 + 1)
            }
            _ => self.below(limits.len + 1),
        };
        len.min(self.budget)
    }

    fn node(&mut self, depth: usize, pool: Option<usize>, forced: Option<Kind>) -> usize {
        let kind = forced.unwrap_or_else(|| KINDS[self.below(KINDS.len())]);
        let pool = pool.unwrap_or_else(|| self.below(self.pools));
        let mut len = self.len(kind);
        if forced.is_some() {
            len = len.max(1);
        }
        self.budget = self.budget.saturating_sub(len);
        let slow_us = self.limits.slow_us;
        let items = (0..len)
            .map(|_| {
                let roll = self.below(100);
                let spin_us = match roll {
                    0..=79 => 0,
                    80..=94 => 1 + self.below(5) as u32,
                    _ => slow_us / 2 + self.below(slow_us as usize / 2 + 1) as u32,
                };
                Item {
                    spin_us,
                    child: None,
                    fault: None,
                    detach: kind == Kind::Spawn && self.chance(20),
                    result_bomb: None,
                    capture_bomb: None,
                    input_bomb: None,
                }
            })
            .collect();
        let id = self.nodes.len();
        let salt = self.rng.below(u64::MAX);
        let chunk = 1 + self.below(len.max(1));
        self.nodes.push(Node {
            kind,
            pool,
            depth,
            salt,
            items,
            chunk,
            window: None,
            take: None,
            input_fault: None,
            init_fault: None,
            body_fault: None,
            state_bomb: None,
            rendezvous: false,
            via_handle: false,
            locked: false,
        });
        // Nested calls, on any pool of the program (the orphan's items nest
        // into the program's pools too); an item of an `InWorker` or a
        // `WorkerJoin` may instead join on its own handle, on its pool.
        if depth < self.limits.max_depth && len > 0 {
            let most = [3, 2, 2, 1, 1][depth.min(4)];
            for _ in 0..self.below(most + 1) {
                if self.budget == 0 {
                    break;
                }
                let at = self.below(len);
                if self.nodes[id].items[at].child.is_none() {
                    let child =
                        if matches!(kind, Kind::InWorker | Kind::WorkerJoin) && self.chance(40) {
                            // The item passes its worker handle down.
                            let child = self.node(depth + 1, Some(pool), Some(Kind::WorkerJoin));
                            self.nodes[child].via_handle = true;
                            child
                        } else {
                            self.node(depth + 1, None, None)
                        };
                    self.nodes[id].items[at].child = Some(child);
                }
            }
        }
        // Faults.
        if len > 0 && self.chance(30) {
            for _ in 0..1 + self.below(2) {
                let at = self.below(len);
                let site = if kind == Kind::TryMap && self.chance(50) {
                    Site::ItemError
                } else {
                    Site::ItemPanic
                };
                let string = self.chance(50);
                self.nodes[id].items[at].fault = Some(self.fault(site, string));
            }
        }
        // Values whose drop panics.
        let sites = Gen::bomb_sites(kind);
        if len > 0 && !sites.is_empty() && self.chance(25) {
            for _ in 0..1 + self.below(3) {
                let at = self.below(len);
                let site = sites[self.below(sites.len())];
                let string = self.chance(50);
                let fault = Some(self.fault(site, string));
                let item = &mut self.nodes[id].items[at];
                match site {
                    Site::ResultDrop => item.result_bomb = fault,
                    Site::CaptureDrop => item.capture_bomb = fault,
                    _ => item.input_bomb = fault,
                }
            }
        }
        if kind == Kind::MapInit && self.chance(15) {
            let string = self.chance(50);
            self.nodes[id].state_bomb = Some(self.fault(Site::StateDrop, string));
        }
        match kind {
            Kind::Imap | Kind::ImapUnordered => {
                if self.chance(50) {
                    self.nodes[id].window = Some(1 + self.below(8));
                }
                if kind == Kind::Imap && self.chance(25) {
                    self.nodes[id].take = Some(self.below(len + 1));
                }
                if kind == Kind::ImapUnordered && self.chance(15) {
                    self.nodes[id].take = Some(0);
                }
                if self.chance(15) {
                    let at = self.below(len + 1);
                    let string = self.chance(50);
                    self.nodes[id].input_fault = Some((at, self.fault(Site::Input, string)));
                }
            }
            Kind::MapInit if self.chance(15) => {
                let string = self.chance(50);
                self.nodes[id].init_fault = Some(self.fault(Site::Init, string));
            }
            Kind::Scope if self.chance(15) => {
                let string = self.chance(50);
                self.nodes[id].body_fault = Some(self.fault(Site::Body, string));
            }
            Kind::Spawn if pool != ORPHAN_POOL && self.threads[pool] > 1 && len > 1 => {
                self.nodes[id].rendezvous = self.chance(90);
            }
            _ => {}
        }
        // A lock held across the nested calls (see `Node::locked`): the
        // nodes made since this one are its subtree.
        let nested = self.nodes[id].items.iter().any(|item| item.child.is_some());
        if pool != ORPHAN_POOL && nested && self.nodes[id + 1..].iter().all(|n| n.pool == pool) {
            self.nodes[id].locked = self.chance(LOCK_PERCENT);
        }
        id
    }

    /// Gives the forced root of the seed the fault its variant asks for:
    /// 0 none, 1 the fault particular to its kind, 2 a `String` panic.
    fn force_fault(&mut self, id: usize, variant: u64) {
        let node = &self.nodes[id];
        let (kind, len) = (node.kind, node.items.len());
        let at = self.below(len);
        let string = variant == 2;
        let node_fault = match (variant, kind) {
            (0, _) => return,
            (1, Kind::TryMap) => {
                let fault = self.fault(Site::ItemError, false);
                self.nodes[id].items[at].fault = Some(fault);
                return;
            }
            (1, Kind::Imap | Kind::ImapUnordered) => {
                let fault = self.fault(Site::Input, false);
                let node = &mut self.nodes[id];
                node.take = None;
                node.input_fault = Some((at, fault));
                return;
            }
            (1, Kind::MapInit) => Some(self.fault(Site::Init, false)),
            (1, Kind::Scope) => Some(self.fault(Site::Body, false)),
            _ => None,
        };
        let node = &mut self.nodes[id];
        match (node_fault, kind) {
            (Some(fault), Kind::MapInit) => node.init_fault = Some(fault),
            (Some(fault), _) => node.body_fault = Some(fault),
            (None, _) => {
                let fault = self.fault(Site::ItemPanic, string);
                let node = &mut self.nodes[id];
                node.items[at].fault = Some(fault);
                node.items[at].detach = false;
                if matches!(node.kind, Kind::Imap | Kind::ImapUnordered) {
                    node.take = None;
                }
            }
        }
    }
}

/// The program of `seed`.
///
/// Consecutive seeds cycle through the forced choices, so that any 39 of
/// them cover every kind of call, every fault site and payload form, and
/// every way of dropping the orphan pool: the root that caller 0 runs first
/// is of kind `KINDS[seed % 13]`, with the fault variant `(seed / 13) % 3`
/// (see `force_fault`); and when `seed % 3 == 0` the program has an orphan
/// part dropped in mode `(seed / 3) % 4`.
pub fn generate(seed: u64, limits: Limits) -> Program {
    let mut gen = Gen {
        rng: Rng::new(mix(seed, 0x5747_e55e)),
        limits,
        pools: 0,
        threads: Vec::new(),
        nodes: Vec::new(),
        budget: limits.budget,
        next_code: 0,
    };
    let pool_count = match gen.below(100) {
        0..=54 => 1,
        55..=89 => 2,
        _ => 3,
    };
    let pools: Vec<usize> = (0..pool_count).map(|_| 1 + gen.below(4)).collect();
    gen.pools = pool_count;
    gen.threads = pools.clone();
    let callers = match gen.below(100) {
        0..=39 => 1,
        40..=69 => 2 + gen.below(2),
        _ => 4 + gen.below(limits.max_callers.saturating_sub(3).max(1)),
    }
    .min(limits.max_callers);
    let mut roots = vec![Vec::new(); callers];
    let forced_kind = KINDS[(seed % KINDS.len() as u64) as usize];
    let forced = gen.node(0, None, Some(forced_kind));
    gen.force_fault(forced, (seed / KINDS.len() as u64) % 3);
    roots[0].push(forced);
    for (caller, list) in roots.iter_mut().enumerate() {
        let count = usize::from(caller > 0) + gen.below(limits.max_roots);
        for _ in 0..count {
            list.push(gen.node(0, None, None));
        }
    }
    let orphan = if seed % 3 == 0 || gen.chance(20) {
        let drop = match if seed % 3 == 0 {
            (seed / 3) % 4
        } else {
            gen.rng.below(4)
        } {
            0 => DropMode::Now,
            1 => DropMode::AfterDelay(gen.below(2000) as u32),
            2 => DropMode::OnOwnWorker,
            _ => DropMode::OtherThread,
        };
        gen.budget = gen.budget.max(limits.len * 2);
        let tasks = gen.node(0, Some(ORPHAN_POOL), Some(Kind::Spawn));
        let imap = if gen.chance(70) {
            let kind = if gen.chance(50) {
                Kind::Imap
            } else {
                Kind::ImapUnordered
            };
            Some(gen.node(0, Some(ORPHAN_POOL), Some(kind)))
        } else {
            None
        };
        Some(Orphan {
            threads: 1 + gen.below(4),
            tasks,
            imap,
            drop,
            holder_delay_us: if gen.chance(50) {
                0
            } else {
                gen.below(3000) as u32
            },
        })
    } else {
        None
    };
    let mut program = Program {
        seed,
        pools,
        nodes: gen.nodes,
        callers: roots,
        orphan,
        expect: Vec::new(),
        payload_bombs: BTreeSet::new(),
    };
    for node in &program.nodes {
        let faults = node.items.iter().filter_map(|item| item.fault);
        let node_faults = [
            node.init_fault,
            node.body_fault,
            node.input_fault.map(|(_, f)| f),
        ];
        for fault in faults.chain(node_faults.into_iter().flatten()) {
            if fault.payload_bomb {
                program.payload_bombs.insert(fault.code);
            }
        }
    }
    let mut memo = vec![None; program.nodes.len()];
    program.expect = (0..program.nodes.len())
        .map(|id| expect(&program.nodes, id, &mut memo))
        .collect();
    program
}
