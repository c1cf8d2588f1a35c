//! Running a program's calls on real pools, and checking the outcome of
//! every call, at every depth, against its sequential answer.
//!
//! A call's items make their nested call first, then spin, then fire their
//! fault. Every value that crosses the pool (inputs, results, `map_init`
//! states, `Injected` payloads and errors, closure captures) is `Counted`,
//! so that the driver can check that each was dropped exactly once; some
//! are armed to panic in their drop. The test drops the values it gets back
//! one at a time, under `catch_unwind` ([`dispose`]), checking that each
//! armed one panics with its own code, and never lets an armed value be
//! dropped while its thread unwinds (Rust would abort: that is Rust's rule,
//! not the engine's).

use crate::answers::item_drop_codes;
use crate::common::{panic_message, spin};
use crate::gen::{
    fold_term, item_value, Expect, Fault, Kind, Program, Site, KINDS, ORPHAN_POOL, SITES,
};
use crate::streams::{consume, start_imap};
use crate::tally::{bump, Tally};
use crate::values::{disposing, lock, CheckFailed, Counters, Injected, Sabotage, State, Val, What};
use crate::values::{Capture, MARKER, WORKER};
use crate::workers;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, panic_any, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool, Task, Worker};

/// Everything a program's calls share.
pub struct Ctx {
    pub prog: Program,
    pub pools: Vec<Pool>,
    /// The unique ids of `pools`, as the `WORKER` thread-local holds them.
    pub uids: Vec<u64>,
    pub orphan_uid: u64,
    pub counters: Arc<Counters>,
    pub failures: Mutex<Vec<String>>,
    pub tally: Arc<Tally>,
    pub sabotage: Sabotage,
    /// One rendezvous at a time per pool (see `Node::rendezvous`).
    pub tokens: Vec<Mutex<()>>,
    /// Per node: item 0 of its rendezvous has started.
    pub arrived: Vec<AtomicBool>,
    /// Per node: its rendezvous is on (see `spawn_items`).
    pub rendezvous_on: Vec<AtomicBool>,
    pub rendezvous_timeout: Duration,
    /// Per node, per item: how many times the item started running (see
    /// [`check_runs`]).
    pub runs: Vec<Vec<AtomicUsize>>,
    /// Per node: the call was made.
    pub called: Vec<AtomicBool>,
    /// Per node: the lock its items hold across their nested call, if it
    /// is `locked` (see `Node::locked`).
    pub locks: Vec<Mutex<()>>,
}

impl Ctx {
    /// Records a failed check and panics with it. From then on no value's
    /// drop panics: the check's panic may unwind through armed values.
    pub fn fail(&self, message: String) -> ! {
        self.counters.defused.store(true, Ordering::SeqCst);
        lock(&self.failures).push(message.clone());
        panic_any(CheckFailed(message))
    }

    pub fn uid(&self, pool: usize) -> u64 {
        if pool == ORPHAN_POOL {
            self.orphan_uid
        } else {
            self.uids[pool]
        }
    }

    fn val(&self, v: u64, what: What) -> Val {
        Val::new(&self.counters, v, what)
    }

    pub fn injected(&self, code: u64) -> Injected {
        Injected::new(&self.counters, code)
    }
}

/// How a call failed.
pub enum Raised {
    Panic(Box<dyn Any + Send>),
    Error(Injected),
}

/// The code of a payload, or what it is instead.
pub fn decode(payload: &(dyn Any + Send)) -> Result<u64, String> {
    if let Some(injected) = payload.downcast_ref::<Injected>() {
        return match injected.code % 2 {
            0 => Ok(injected.code),
            _ => Err(format!(
                "an Injected payload for the String fault {}",
                injected.code
            )),
        };
    }
    if let Some(CheckFailed(message)) = payload.downcast_ref::<CheckFailed>() {
        return Err(format!("a failed check: {message}"));
    }
    let message = panic_message(payload);
    match message
        .and_then(|m| m.strip_prefix(MARKER))
        .and_then(|code| code.parse::<u64>().ok())
    {
        Some(code) if code % 2 == 1 => Ok(code),
        Some(code) => Err(format!("a String payload for the struct fault {code}")),
        None => Err(format!("an unexpected panic: {message:?}")),
    }
}

impl Raised {
    fn code(&self) -> Result<u64, String> {
        match self {
            Raised::Panic(payload) => decode(&**payload),
            Raised::Error(error) => Ok(error.code),
        }
    }
}

/// Runs `f`, catching its panic.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Raised> {
    catch_unwind(AssertUnwindSafe(f)).map_err(Raised::Panic)
}

/// Fires a panic fault: a `String` or an `Injected` payload by its parity.
pub fn raise(ctx: &Ctx, fault: Fault) -> ! {
    let site = SITES.iter().position(|&s| s == fault.site).expect("a site");
    bump(&ctx.tally.raised[site][usize::from(fault.is_string())]);
    if fault.is_string() {
        panic_any(format!("{MARKER}{}", fault.code))
    } else {
        panic_any(Injected::armed(
            &ctx.counters,
            fault.code,
            fault.payload_drop_code(),
        ))
    }
}

/// Drops `value` as the test's own code, under `catch_unwind`; returns the
/// payload of its drop's panic.
pub fn dispose_caught<T>(value: T) -> Option<Box<dyn Any + Send>> {
    disposing(|| catch_unwind(AssertUnwindSafe(move || drop(value))).err())
}

/// Drops `value` (see [`dispose_caught`]); returns the code of its drop's
/// panic, if it panicked (the payload, a plain one, is dropped here).
pub fn dispose<T>(value: T) -> Option<Result<u64, String>> {
    dispose_caught(value).map(|payload| decode(&*payload))
}

/// Drops `value`, whose drop must panic with `bomb` (or not at all if
/// `None`), as its own `bomb()` said before the drop.
pub fn dispose_armed<T>(ctx: &Ctx, what: impl FnOnce() -> String, value: T, bomb: Option<u64>) {
    let got = dispose(value);
    if ctx.counters.defused.load(Ordering::SeqCst) {
        return;
    }
    match (bomb, got) {
        (None, None) => {}
        (Some(want), Some(Ok(code))) if want == code => {}
        (want, got) => ctx.fail(format!(
            "{}: its drop panicked with {got:?}, expected {want:?}",
            what()
        )),
    }
}

/// Drops a result of item `i` of `id` that the test got back.
pub fn dispose_val(ctx: &Ctx, id: usize, i: usize, value: Val) {
    let bomb = value.bomb();
    dispose_armed(ctx, || format!("#{id} item {i}'s result"), value, bomb);
}

/// Drops a failure of node `id` that reached the test.
pub fn dispose_raised(ctx: &Ctx, id: usize, raised: Raised) {
    match raised {
        Raised::Panic(payload) => {
            let bomb = payload.downcast_ref::<Injected>().and_then(Injected::bomb);
            dispose_armed(ctx, || format!("#{id}'s panic payload"), payload, bomb);
        }
        Raised::Error(error) => {
            let bomb = error.bomb();
            dispose_armed(ctx, || format!("#{id}'s error"), error, bomb);
        }
    }
}

/// Drops what the engine may still hold of node `id` (an `imap` iterator,
/// a detached task): its drop may panic only with one of `allowed`.
pub fn dispose_held<T>(ctx: &Ctx, what: &str, id: usize, value: T, allowed: &BTreeSet<u64>) {
    let got = dispose(value);
    if ctx.counters.defused.load(Ordering::SeqCst) {
        return;
    }
    match got {
        None => {}
        Some(Ok(code)) if allowed.contains(&code) => bump(&ctx.tally.held_drop_panics),
        Some(got) => ctx.fail(format!(
            "#{id} ({:?}): dropping {what} panicked with {got:?}, expected none or one of \
             {allowed:?}",
            ctx.prog.nodes[id].kind
        )),
    }
}

/// The value that the closure running item `i` of `id` captures, if that
/// one panics in its drop.
pub fn capture(ctx: &Ctx, id: usize, i: usize) -> Option<Capture> {
    let bomb = ctx.prog.nodes[id].items[i].capture_bomb?;
    Some(Capture::new(&ctx.counters, bomb.code))
}

/// The body of a closure that owns `capture` and runs item `i` of `id`
/// (`body`): the capture is dropped once the item has returned, and its
/// panic is then the closure's (the item's result is dropped first, by the
/// test); if the item panics, the capture is dropped first, under
/// `catch_unwind`, then the item's panic goes on: a value whose drop panics
/// must not be dropped while its own thread unwinds.
pub fn with_capture(
    ctx: &Ctx,
    id: usize,
    i: usize,
    capture: Option<Capture>,
    body: impl FnOnce() -> Val,
) -> Val {
    let Some(capture) = capture else {
        return body();
    };
    let bomb = capture.bomb();
    match catch(body) {
        Ok(value) => match dispose_caught(capture) {
            None if bomb.is_some() && !ctx.counters.defused.load(Ordering::SeqCst) => ctx.fail(
                format!("#{id} item {i}'s capture did not panic in its drop"),
            ),
            None => value,
            Some(payload) => {
                if bomb.is_some() && decode(&*payload).ok() != bomb {
                    ctx.fail(format!(
                        "#{id} item {i}'s capture panicked with another payload"
                    ));
                }
                dispose_val(ctx, id, i, value);
                resume_unwind(payload)
            }
        },
        Err(raised) => {
            dispose_armed(ctx, || format!("#{id} item {i}'s capture"), capture, bomb);
            match raised {
                Raised::Panic(payload) => resume_unwind(payload),
                Raised::Error(error) => panic_any(error),
            }
        }
    }
}

/// Where an item may run.
#[derive(Clone, Copy, Debug)]
pub enum Where {
    /// On a worker of its call's pool.
    Pool,
    /// There, or on the thread that made the call (the map family).
    PoolOrCaller(ThreadId),
    /// There, or on a plain thread (an `imap` whose pool is gone).
    PoolOrPlain,
}

/// Checks that the item runs where it may, and that the worker it runs on
/// sees the thread-local its `on_thread_start` set.
fn check_thread(ctx: &Ctx, id: usize, at: Where) {
    let local = WORKER.with(Cell::get);
    let index = current_thread_index();
    if local.map(|(_, i)| i) != index {
        ctx.fail(format!(
            "#{id}: on_thread_start's thread-local says {local:?}, current_thread_index() {index:?}"
        ));
    }
    let on_pool = local.is_some_and(|(uid, _)| uid == ctx.uid(ctx.prog.nodes[id].pool));
    let allowed = match at {
        Where::Pool => on_pool,
        Where::PoolOrCaller(caller) => on_pool || thread::current().id() == caller,
        Where::PoolOrPlain => on_pool || local.is_none(),
    };
    if !allowed {
        ctx.fail(format!(
            "#{id} ({:?}): an item ran on {:?} (worker {local:?}), allowed: {at:?}",
            ctx.prog.nodes[id].kind,
            thread::current().id()
        ));
    }
}

/// Item `i` of node `id`: its nested call, its busy work, its fault. A
/// panic fault unwinds; an error (a `try_map` item's, or a nested
/// `try_map`'s) is returned.
fn item(ctx: &Arc<Ctx>, id: usize, i: usize, at: Where) -> Result<Val, Injected> {
    item_on(ctx, id, i, at, None)
}

/// [`item`], run by a closure that was given `handle` (an item of
/// `in_worker` or `Worker::join`): its nested call may join on the handle.
pub fn item_on(
    ctx: &Arc<Ctx>,
    id: usize,
    i: usize,
    at: Where,
    handle: Option<&Worker<'_>>,
) -> Result<Val, Injected> {
    check_thread(ctx, id, at);
    count_run(ctx, id, i);
    let node = &ctx.prog.nodes[id];
    if node.rendezvous {
        rendezvous(ctx, id, i);
    }
    let item = &node.items[i];
    let held = hold_lock(ctx, id, i);
    let child = match item.child {
        Some(child) => {
            if held.is_some() {
                bump(&ctx.tally.locked_calls);
            }
            run_node_on(ctx, child, handle)
        }
        None => Ok(0),
    };
    if item.spin_us > 0 && child.is_ok() {
        spin(Duration::from_micros(u64::from(item.spin_us)));
    }
    drop(held);
    let child = match child {
        Ok(value) => value,
        Err(Raised::Panic(payload)) => resume_unwind(payload),
        Err(Raised::Error(error)) => return Err(error),
    };
    match item.fault {
        Some(fault) if fault.site == Site::ItemError => {
            bump(&ctx.tally.raised[1][0]);
            Err(ctx.injected(fault.code))
        }
        Some(fault) => raise(ctx, fault),
        None => Ok(Val::armed(
            &ctx.counters,
            item_value(node, i, child),
            What::Output,
            item.result_bomb.map(|f| f.code),
        )),
    }
}

thread_local! {
    /// The nodes whose lock this thread holds (see [`hold_lock`]).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Node `id`'s lock, held by an item of it (see [`hold_lock`]).
struct Held<'a> {
    id: usize,
    _guard: MutexGuard<'a, ()>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            let at = held.iter().rposition(|&id| id == self.id);
            held.remove(at.expect("a held lock is listed"));
        });
    }
}

/// Takes the lock of node `id` for its item `i` if the node is `locked` and
/// the item runs on a worker of the node's own pool (see `Node::locked`).
/// Taking it again on the thread that holds it (a deadlock) fails at once:
/// the holder, waiting inside its nested call, ran another item of the
/// node, which a wait must not do.
fn hold_lock<'a>(ctx: &'a Ctx, id: usize, i: usize) -> Option<Held<'a>> {
    let node = &ctx.prog.nodes[id];
    if !node.locked {
        return None;
    }
    let local = WORKER.with(Cell::get);
    if !local.is_some_and(|(uid, _)| uid == ctx.uid(node.pool)) {
        return None;
    }
    if HELD.with(|held| held.borrow().contains(&id)) {
        ctx.fail(format!(
            "#{id} ({:?}) item {i} takes its node's lock on worker {local:?}, which holds it \
             already: waiting inside an item's nested call, the worker ran another item of \
             the call that encloses it (a deadlock)",
            node.kind
        ));
    }
    let guard = match ctx.locks[id].try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            bump(&ctx.tally.lock_waits);
            ctx.locks[id].lock().unwrap_or_else(PoisonError::into_inner)
        }
    };
    HELD.with(|held| held.borrow_mut().push(id));
    Some(Held { id, _guard: guard })
}

/// Item 0 of a rendezvous announces itself; any later item that starts
/// before it, if no other rendezvous of its pool is under way, blocks until
/// item 0 has started, without running other jobs. Item 0 is then run by
/// another worker: by the spawning worker at the latest, which joins task 0
/// first, and a join runs its own task (`spawn_items` turns the rendezvous
/// on only once every task is spawned, and only then). A lost wake-up or a
/// lost task hangs here.
fn rendezvous(ctx: &Ctx, id: usize, i: usize) {
    let node = &ctx.prog.nodes[id];
    if i == 0 {
        // Whether or not the rendezvous is on yet: it may be turned on
        // after item 0 started.
        ctx.arrived[id].store(true, Ordering::SeqCst);
        return;
    }
    if !ctx.rendezvous_on[id].load(Ordering::SeqCst) {
        return;
    }
    let Ok(_token) = ctx.tokens[node.pool].try_lock() else {
        return;
    };
    if ctx.arrived[id].load(Ordering::SeqCst) {
        return;
    }
    bump(&ctx.tally.rendezvous_waits);
    let start = Instant::now();
    while !ctx.arrived[id].load(Ordering::SeqCst) {
        if start.elapsed() > ctx.rendezvous_timeout {
            ctx.fail(format!(
                "#{id} (Spawn): item {i} waited {} s for item 0 to start on another \
                 worker of its {}-thread pool: a lost wake-up?",
                ctx.rendezvous_timeout.as_secs(),
                ctx.prog.pools[node.pool]
            ));
        }
        thread::sleep(Duration::from_micros(50));
    }
}

/// Counts a run of item `i` of node `id`. A second run of the same item
/// fails at once: a job run twice (whose second result may overwrite the
/// first, unseen by any value check) is a bug even when the answers match.
fn count_run(ctx: &Ctx, id: usize, i: usize) {
    let before = ctx.runs[id][i].fetch_add(1, Ordering::SeqCst);
    if before > 0 {
        ctx.fail(format!(
            "#{id} ({:?}) item {i} ran {} times: an item must run at most once",
            ctx.prog.nodes[id].kind,
            before + 1
        ));
    }
}

/// Whether item `i` of node `id` must have run (exactly once) by the time
/// its call returned, successfully (`ok`) or not. The items that need not
/// have run (skipped after a failure, or past an `imap`'s `take`) must
/// still have run at most once.
fn must_have_run(ctx: &Ctx, id: usize, i: usize, ok: bool) -> bool {
    let node = &ctx.prog.nodes[id];
    match node.kind {
        // Every task is joined (or detached, and then checked once the
        // program is over, see `final_run_check`), whatever fails.
        Kind::Spawn => !node.items[i].detach,
        // Every task of a scope runs, whatever panics.
        Kind::Scope => true,
        Kind::Imap => ok && i < node.available().min(node.take.unwrap_or(usize::MAX)),
        Kind::ImapUnordered => ok && node.take != Some(0) && i < node.available(),
        _ => ok,
    }
}

/// Checks how many times each item of node `id` ran, once the call
/// returned (`ok`: successfully): exactly once if it must have run, at most
/// once otherwise.
pub fn check_runs(ctx: &Ctx, id: usize, ok: bool) {
    let node = &ctx.prog.nodes[id];
    for i in 0..node.items.len() {
        let runs = ctx.runs[id][i].load(Ordering::SeqCst);
        let must = must_have_run(ctx, id, i, ok);
        if runs > 1 || (must && runs != 1) {
            let outcome = if ok { "returned" } else { "failed" };
            ctx.fail(format!(
                "#{id} ({:?}) {outcome}, and item {i} ran {runs} times (expected {})",
                node.kind,
                if must { "exactly once" } else { "at most once" }
            ));
        }
    }
}

/// Checks a call's outcome and how often its items ran.
pub fn verify(ctx: &Ctx, id: usize, result: &Result<u64, Raised>) {
    check(ctx, id, result);
    check_runs(ctx, id, result.is_ok());
}

/// The run counts once the whole program is over (every detached task has
/// run): every item of a spawned call (detached ones too) and of a scope
/// ran exactly once, every other item at most once, and no item of a call
/// never made ran at all. Returns the problems.
pub fn final_run_check(ctx: &Ctx) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, node) in ctx.prog.nodes.iter().enumerate() {
        let called = ctx.called[id].load(Ordering::SeqCst);
        for i in 0..node.items.len() {
            let runs = ctx.runs[id][i].load(Ordering::SeqCst);
            let (ok, expected) = match node.kind {
                _ if !called => (runs == 0, "never (its call was not made)"),
                Kind::Spawn | Kind::Scope => (runs == 1, "exactly once"),
                _ => (runs <= 1, "at most once"),
            };
            if !ok {
                problems.push(format!(
                    "#{id} ({:?}) item {i} ran {runs} times by the end of the program, \
                     expected {expected}",
                    node.kind
                ));
            }
        }
    }
    problems
}

/// [`item`], with an error turned into a panic (as any call but `try_map`
/// passes a nested `try_map`'s error on).
pub fn item_or_panic(ctx: &Arc<Ctx>, id: usize, i: usize, at: Where) -> Val {
    match item(ctx, id, i, at) {
        Ok(value) => value,
        Err(error) => panic_any(error),
    }
}

/// The value of item `i` of `id` if it must succeed.
pub fn expected_item(ctx: &Ctx, id: usize, i: usize) -> Option<u64> {
    let node = &ctx.prog.nodes[id];
    let item = &node.items[i];
    if item.input_bomb.is_some() {
        return None;
    }
    let child = match item.child {
        Some(child) => match ctx.prog.expect[child] {
            Expect::Ok(value) => value,
            Expect::Fail(_) => return None,
        },
        None => 0,
    };
    match item.fault.or(item.capture_bomb) {
        Some(_) => None,
        None => Some(item_value(node, i, child)),
    }
}

/// Checks a result of item `i` and returns its term of the call's value.
pub fn check_item(ctx: &Ctx, id: usize, i: usize, value: &Val) -> u64 {
    let expected = expected_item(ctx, id, i);
    if expected != Some(value.v) {
        ctx.fail(format!(
            "#{id} ({:?}) item {i}: got {:#x}, expected {expected:x?}",
            ctx.prog.nodes[id].kind, value.v
        ));
    }
    fold_term(&ctx.prog.nodes[id], i, value.v)
}

/// Checks the results of a call, in item order, and returns its value;
/// drops them one at a time (a `Vec` of two values whose drop panics would
/// abort when dropped: Rust's rule).
pub fn outputs(ctx: &Ctx, id: usize, values: Vec<Val>) -> u64 {
    let len = ctx.prog.nodes[id].items.len();
    if values.len() != len {
        ctx.fail(format!("#{id}: {} results for {len} items", values.len()));
    }
    values.into_iter().enumerate().fold(0u64, |sum, (i, v)| {
        let term = check_item(ctx, id, i, &v);
        dispose_val(ctx, id, i, v);
        sum.wrapping_add(term)
    })
}

/// Checks a call's outcome against its sequential answer.
pub fn check(ctx: &Ctx, id: usize, result: &Result<u64, Raised>) {
    let kind = ctx.prog.nodes[id].kind;
    let mut expected = ctx.prog.expect[id].clone();
    if ctx.sabotage == Sabotage::WrongAnswers {
        expected = match expected {
            Expect::Ok(value) => Expect::Ok(value ^ 1),
            Expect::Fail(codes) => Expect::Fail(codes.iter().map(|c| c + 2).collect()),
        };
    }
    match (&expected, result) {
        (Expect::Ok(want), Ok(got)) if want == got => {}
        (Expect::Fail(codes), Err(raised)) => match raised.code() {
            Ok(code) if codes.contains(&code) => bump(&ctx.tally.caught),
            Ok(code) => ctx.fail(format!(
                "#{id} ({kind:?}) failed with fault {code}, expected one of {codes:?}"
            )),
            Err(what) => ctx.fail(format!("#{id} ({kind:?}) raised {what}")),
        },
        (_, Ok(got)) => ctx.fail(format!(
            "#{id} ({kind:?}) returned {got:#x}, expected {expected:x?}"
        )),
        (_, Err(raised)) => ctx.fail(format!(
            "#{id} ({kind:?}) failed with {:?}, expected {expected:x?}",
            raised.code()
        )),
    }
}

/// Runs node `id` (on its pool, from the calling thread) and checks its
/// outcome.
pub fn run_node(ctx: &Arc<Ctx>, id: usize) -> Result<u64, Raised> {
    run_node_on(ctx, id, None)
}

/// [`run_node`] from a closure that was given `handle`, which a
/// `via_handle` node joins on.
fn run_node_on(ctx: &Arc<Ctx>, id: usize, handle: Option<&Worker<'_>>) -> Result<u64, Raised> {
    let node = &ctx.prog.nodes[id];
    ctx.called[id].store(true, Ordering::SeqCst);
    let tally = &ctx.tally;
    bump(&tally.calls[KINDS.iter().position(|&k| k == node.kind).expect("a kind")]);
    if node.depth > 0 {
        bump(&tally.nested);
    }
    if let Some((uid, _)) = WORKER.with(Cell::get) {
        bump(&tally.from_worker);
        if uid != ctx.uid(node.pool) {
            bump(&tally.cross_pool);
        }
    }
    let pool = &ctx.pools[node.pool];
    let result = match node.kind {
        Kind::Map | Kind::MapChunked | Kind::TryMap | Kind::ForEach | Kind::MapInit => {
            map_family(ctx, id)
        }
        Kind::Apply => {
            let c0 = capture(ctx, id, 0);
            catch(|| {
                pool.apply(move || {
                    with_capture(ctx, id, 0, c0, || item_or_panic(ctx, id, 0, Where::Pool))
                })
            })
            .map(|value| outputs(ctx, id, vec![value]))
        }
        Kind::Join => {
            let (c0, c1) = (capture(ctx, id, 0), capture(ctx, id, 1));
            catch(|| {
                pool.join(
                    move || with_capture(ctx, id, 0, c0, || item_or_panic(ctx, id, 0, Where::Pool)),
                    move || with_capture(ctx, id, 1, c1, || item_or_panic(ctx, id, 1, Where::Pool)),
                )
            })
            .map(|(a, b)| outputs(ctx, id, vec![a, b]))
        }
        Kind::Spawn => {
            let tasks = spawn_items(ctx, pool, id);
            join_items(ctx, id, tasks)
        }
        Kind::Scope => scope(ctx, id),
        Kind::Imap | Kind::ImapUnordered => {
            let stream = start_imap(ctx, pool, id, Where::Pool);
            consume(ctx, id, stream)
        }
        Kind::InWorker | Kind::WorkerJoin => workers::run(ctx, id, handle),
    };
    verify(ctx, id, &result);
    result
}

fn map_family(ctx: &Arc<Ctx>, id: usize) -> Result<u64, Raised> {
    let node = &ctx.prog.nodes[id];
    let pool = &ctx.pools[node.pool];
    let inputs: Vec<Val> = (0..node.items.len())
        .map(|i| ctx.val(i as u64, What::Input))
        .collect();
    let at = Where::PoolOrCaller(thread::current().id());
    // The panics that unwound out of `f` (or `init`) in this call.
    let panicked: Mutex<Vec<Result<u64, String>>> = Mutex::new(Vec::new());
    let watch = |payload: Box<dyn Any + Send>| -> Box<dyn Any + Send> {
        lock(&panicked).push(decode(&*payload));
        payload
    };
    // Sabotage: item 0 runs twice, its first result thrown away.
    let twice = |x: &Val| {
        if ctx.sabotage == Sabotage::RunTwice && x.v == 0 {
            let _ = dispose(item(ctx, id, 0, at));
        }
    };
    let run = |x: &Val| {
        twice(x);
        catch(|| item_or_panic(ctx, id, x.v as usize, at)).unwrap_or_else(|raised| match raised {
            Raised::Panic(payload) => resume_unwind(watch(payload)),
            Raised::Error(_) => unreachable!("catch raises no errors"),
        })
    };
    let result = match node.kind {
        Kind::Map => catch(|| pool.map(&inputs, run)).map(|out| outputs(ctx, id, out)),
        Kind::MapChunked => catch(|| pool.options().chunk_size(node.chunk).map(&inputs, run))
            .map(|out| outputs(ctx, id, out)),
        Kind::TryMap => {
            let f = |x: &Val| {
                twice(x);
                match catch(|| item(ctx, id, x.v as usize, at)) {
                    Ok(result) => result,
                    Err(Raised::Panic(payload)) => {
                        let payload = watch(payload);
                        // Sabotage: the panic is turned into an error, as an
                        // engine that let an error win over a panic would.
                        match decode(&*payload) {
                            Ok(code) if ctx.sabotage == Sabotage::PanicLost => {
                                drop(payload);
                                Err(ctx.injected(code))
                            }
                            _ => resume_unwind(payload),
                        }
                    }
                    Err(Raised::Error(_)) => unreachable!("catch raises no errors"),
                }
            };
            match catch(|| pool.try_map(&inputs, f)) {
                Ok(Ok(out)) => Ok(outputs(ctx, id, out)),
                Ok(Err(error)) => Err(Raised::Error(error)),
                Err(panic) => Err(panic),
            }
        }
        Kind::ForEach => {
            let sum = AtomicU64::new(0);
            catch(|| {
                pool.for_each(&inputs, |x| {
                    let i = x.v as usize;
                    let value = run(x);
                    sum.fetch_add(check_item(ctx, id, i, &value), Ordering::Relaxed);
                })
            })
            .map(|()| sum.into_inner())
        }
        Kind::MapInit => catch(|| {
            pool.map_init(
                &inputs,
                || match node.init_fault {
                    Some(fault) => match catch(|| raise(ctx, fault)) {
                        Err(Raised::Panic(payload)) => resume_unwind(watch(payload)),
                        _ => unreachable!("raise panics"),
                    },
                    None => State::new(&ctx.counters, node.state_bomb.map(|f| f.code)),
                },
                |state, x| {
                    if state.use_once() == 0 {
                        ctx.fail(format!("#{id}: a map_init state was not kept"));
                    }
                    run(x)
                },
            )
        })
        .map(|out| outputs(ctx, id, out)),
        _ => unreachable!("not of the map family"),
    };
    let mut panicked = lock(&panicked).clone();
    // A state's drop panics outside `f`: first in time, it is the call's.
    if let (Some(bomb), false) = (node.state_bomb, panicked.is_empty()) {
        panicked.push(Ok(bomb.code));
    }
    check_first_panic(ctx, id, &result, &panicked);
    if let (Kind::TryMap, true, Err(raised)) = (node.kind, panicked.is_empty(), &result) {
        check_result_drop_panic(ctx, id, raised);
    }
    result
}

/// A `try_map` that failed with no panic of `f` may raise the panic of a
/// result's drop instead of its error: the result of an item that ran.
fn check_result_drop_panic(ctx: &Ctx, id: usize, raised: &Raised) {
    let (Raised::Panic(_), Ok(code)) = (raised, raised.code()) else {
        return;
    };
    let node = &ctx.prog.nodes[id];
    match node
        .items
        .iter()
        .position(|item| item.result_bomb.is_some_and(|f| f.code == code))
    {
        Some(i) if ctx.runs[id][i].load(Ordering::SeqCst) == 1 => {}
        Some(i) => ctx.fail(format!(
            "#{id} (TryMap) raised the panic of item {i}'s result's drop, but item {i} did not run"
        )),
        None => ctx.fail(format!(
            "#{id} (TryMap) raised fault {code} though f did not panic, and no result's drop \
             panics with it"
        )),
    }
}

/// A call of the map family in which `f` (or `init`) panicked must re-raise
/// one of those panics: a panic wins over an error (`try_map`), and the
/// call's own panic over any other.
fn check_first_panic(
    ctx: &Ctx,
    id: usize,
    result: &Result<u64, Raised>,
    panicked: &[Result<u64, String>],
) {
    let codes: Vec<u64> = panicked
        .iter()
        .filter_map(|c| c.as_ref().ok().copied())
        .collect();
    if panicked.is_empty() {
        return;
    }
    let kind = ctx.prog.nodes[id].kind;
    match result {
        Ok(_) => ctx.fail(format!(
            "#{id} ({kind:?}) returned, though f panicked in it with {codes:?}"
        )),
        Err(Raised::Error(error)) => ctx.fail(format!(
            "#{id} ({kind:?}) returned the error {}, though f panicked in this call with \
             {codes:?}: a panic wins over an error",
            error.code
        )),
        Err(raised @ Raised::Panic(_)) => match raised.code() {
            Ok(code) if !codes.contains(&code) => ctx.fail(format!(
                "#{id} ({kind:?}) raised fault {code}, though f panicked in this call with \
                 {codes:?}: the first panic of f wins"
            )),
            // A failed check is reported by itself.
            _ => {}
        },
    }
}

/// A scope whose body spawns the even items, each of which spawns the next
/// odd item before running its own; the body may panic after spawning.
/// Every task runs, whatever panics.
fn scope(ctx: &Arc<Ctx>, id: usize) -> Result<u64, Raised> {
    let node = &ctx.prog.nodes[id];
    let pool = &ctx.pools[node.pool];
    let len = node.items.len();
    let slots: Vec<Mutex<Option<Val>>> = (0..len).map(|_| Mutex::new(None)).collect();
    let ran = AtomicUsize::new(0);
    let caller = thread::current().id();
    let task = |i: usize, capture: Option<Capture>| {
        ran.fetch_add(1, Ordering::SeqCst);
        let value = with_capture(ctx, id, i, capture, || {
            item_or_panic(ctx, id, i, Where::Pool)
        });
        *lock(&slots[i]) = Some(value);
    };
    let result = catch(|| {
        pool.scope(|s| {
            if thread::current().id() != caller {
                ctx.fail(format!("#{id}: the scope's body left the calling thread"));
            }
            for i in (0..len).step_by(2) {
                let task = &task;
                let own = capture(ctx, id, i);
                let next = (i + 1 < len).then(|| capture(ctx, id, i + 1)).flatten();
                s.spawn(move || {
                    if i + 1 < len {
                        s.spawn(move || task(i + 1, next));
                    }
                    task(i, own);
                });
            }
            if let Some(fault) = node.body_fault {
                raise(ctx, fault);
            }
        })
    });
    let ran = ran.load(Ordering::SeqCst);
    if ran != len {
        ctx.fail(format!(
            "#{id}: the scope returned after {ran} of {len} tasks"
        ));
    }
    // The tasks' results, taken out one at a time.
    let values: Vec<Option<Val>> = slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect();
    match result {
        Ok(()) => {
            let values = values
                .into_iter()
                .enumerate()
                .map(|(i, value)| {
                    value.unwrap_or_else(|| ctx.fail(format!("#{id}: task {i} left no result")))
                })
                .collect();
            Ok(outputs(ctx, id, values))
        }
        Err(raised) => {
            for (i, value) in values.into_iter().enumerate() {
                if let Some(value) = value {
                    dispose_val(ctx, id, i, value);
                }
            }
            Err(raised)
        }
    }
}

/// Spawns every item of node `id` on `pool`; the handles of detached items
/// are dropped at once (the drop of a finished one drops its result or
/// payload, which may panic).
pub fn spawn_items(ctx: &Arc<Ctx>, pool: &Pool, id: usize) -> Vec<Option<Task<Val>>> {
    let node = &ctx.prog.nodes[id];
    ctx.called[id].store(true, Ordering::SeqCst);
    // A rendezvous needs a worker that will run item 0 while the last item
    // blocks: this one, if it is a worker of the pool (its join of task 0,
    // the first, runs task 0 if no one else has) and task 0 is joined. A
    // wait runs only its own call's work, so no other worker is sure to.
    let spawner_on_pool = WORKER
        .with(Cell::get)
        .is_some_and(|(uid, _)| uid == ctx.uid(node.pool));
    let on = node.rendezvous && spawner_on_pool && !node.items[0].detach;
    let tasks = (0..node.items.len())
        .map(|i| {
            let shared = Arc::clone(ctx);
            let own = capture(ctx, id, i);
            let task = pool.spawn(move || {
                with_capture(&shared, id, i, own, || {
                    item_or_panic(&shared, id, i, Where::Pool)
                })
            });
            if node.items[i].detach {
                bump(&ctx.tally.detached);
                let allowed = item_drop_codes(&ctx.prog, id, i);
                dispose_held(ctx, "a detached task's handle", id, task, &allowed);
                None
            } else {
                Some(task)
            }
        })
        .collect();
    // Only now: an item that waited while the spawn loop still ran could
    // wait for a task 0 whose handle a failing spawn dropped unjoined.
    ctx.rendezvous_on[id].store(on, Ordering::SeqCst);
    tasks
}

/// Joins the tasks of node `id` in order; the first failure is the call's.
/// Results and the other failures are dropped one at a time.
pub fn join_items(ctx: &Arc<Ctx>, id: usize, tasks: Vec<Option<Task<Val>>>) -> Result<u64, Raised> {
    let mut sum = 0u64;
    let mut first = None;
    for (i, task) in tasks.into_iter().enumerate() {
        let Some(task) = task else { continue };
        match catch(|| task.join()) {
            Ok(value) => {
                sum = sum.wrapping_add(check_item(ctx, id, i, &value));
                dispose_val(ctx, id, i, value);
            }
            Err(raised) if first.is_none() => first = Some(raised),
            Err(raised) => dispose_raised(ctx, id, raised),
        }
    }
    first.map_or(Ok(sum), Err)
}
