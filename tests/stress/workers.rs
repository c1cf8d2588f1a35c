//! `Pool::in_worker` and `Worker::join` calls. Every closure that is given
//! a worker handle checks that the handle names the thread it runs on
//! (`w.index() == current_thread_index()`); `a` must get the joining worker
//! (`b` gets it, or the thief that took `b`); `in_worker` called on a worker
//! of its own pool must run inline; and a `via_handle` join is made on the
//! handle of the item that makes it, as a recursion passes its worker down.

use crate::exec::{capture, catch, item_on, outputs, with_capture, Ctx, Raised, Where};
use crate::gen::Kind;
use crate::tally::bump;
use crate::values::{Sabotage, Val, WORKER};
use std::cell::Cell;
use std::panic::panic_any;
use std::sync::Arc;
use std::thread;
use stealpool::{current_thread_index, Worker};

/// Runs node `id`, an `InWorker` or a `WorkerJoin`; `handle` is the handle
/// of the closure making the call, if it was given one.
pub fn run(ctx: &Arc<Ctx>, id: usize, handle: Option<&Worker<'_>>) -> Result<u64, Raised> {
    let node = &ctx.prog.nodes[id];
    match node.kind {
        Kind::InWorker => catch(|| in_worker(ctx, id, |w| handle_item(ctx, id, 0, w)))
            .map(|value| outputs(ctx, id, vec![value])),
        Kind::WorkerJoin if node.via_handle => {
            let Some(w) = handle else {
                ctx.fail(format!(
                    "#{id} (WorkerJoin) joins on its maker's handle, but was made without one"
                ))
            };
            // The handle was made for another call, further up.
            check_handle(ctx, id, "the handle passed down", w);
            bump(&ctx.tally.handle_joins);
            catch(|| join(ctx, id, w)).map(|(a, b)| outputs(ctx, id, vec![a, b]))
        }
        Kind::WorkerJoin => catch(|| in_worker(ctx, id, |w| join(ctx, id, w)))
            .map(|(a, b)| outputs(ctx, id, vec![a, b])),
        kind => unreachable!("{kind:?} is made without a worker handle"),
    }
}

/// Checks that `w`, the handle `holder` was given, names the thread it is
/// used on.
fn check_handle(ctx: &Ctx, id: usize, holder: &str, w: &Worker<'_>) {
    bump(&ctx.tally.handle_checks);
    let mut on = current_thread_index();
    if ctx.sabotage == Sabotage::WrongIndex {
        on = on.map(|i| i ^ 1);
    }
    if Some(w.index()) != on {
        ctx.fail(format!(
            "#{id} ({:?}): {holder} got the handle of worker {}, but runs on worker {on:?}",
            ctx.prog.nodes[id].kind,
            w.index()
        ));
    }
}

/// Item `i` of node `id`, run by a closure given `w`, which the item's
/// nested call may join on.
fn handle_item(ctx: &Arc<Ctx>, id: usize, i: usize, w: &Worker<'_>) -> Val {
    match item_on(ctx, id, i, Where::Pool, Some(w)) {
        Ok(value) => value,
        Err(error) => panic_any(error),
    }
}

/// `pool.in_worker(f)` for node `id`: checks the handle `f` is given, and
/// that a call from a worker of the node's own pool ran inline.
fn in_worker<R: Send>(ctx: &Arc<Ctx>, id: usize, f: impl FnOnce(&Worker<'_>) -> R + Send) -> R {
    let pool = ctx.prog.nodes[id].pool;
    let caller = thread::current().id();
    let own = WORKER
        .with(Cell::get)
        .is_some_and(|(uid, _)| uid == ctx.uid(pool));
    ctx.pools[pool].in_worker(|w| {
        check_handle(ctx, id, "in_worker's closure", w);
        if own {
            bump(&ctx.tally.inline_in_worker);
            if thread::current().id() != caller {
                ctx.fail(format!(
                    "#{id} ({:?}): in_worker called on a worker of its own pool \
                     moved to worker {}",
                    ctx.prog.nodes[id].kind,
                    w.index()
                ));
            }
        }
        f(w)
    })
}

/// `w.join` of the two items of node `id`: `a` must get `w`'s worker, `b`
/// gets it or the thief's.
fn join(ctx: &Arc<Ctx>, id: usize, w: &Worker<'_>) -> (Val, Val) {
    let joiner = w.index();
    let (c0, c1) = (capture(ctx, id, 0), capture(ctx, id, 1));
    w.join(
        move |w| {
            check_handle(ctx, id, "a", w);
            if w.index() != joiner {
                ctx.fail(format!(
                    "#{id} (WorkerJoin): a got the handle of worker {}, not the joining \
                     worker {joiner}",
                    w.index()
                ));
            }
            with_capture(ctx, id, 0, c0, || handle_item(ctx, id, 0, w))
        },
        move |w| {
            check_handle(ctx, id, "b", w);
            if w.index() != joiner {
                bump(&ctx.tally.stolen_bs);
            }
            with_capture(ctx, id, 1, c1, || handle_item(ctx, id, 1, w))
        },
    )
}
