//! The fork-join workloads: `fib-join` (fib(30) by `join`, sequential below
//! 20) and `tree-sum-20` / `tree-sum-24` (the sum of a balanced binary tree of
//! 2^20 or 2^24 nodes with a `join` at every node: the benchmark of spice and
//! chili, where pushing every join on a deque costs several times the work).
//!
//! Systems: the plain recursion (`seq`), `Worker::join` (`stealpool`,
//! entered through `Pool::in_worker`, the worker handle passed down the
//! recursion as chili passes its `Scope`; `Pool::join` is the same join
//! after a look-up of the calling worker at every call), `rayon::join` inside
//! `install`, chili's `Scope::join`, and `scope`: the recursion split
//! statically at the top into one piece per thread with
//! `std::thread::scope`, each piece then run by the plain recursion.
//!
//! **Every system visits the left child first**, and the tree is allocated
//! in that same order (a parent, then its left subtree, then its right
//! subtree). The order matters far more than any scheduler: on this
//! machine a traversal that walks the nodes in allocation order runs 4–7×
//! faster than one that walks them against it (see `docs/benchmarks.md`,
//! "The tree-sum anomaly"). chili's `Scope::join(a, b)` runs `b` first on
//! the calling thread (and offers `a` to thieves), so the chili version
//! passes the right subtree as `a` and the left as `b`.

use super::{Kind, Runners, System, Workload};

/// A node of the balanced tree.
pub struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

/// A balanced tree of `2^depth - 1` nodes numbered in depth-first order,
/// each node allocated before its subtrees (left, then right), so that a
/// left-first traversal reads the heap in allocation order.
pub fn build(depth: u32, next: &mut u64) -> Option<Box<Node>> {
    if depth == 0 {
        return None;
    }
    *next += 1;
    let mut node = Box::new(Node {
        value: *next,
        left: None,
        right: None,
    });
    node.left = build(depth - 1, next);
    node.right = build(depth - 1, next);
    Some(node)
}

// Every tree walk has the shape of chili's own benchmark (`benches/
// overhead.rs` there): one join per node, each closure testing its child
// for `None` before recursing, so that no call is made for a missing child
// whatever the compiler inlines. (A walk that called itself on `None` and
// tested there measured up to 1.6 x slower for stealpool from one build of
// the runner to the next, as the inlining of that test moved.)

/// The plain recursion.
pub fn sum_seq(node: &Node) -> u64 {
    node.value + node.left.as_deref().map_or(0, sum_seq) + node.right.as_deref().map_or(0, sum_seq)
}

fn sum_stealpool(w: &stealpool::Worker<'_>, node: &Node) -> u64 {
    let (a, b) = w.join(
        |w| node.left.as_deref().map_or(0, |n| sum_stealpool(w, n)),
        |w| node.right.as_deref().map_or(0, |n| sum_stealpool(w, n)),
    );
    node.value + a + b
}

fn sum_rayon(node: &Node) -> u64 {
    let (a, b) = rayon::join(
        || node.left.as_deref().map_or(0, sum_rayon),
        || node.right.as_deref().map_or(0, sum_rayon),
    );
    node.value + a + b
}

fn sum_chili(scope: &mut chili::Scope<'_>, node: &Node) -> u64 {
    // chili runs its second closure first, on this thread: the left subtree
    // goes second so that it is visited first, as everywhere.
    let (right, left) = scope.join(
        |s| node.right.as_deref().map_or(0, |n| sum_chili(s, n)),
        |s| node.left.as_deref().map_or(0, |n| sum_chili(s, n)),
    );
    node.value + left + right
}

/// The tree split statically: the right subtree on a spawned thread with
/// half the threads, the left one here with the rest, down to one thread
/// per piece.
fn sum_scope(threads: usize, node: &Node) -> u64 {
    if threads <= 1 {
        return sum_seq(node);
    }
    let right_threads = threads / 2;
    std::thread::scope(|s| {
        let right = s.spawn(|| {
            node.right
                .as_deref()
                .map_or(0, |n| sum_scope(right_threads, n))
        });
        let left = node
            .left
            .as_deref()
            .map_or(0, |n| sum_scope(threads - right_threads, n));
        node.value + left + right.join().expect("tree-sum: a scope thread panicked")
    })
}

/// Below this, fib runs sequentially.
pub const FIB_CUTOFF: u64 = 20;

/// The plain recursion.
pub fn fib_seq(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_seq(n - 1) + fib_seq(n - 2)
    }
}

fn fib_stealpool(w: &stealpool::Worker<'_>, n: u64) -> u64 {
    if n < FIB_CUTOFF {
        return fib_seq(n);
    }
    let (a, b) = w.join(|w| fib_stealpool(w, n - 1), |w| fib_stealpool(w, n - 2));
    a + b
}

fn fib_rayon(n: u64) -> u64 {
    if n < FIB_CUTOFF {
        return fib_seq(n);
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1), || fib_rayon(n - 2));
    a + b
}

fn fib_chili(scope: &mut chili::Scope<'_>, n: u64) -> u64 {
    if n < FIB_CUTOFF {
        return fib_seq(n);
    }
    // As in `sum_chili`: the closure chili runs first goes second.
    let (b, a) = scope.join(|s| fib_chili(s, n - 2), |s| fib_chili(s, n - 1));
    a + b
}

fn fib_scope(threads: usize, n: u64) -> u64 {
    if threads <= 1 || n < 2 {
        return fib_seq(n);
    }
    let second = threads / 2;
    std::thread::scope(|s| {
        let b = s.spawn(|| fib_scope(second, n - 2));
        fib_scope(threads - second, n - 1) + b.join().expect("fib-join: a scope thread panicked")
    })
}

/// The joins that `fib_*` makes for `n` (one per call at or above the
/// cutoff).
fn fib_joins(n: u64) -> usize {
    if n < FIB_CUTOFF {
        0
    } else {
        1 + fib_joins(n - 1) + fib_joins(n - 2)
    }
}

/// The input of a fork-join workload.
pub enum Body {
    /// fib(`n`) by `join`, sequential below [`FIB_CUTOFF`].
    Fib {
        /// The argument.
        n: u64,
    },
    /// The sum of a balanced tree.
    Tree {
        /// The tree has `2^depth - 1` nodes.
        depth: u32,
        /// The tree, built once and shared by every system.
        root: Option<Box<Node>>,
    },
}

impl Body {
    /// Joins per call (`fib`) or nodes (tree).
    pub fn items(&self) -> usize {
        match self {
            Body::Fib { n } => fib_joins(*n),
            Body::Tree { depth, .. } => (1usize << depth) - 1,
        }
    }

    /// Makes one call with `system`, returning the sum.
    ///
    /// # Panics
    ///
    /// If `system` is `Channel`, `Polling` or a watched stealpool system.
    pub fn call(&self, runners: &Runners, system: System) -> u64 {
        let pool = &runners.pool;
        match self {
            Body::Fib { n } => {
                let n = std::hint::black_box(*n);
                match system {
                    System::Seq => fib_seq(n),
                    System::Stealpool => pool.in_worker(|w| fib_stealpool(w, n)),
                    System::Rayon => runners.rayon.install(|| fib_rayon(n)),
                    System::Scope => fib_scope(runners.threads, n),
                    System::Chili => fib_chili(&mut runners.chili.scope(), n),
                    System::Channel
                    | System::Polling
                    | System::StealpoolToken
                    | System::StealpoolProgress => {
                        panic!("{} does not run fork-join workloads", system.name())
                    }
                }
            }
            Body::Tree { root, .. } => {
                let Some(root) = std::hint::black_box(root.as_deref()) else {
                    return 0;
                };
                match system {
                    System::Seq => sum_seq(root),
                    System::Stealpool => pool.in_worker(|w| sum_stealpool(w, root)),
                    System::Rayon => runners.rayon.install(|| sum_rayon(root)),
                    System::Scope => sum_scope(runners.threads, root),
                    System::Chili => sum_chili(&mut runners.chili.scope(), root),
                    System::Channel
                    | System::Polling
                    | System::StealpoolToken
                    | System::StealpoolProgress => {
                        panic!("{} does not run fork-join workloads", system.name())
                    }
                }
            }
        }
    }
}

/// Builds the fork-join workload called `name`, or `None` if there is none.
pub fn workload(name: &str) -> Option<Workload> {
    let (name, description, body) = match name {
        "fib-join" => (
            "fib-join",
            format!("fib(30) by join, sequential below {FIB_CUTOFF}"),
            Body::Fib { n: 30 },
        ),
        "tree-sum-20" | "tree-sum-24" => {
            let depth = if name == "tree-sum-20" { 20 } else { 24 };
            let mut next = 0;
            let root = build(depth, &mut next);
            (
                if depth == 20 {
                    "tree-sum-20"
                } else {
                    "tree-sum-24"
                },
                format!("sum of a balanced tree of 2^{depth} - 1 nodes, join at every node"),
                Body::Tree { depth, root },
            )
        }
        _ => return None,
    };
    // Calls of about 2 ms (fib, the small tree) are timed ten to a sample,
    // so that one preemption or timer tick does not make a sample.
    let calls_per_sample = if body.items() < 1 << 21 { 10 } else { 1 };
    Some(Workload {
        name,
        description,
        kind: Kind::ForkJoin(body),
        calls_per_sample,
        pause: None,
        tick: None,
    })
}
