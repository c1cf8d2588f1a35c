//! `imap` and `imap_unordered` calls: their counted, possibly panicking
//! input (whose items may panic in their drop), starting them, and
//! consuming them (in order up to a `take`, or as they complete) with a
//! check of every result, then dropping the iterator.

use crate::answers::stream_drop_codes;
use crate::exec::{
    catch, check_item, dispose_armed, dispose_held, dispose_val, expected_item, item_or_panic,
    raise, Ctx, Raised, Where,
};
use crate::gen::{fold_term, Fault, Kind};
use crate::tally::bump;
use crate::values::{disposing, Val, What};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use stealpool::Pool;

/// An `imap`'s input: counted items, and perhaps a panic in place of one.
struct Input {
    items: VecDeque<Val>,
    next: usize,
    fault: Option<(usize, Fault)>,
    ctx: Arc<Ctx>,
}

impl Drop for Input {
    /// The items never pulled are the input's own: dropped one at a time,
    /// each panic caught (a `VecDeque` of two values whose drop panics would
    /// abort: Rust's rule).
    fn drop(&mut self) {
        for value in self.items.drain(..) {
            let bomb = value.bomb();
            let i = value.v;
            dispose_armed(&self.ctx, || format!("an unpulled input {i}"), value, bomb);
        }
    }
}

impl Iterator for Input {
    type Item = Val;

    fn next(&mut self) -> Option<Val> {
        if let Some((at, fault)) = self.fault {
            if self.next == at {
                self.next += 1;
                raise(&self.ctx, fault);
            }
        }
        let value = self.items.pop_front()?;
        self.next += 1;
        Some(value)
    }
}

/// A started `imap` or `imap_unordered`.
pub type Stream = Box<dyn Iterator<Item = Val> + Send>;

/// Starts the `imap` of node `id` on `pool`.
pub fn start_imap(ctx: &Arc<Ctx>, pool: &Pool, id: usize, at: Where) -> Stream {
    let node = &ctx.prog.nodes[id];
    ctx.called[id].store(true, std::sync::atomic::Ordering::SeqCst);
    let input = Input {
        items: (0..node.available())
            .map(|i| {
                let bomb = node.items[i].input_bomb.map(|f| f.code);
                Val::armed(&ctx.counters, i as u64, What::Input, bomb)
            })
            .collect(),
        next: 0,
        fault: node.input_fault,
        ctx: Arc::clone(ctx),
    };
    let shared = Arc::clone(ctx);
    // `f` drops its input first: a value whose drop panics must not be
    // dropped while the item's own panic unwinds.
    let f = move |x: Val| {
        let i = x.v as usize;
        disposing(|| drop(x));
        item_or_panic(&shared, id, i, at)
    };
    match (node.kind, node.window) {
        (Kind::Imap, None) => Box::new(pool.imap(input, f)),
        (Kind::Imap, Some(window)) => Box::new(pool.imap(input, f).window(window)),
        (Kind::ImapUnordered, None) => Box::new(pool.imap_unordered(input, f)),
        (Kind::ImapUnordered, Some(window)) => {
            Box::new(pool.imap_unordered(input, f).window(window))
        }
        (kind, _) => unreachable!("{kind:?} is no imap"),
    }
}

/// Consumes the `imap` of node `id`: in order up to its `take`, or as the
/// items complete; stops at the first failure and drops the iterator,
/// whose drop may panic with one of the results or payloads it still held.
pub fn consume(ctx: &Arc<Ctx>, id: usize, mut stream: Stream) -> Result<u64, Raised> {
    let result = consume_from(ctx, id, &mut stream);
    let allowed = stream_drop_codes(&ctx.prog, id);
    dispose_held(ctx, "the imap iterator", id, stream, &allowed);
    result
}

fn consume_from(ctx: &Arc<Ctx>, id: usize, stream: &mut Stream) -> Result<u64, Raised> {
    let node = &ctx.prog.nodes[id];
    let available = node.available();
    let mut sum = 0u64;
    if node.kind == Kind::Imap {
        let take = node.take.unwrap_or(usize::MAX);
        for k in 0.. {
            if k == take {
                if k < available || node.input_fault.is_some() {
                    bump(&ctx.tally.early_drops);
                }
                break;
            }
            match catch(|| stream.next()) {
                Ok(Some(value)) => {
                    sum = sum.wrapping_add(check_item(ctx, id, k, &value));
                    dispose_val(ctx, id, k, value);
                }
                Ok(None) if k == available && node.input_fault.is_none() => break,
                Ok(None) => ctx.fail(format!("#{id} (Imap) ended after {k} items")),
                Err(raised) => {
                    bump(&ctx.tally.early_drops);
                    return Err(raised);
                }
            }
        }
        return Ok(sum);
    }
    if node.take == Some(0) {
        bump(&ctx.tally.early_drops);
        return Ok(0);
    }
    let index: HashMap<u64, usize> = (0..available)
        .filter_map(|i| expected_item(ctx, id, i).map(|v| (v, i)))
        .collect();
    let mut seen = vec![false; available];
    loop {
        match catch(|| stream.next()) {
            Ok(Some(value)) => match index.get(&value.v) {
                Some(&i) if !seen[i] => {
                    seen[i] = true;
                    sum = sum.wrapping_add(fold_term(node, i, value.v));
                    dispose_val(ctx, id, i, value);
                }
                Some(&i) => ctx.fail(format!("#{id} (ImapUnordered) item {i} came twice")),
                None => ctx.fail(format!(
                    "#{id} (ImapUnordered) returned {:#x}, no item's value",
                    value.v
                )),
            },
            Ok(None) if seen.iter().all(|&s| s) && node.input_fault.is_none() => return Ok(sum),
            Ok(None) => ctx.fail(format!(
                "#{id} (ImapUnordered) ended after {} of {available} items",
                seen.iter().filter(|&&s| s).count()
            )),
            Err(raised) => {
                bump(&ctx.tally.early_drops);
                return Err(raised);
            }
        }
    }
}
