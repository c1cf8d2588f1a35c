//! Running one whole program: its pools, its plain caller threads, its
//! orphan part, and the checks made once everything has stopped (every
//! counted value dropped exactly once, every worker's hooks run, no thread
//! left behind).

use crate::common::{threads_named, unique_prefix};
use crate::exec::{
    dispose, dispose_raised, final_run_check, join_items, run_node, spawn_items, verify, Ctx, Where,
};
use crate::gen::{DropMode, Orphan, Program, Site, SITES};
use crate::streams::{consume, start_imap};
use crate::tally::Tally;
use crate::values::{lock, CheckFailed, Counters, Sabotage, What, WHATS, WORKER};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool};

/// How long the clean-up after a program may take (workers finishing
/// detached work, joined threads leaving `/proc`).
const SETTLE: Duration = Duration::from_secs(30);

/// The `on_thread_start` / `on_thread_exit` counts of a program's pools.
#[derive(Debug, Default)]
struct Hooks {
    starts: AtomicUsize,
    exits: AtomicUsize,
    /// Exits on a thread whose thread-local was not its own start's.
    mismatched: AtomicUsize,
}

/// A pool of `threads` workers named `name<i>`, whose `on_thread_start`
/// sets the `WORKER` thread-local to `(uid, i)`.
fn build_pool(threads: usize, uid: u64, name: String, hooks: &Arc<Hooks>) -> Result<Pool, String> {
    let (start, exit) = (Arc::clone(hooks), Arc::clone(hooks));
    Pool::builder()
        .threads(threads)
        .thread_name(move |i| format!("{name}{i}"))
        // Nested waits run other jobs on the waiter's stack; debug frames are
        // big.
        .stack_size(16 << 20)
        .on_thread_start(move |i| {
            WORKER.with(|w| w.set(Some((uid, i))));
            start.starts.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_exit(move |i| {
            if WORKER.with(Cell::get) != Some((uid, i)) {
                exit.mismatched.fetch_add(1, Ordering::SeqCst);
            }
            WORKER.with(|w| w.set(None));
            exit.exits.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .map_err(|err| format!("cannot build a pool of {threads} threads: {err}"))
}

fn next_uid() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Waits until `done()` or `SETTLE` has passed; returns `done()`.
fn settle(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > SETTLE {
            return done();
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Records a panic that escaped a thread of the program (a failed check is
/// already recorded).
fn record_escape(ctx: &Ctx, payload: Box<dyn std::any::Any + Send>, place: &str) {
    if payload.downcast_ref::<CheckFailed>().is_none() {
        lock(&ctx.failures).push(format!(
            "a panic escaped {place}: {:?}",
            crate::common::panic_message(&*payload)
        ));
    }
    // It may be a payload whose drop panics.
    let _ = dispose(payload);
}

/// Runs `program` and checks it. `Err` holds the report of what went wrong.
pub fn run_program(
    program: Program,
    rendezvous_timeout: Duration,
    tally: &Arc<Tally>,
    sabotage: Sabotage,
) -> Result<(), String> {
    bump_program(tally, &program);
    let prefix = unique_prefix("st");
    let hooks = Arc::new(Hooks::default());
    let uids: Vec<u64> = program.pools.iter().map(|_| next_uid()).collect();
    let pools = program
        .pools
        .iter()
        .zip(&uids)
        .enumerate()
        .map(|(p, (&threads, &uid))| build_pool(threads, uid, format!("{prefix}{p}."), &hooks))
        .collect::<Result<Vec<Pool>, String>>()?;
    let callers = program.callers.clone();
    let tokens = program.pools.iter().map(|_| Mutex::new(())).collect();
    let arrived = program
        .nodes
        .iter()
        .map(|_| AtomicBool::new(false))
        .collect();
    let rendezvous_on = program
        .nodes
        .iter()
        .map(|_| AtomicBool::new(false))
        .collect();
    let runs = program
        .nodes
        .iter()
        .map(|node| node.items.iter().map(|_| AtomicUsize::new(0)).collect())
        .collect();
    let called = program
        .nodes
        .iter()
        .map(|_| AtomicBool::new(false))
        .collect();
    let locks = program.nodes.iter().map(|_| Mutex::new(())).collect();
    let ctx = Arc::new(Ctx {
        runs,
        called,
        locks,
        tokens,
        arrived,
        rendezvous_on,
        rendezvous_timeout,
        prog: program,
        pools,
        uids,
        orphan_uid: next_uid(),
        counters: Arc::new(Counters::default()),
        failures: Mutex::new(Vec::new()),
        tally: Arc::clone(tally),
        sabotage,
    });
    let barrier = Arc::new(Barrier::new(callers.len() + 1));
    let threads: Vec<thread::JoinHandle<()>> = callers
        .into_iter()
        .enumerate()
        .map(|(c, roots)| {
            let (ctx, barrier) = (Arc::clone(&ctx), Arc::clone(&barrier));
            thread::Builder::new()
                .name(format!("{prefix}c{c}"))
                .spawn(move || {
                    barrier.wait();
                    for root in roots {
                        match catch_unwind(AssertUnwindSafe(|| run_node(&ctx, root))) {
                            Ok(Ok(_)) => {}
                            Ok(Err(raised)) => dispose_raised(&ctx, root, raised),
                            Err(payload) => record_escape(&ctx, payload, "a caller thread"),
                        }
                    }
                })
                .expect("cannot start a caller thread")
        })
        .collect();
    barrier.wait();
    if let Some(orphan) = ctx.prog.orphan.clone() {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
            run_orphan(&ctx, &orphan, &prefix, &hooks)
        })) {
            record_escape(&ctx, payload, "the orphan part");
        }
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| "a caller thread panicked".to_owned())?;
    }
    // Detached tasks and skipped imap batches may still hold the context.
    if !settle(|| Arc::strong_count(&ctx) == 1) {
        return Err(format!(
            "{} references to the program's context are still held {} s after every \
             call returned: a task or an imap batch never ran, or leaked",
            Arc::strong_count(&ctx) - 1,
            SETTLE.as_secs()
        ));
    }
    let run_problems = final_run_check(&ctx);
    lock(&ctx.failures).extend(run_problems);
    let ctx = Arc::try_unwrap(ctx).map_err(|_| "the context is shared again".to_owned())?;
    let Ctx {
        prog,
        pools,
        counters,
        failures,
        ..
    } = ctx;
    for pool in &pools {
        let stats = pool.stats();
        for (count, value) in [
            (&tally.jobs_run, stats.jobs_run),
            (&tally.worker_steals, stats.worker_steals),
            (&tally.wakeups, stats.wakeups),
        ] {
            count.fetch_add(
                usize::try_from(value).unwrap_or(usize::MAX),
                Ordering::Relaxed,
            );
        }
    }
    drop(pools);
    let mut problems = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let workers: usize =
        prog.pools.iter().sum::<usize>() + prog.orphan.as_ref().map_or(0, |o| o.threads);
    // A pool dropped on its own worker detaches that worker, which exits
    // once its job returned.
    settle(|| hooks.exits.load(Ordering::SeqCst) == workers);
    let (starts, exits) = (
        hooks.starts.load(Ordering::SeqCst),
        hooks.exits.load(Ordering::SeqCst),
    );
    if starts != workers || exits != workers {
        problems.push(format!(
            "{workers} workers, {starts} on_thread_start calls, {exits} on_thread_exit calls"
        ));
    }
    if hooks.mismatched.load(Ordering::SeqCst) != 0 {
        problems.push("on_thread_exit ran without its worker's thread-local".to_owned());
    }
    match sabotage {
        // Counted as made, never dropped: what a leaked result looks like
        // (without leaking memory, which valgrind would report).
        Sabotage::Leak => counters.made[What::Output as usize].fetch_add(1, Ordering::SeqCst),
        Sabotage::DoubleDrop => {
            counters.dropped[What::Output as usize].fetch_add(1, Ordering::SeqCst)
        }
        Sabotage::None
        | Sabotage::WrongAnswers
        | Sabotage::WrongIndex
        | Sabotage::RunTwice
        | Sabotage::PanicLost => 0,
    };
    for (what, name) in WHATS.iter().enumerate() {
        let made = counters.made[what].load(Ordering::SeqCst);
        let dropped = counters.dropped[what].load(Ordering::SeqCst);
        if made != dropped {
            problems.push(format!("{made} {name} values made, {dropped} dropped"));
        }
        // The drops that panicked, tallied by their site.
        let site = [
            Site::InputDrop,
            Site::ResultDrop,
            Site::StateDrop,
            Site::PayloadDrop,
            Site::CaptureDrop,
        ][what];
        let site = SITES.iter().position(|&s| s == site).expect("a site");
        for form in 0..2 {
            tally.raised[site][form].fetch_add(
                counters.fired[what][form].load(Ordering::SeqCst),
                Ordering::Relaxed,
            );
        }
        tally.engine_drops[what].fetch_add(
            counters.fired_by_engine[what].load(Ordering::SeqCst),
            Ordering::Relaxed,
        );
    }
    if !settle(|| threads_named(&prefix).is_empty()) {
        problems.push(format!("threads left behind: {:?}", threads_named(&prefix)));
    }
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{first}\n({} problems in all; the others may follow from the first)",
            problems.len()
        )),
    }
}

fn bump_program(tally: &Tally, program: &Program) {
    tally.programs.fetch_add(1, Ordering::Relaxed);
    for &threads in &program.pools {
        tally.pool_sizes[threads - 1].fetch_add(1, Ordering::Relaxed);
    }
    if program.callers.len() > 1 {
        tally.concurrent_programs.fetch_add(1, Ordering::Relaxed);
    }
    tally
        .most_callers
        .fetch_max(program.callers.len(), Ordering::Relaxed);
    if let Some(orphan) = &program.orphan {
        tally.orphan_drops[orphan.drop.index()].fetch_add(1, Ordering::Relaxed);
        tally.pool_sizes[orphan.threads - 1].fetch_add(1, Ordering::Relaxed);
    }
}

/// The orphan part: tasks and an imap started on a pool of their own, handed
/// to a holder thread, and the pool dropped (as the plan says) while the
/// holder joins and iterates them.
fn run_orphan(ctx: &Arc<Ctx>, orphan: &Orphan, prefix: &str, hooks: &Arc<Hooks>) {
    let pool = match build_pool(orphan.threads, ctx.orphan_uid, format!("{prefix}o"), hooks) {
        Ok(pool) => pool,
        Err(err) => ctx.fail(err),
    };
    let tasks = spawn_items(ctx, &pool, orphan.tasks);
    let imap = orphan
        .imap
        .map(|id| (id, start_imap(ctx, &pool, id, Where::PoolOrPlain)));
    let (started, consuming) = mpsc::channel::<()>();
    let shared = Arc::clone(ctx);
    let (tasks_id, delay) = (orphan.tasks, orphan.holder_delay_us);
    let holder = thread::Builder::new()
        .name(format!("{prefix}h"))
        .spawn(move || {
            let ctx = shared;
            if delay > 0 {
                thread::sleep(Duration::from_micros(u64::from(delay)));
            }
            let _ = started.send(());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let result = join_items(&ctx, tasks_id, tasks);
                verify(&ctx, tasks_id, &result);
                if let Err(raised) = result {
                    dispose_raised(&ctx, tasks_id, raised);
                }
                if let Some((id, stream)) = imap {
                    let result = consume(&ctx, id, stream);
                    verify(&ctx, id, &result);
                    if let Err(raised) = result {
                        dispose_raised(&ctx, id, raised);
                    }
                }
            }));
            if let Err(payload) = outcome {
                record_escape(&ctx, payload, "the orphan's holder thread");
            }
        })
        .expect("cannot start the holder thread");
    match orphan.drop {
        DropMode::Now => drop(pool),
        DropMode::AfterDelay(us) => {
            thread::sleep(Duration::from_micros(u64::from(us)));
            drop(pool);
        }
        DropMode::OtherThread => {
            let _ = consuming.recv();
            thread::spawn(move || drop(pool))
                .join()
                .unwrap_or_else(|_| ctx.fail("dropping the orphan pool panicked".to_owned()));
        }
        DropMode::OnOwnWorker => {
            let slot: Arc<Mutex<Option<Pool>>> = Arc::new(Mutex::new(None));
            let taker = Arc::clone(&slot);
            let dropper = pool.spawn(move || loop {
                let taken = lock(&taker).take();
                if let Some(pool) = taken {
                    let on = current_thread_index();
                    drop(pool);
                    return on;
                }
                thread::yield_now();
            });
            *lock(&slot) = Some(pool);
            if dropper.join().is_none() {
                ctx.fail("the orphan pool was not dropped on its own worker".to_owned());
            }
        }
    }
    if holder.join().is_err() {
        ctx.fail("the holder thread panicked".to_owned());
    }
}
