//! Fork-join workloads side by side: `join` of stealpool, rayon and chili
//! against the plain recursion, interleaved in one process.
//!
//! ```text
//! cargo bench --bench joins -- [--threads N] [--rounds R]
//! ```
//!
//! - `fib-join`: fib(30) by `join`, sequential below 20 (coarse leaves);
//! - `tree-sum 2^20` and `tree-sum 2^24`: the sum of a balanced binary tree
//!   with a `join` at every node (a few ns per node: the benchmark of spice
//!   and chili, where pushing every join on a deque costs several times the
//!   work).
//!
//! Each round runs every system once, in rotating order; the table shows
//! medians and ratios. Every system's result is checked against the
//! sequential one.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Instant;

/// A node of the balanced tree.
struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

/// A balanced tree of `2^depth - 1` nodes, numbered in depth-first order.
fn build(depth: u32, next: &mut u64) -> Option<Box<Node>> {
    if depth == 0 {
        return None;
    }
    *next += 1;
    let value = *next;
    let left = build(depth - 1, next);
    let right = build(depth - 1, next);
    Some(Box::new(Node { value, left, right }))
}

fn sum_seq(node: &Option<Box<Node>>) -> u64 {
    match node {
        None => 0,
        Some(n) => n.value + sum_seq(&n.left) + sum_seq(&n.right),
    }
}

fn sum_stealpool(pool: &stealpool::Pool, node: &Option<Box<Node>>) -> u64 {
    match node {
        None => 0,
        Some(n) => {
            let (a, b) = pool.join(
                || sum_stealpool(pool, &n.left),
                || sum_stealpool(pool, &n.right),
            );
            n.value + a + b
        }
    }
}

fn sum_rayon(node: &Option<Box<Node>>) -> u64 {
    match node {
        None => 0,
        Some(n) => {
            let (a, b) = rayon::join(|| sum_rayon(&n.left), || sum_rayon(&n.right));
            n.value + a + b
        }
    }
}

fn sum_chili(scope: &mut chili::Scope<'_>, node: &Option<Box<Node>>) -> u64 {
    match node {
        None => 0,
        Some(n) => {
            let (a, b) = scope.join(|s| sum_chili(s, &n.left), |s| sum_chili(s, &n.right));
            n.value + a + b
        }
    }
}

/// Below this, fib runs sequentially.
const FIB_CUTOFF: u64 = 20;

fn fib_seq(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_seq(n - 1) + fib_seq(n - 2)
    }
}

fn fib_stealpool(pool: &stealpool::Pool, n: u64) -> u64 {
    if n < FIB_CUTOFF {
        return fib_seq(n);
    }
    let (a, b) = pool.join(|| fib_stealpool(pool, n - 1), || fib_stealpool(pool, n - 2));
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
    let (a, b) = scope.join(|s| fib_chili(s, n - 1), |s| fib_chili(s, n - 2));
    a + b
}

/// The systems, in table order.
const SYSTEMS: [&str; 4] = ["seq", "stealpool", "rayon", "chili"];

/// The pools of one run.
struct Pools {
    stealpool: stealpool::Pool,
    rayon: rayon::ThreadPool,
    chili: chili::ThreadPool,
}

/// A workload: runs system `s` once and returns its result.
type Run<'a> = Box<dyn Fn(&Pools, usize) -> u64 + 'a>;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn parse_args() -> Result<(usize, usize), String> {
    let mut threads = match std::env::var("STEALPOOL_BENCH_THREADS") {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("STEALPOOL_BENCH_THREADS: not a number: {value:?}"))?,
        Err(_) => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    let mut rounds = 11;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let text = args.next().ok_or(format!("{name} needs a value"))?;
            match text.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{name}: expected a positive number, got {text:?}")),
            }
        };
        match arg.as_str() {
            "--threads" => threads = value("--threads")?,
            "--rounds" => rounds = value("--rounds")?,
            "--bench" => {}
            other => eprintln!("joins: ignoring argument {other:?}"),
        }
    }
    if threads == 0 {
        return Err("the thread count must be positive".into());
    }
    Ok((threads, rounds))
}

fn main() {
    let (threads, rounds) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("joins: {message}");
            std::process::exit(2);
        }
    };
    let pools = Pools {
        stealpool: stealpool::Pool::new(threads).expect("stealpool pool"),
        rayon: rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool"),
        chili: chili::ThreadPool::with_config(chili::Config {
            thread_count: NonZeroUsize::new(threads),
            ..Default::default()
        }),
    };
    let mut next = 0;
    let small = build(20, &mut next);
    let mut next = 0;
    let big = build(24, &mut next);
    let fib: Run = Box::new(|p: &Pools, s: usize| match s {
        0 => fib_seq(black_box(30)),
        1 => p.stealpool.apply(|| fib_stealpool(&p.stealpool, 30)),
        2 => p.rayon.install(|| fib_rayon(30)),
        _ => p.chili.scope().join(|s| fib_chili(s, 30), |_| 0).0,
    });
    let tree = |root: &'static Option<Box<Node>>| -> Run<'static> {
        Box::new(move |p: &Pools, s: usize| match s {
            0 => sum_seq(black_box(root)),
            1 => p.stealpool.apply(|| sum_stealpool(&p.stealpool, root)),
            2 => p.rayon.install(|| sum_rayon(root)),
            _ => p.chili.scope().join(|s| sum_chili(s, root), |_| 0).0,
        })
    };
    // The trees live for the whole run.
    let small: &'static Option<Box<Node>> = Box::leak(Box::new(small));
    let big: &'static Option<Box<Node>> = Box::leak(Box::new(big));
    let workloads: Vec<(&str, Run)> = vec![
        ("fib-join", fib),
        ("tree-sum 2^20", tree(small)),
        ("tree-sum 2^24", tree(big)),
    ];

    println!("joins: {threads} threads, {rounds} rounds, medians (each system's pool sized to {threads})");
    println!(
        "{:<15} {:>11} {:>11} {:>11} {:>11} {:>9} {:>9} {:>8} {:>8} {:>8} | {:>7} {:>6}",
        "workload",
        "seq",
        "stealpool",
        "rayon",
        "chili",
        "sp/rayon",
        "sp/chili",
        "sp/seq",
        "ry/seq",
        "ch/seq",
        "steals",
        "parks"
    );
    for (name, run) in &workloads {
        let want = run(&pools, 0);
        for (s, system) in SYSTEMS.iter().enumerate().skip(1) {
            let got = run(&pools, s);
            assert_eq!(got, want, "{name}: {system} gave {got}, sequential {want}");
        }
        let mut samples = vec![Vec::new(); SYSTEMS.len()];
        let before = pools.stealpool.stats();
        for round in 0..rounds {
            for k in 0..SYSTEMS.len() {
                let s = (round + k) % SYSTEMS.len();
                let started = Instant::now();
                black_box(run(&pools, s));
                samples[s].push(started.elapsed().as_secs_f64());
            }
        }
        let after = pools.stealpool.stats();
        let m: Vec<f64> = samples.into_iter().map(median).collect();
        let ms = |x: f64| format!("{:.3} ms", x * 1e3);
        println!(
            "{:<15} {:>11} {:>11} {:>11} {:>11} {:>9.3} {:>9.3} {:>8.3} {:>8.3} {:>8.3} | {:>7.1} {:>6.1}",
            name,
            ms(m[0]),
            ms(m[1]),
            ms(m[2]),
            ms(m[3]),
            m[1] / m[2],
            m[1] / m[3],
            m[1] / m[0],
            m[2] / m[0],
            m[3] / m[0],
            (after.worker_steals - before.worker_steals) as f64 / rounds as f64,
            (after.parks - before.parks) as f64 / rounds as f64,
        );
    }
    println!("steals, parks: stealpool Stats per call. sp = stealpool, ry = rayon, ch = chili.");
}
