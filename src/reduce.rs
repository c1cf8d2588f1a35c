//! `Pool::map_reduce`: a parallel map-reduce whose result is bitwise the same
//! on every thread count and in every run.
//!
//! The combination order depends on the input's length only:
//!
//! 1. The input is cut into at most [`MAX_REDUCE_BLOCKS`] blocks of `block =
//!    ceil(len / MAX_REDUCE_BLOCKS)` items (the last may be shorter).
//! 2. Each block is folded left to right by one thread: `f` of its first item,
//!    then `acc = combine(acc, f(item))` for each next item.
//! 3. The blocks' partials are combined in a fixed binary tree: at each level
//!    every even-numbered partial is combined with the one after it (`p0 ⊕
//!    p1`, `p2 ⊕ p3`, …; an odd one out moves up unchanged), until one is
//!    left.
//!
//! Who runs a block, and when, changes nothing: a block is folded by one
//! thread in a fixed order, and the tree's shape is a function of the block
//! count. So a floating-point sum gives the same bits whatever the pool's
//! size and the scheduling (it still differs from a plain left fold, which
//! is another order).
//!
//! Step 2 runs on the `map` machinery over the block indices (adaptive
//! chunking, panics re-raised after every chunk stopped, the partials of a
//! failed call dropped once each); step 3 runs on the caller.

use crate::collect::{collect, Stop};
use crate::control::{Cancelled, Watch};
use crate::drive::Chunking;
use crate::input::{drop_untaken, Input, Source, Taking};
use crate::panic::{discard, drop_each};
use crate::registry::Registry;
use crate::sync::{into_inner, Arc, Mutex, Ordering};
use crate::Pool;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// The most blocks [`Pool::map_reduce`] cuts an input into. It bounds the
/// partial results kept (and the tree combined on the caller), and leaves
/// the adaptive chunking enough blocks to balance over many threads. Part of
/// the determinism rule: the blocks of an input of `len` items hold
/// `ceil(len / MAX_REDUCE_BLOCKS)` items each.
///
/// ```
/// // 10,000 items: blocks of 3 items (the last of 1), 3,334 blocks.
/// assert_eq!(10_000usize.div_ceil(stealpool::MAX_REDUCE_BLOCKS), 3);
/// ```
pub const MAX_REDUCE_BLOCKS: usize = 4096;

/// The first item of block `index` (`len` for the blocks past the end) of
/// an input of `len` items cut into blocks of `block` items. (`index * block`
/// may overflow past the last block: an input of `usize::MAX` zero-sized
/// items has 4096 blocks of 2^52.)
fn block_start(index: usize, block: usize, len: usize) -> usize {
    index.checked_mul(block).map_or(len, |start| start.min(len))
}

/// The items of blocks `blocks` of an input of `len` items cut into blocks
/// of `block` items.
fn block_items(blocks: Range<usize>, block: usize, len: usize) -> Range<usize> {
    block_start(blocks.start, block, len)..block_start(blocks.end, block, len)
}

/// Combines `slots` in the fixed tree (see the module documentation), in
/// place: on return `slots[0]` holds the result and every other slot is
/// empty. If `combine` panics, the partials it was given are dropped by the
/// unwinding and the others stay in their slots.
fn combine_tree<R>(slots: &mut [Option<R>], combine: &impl Fn(R, R) -> R) {
    let mut stride = 1;
    while stride < slots.len() {
        let mut left = 0;
        while left + stride < slots.len() {
            // Every slot at a multiple of the stride is full here: the
            // level below left its results exactly there.
            match (slots[left].take(), slots[left + stride].take()) {
                (Some(a), Some(b)) => slots[left] = Some(combine(a, b)),
                _ => unreachable!("an empty slot in the combine tree"),
            }
            left += 2 * stride;
        }
        stride *= 2;
    }
}

/// `map_reduce` over `source` (see the module documentation), cut into
/// chunks of blocks by `chunking`, stopped when `watch` says so (looked at
/// before every item).
pub(crate) fn map_reduce<S, W, R, F, I, C>(
    registry: &Arc<Registry>,
    source: S,
    chunking: Chunking,
    watch: &W,
    f: F,
    identity: I,
    combine: C,
) -> Result<R, Cancelled>
where
    S: Source,
    W: Watch,
    R: Send,
    F: Fn(S::Item) -> R + Sync,
    I: FnOnce() -> R,
    C: Fn(R, R) -> R + Sync,
{
    let len = source.len();
    if len == 0 {
        return Ok(identity());
    }
    let block = len.div_ceil(MAX_REDUCE_BLOCKS);
    // The items of the blocks that stopped part way (owned inputs only).
    let suffixes: Mutex<Vec<Range<usize>>> = Mutex::new(Vec::new());
    let fold = |(): &mut (), index: usize| -> Result<R, Stopped> {
        let items = block_items(index..index + 1, block, len);
        // SAFETY: `collect` runs each block once, and the blocks' item
        // ranges are disjoint and within the input.
        let mut items = unsafe { Taking::new(&source, items, &suffixes) };
        if !W::WATCHED {
            // A block is never empty: `index < ceil(len / block)`.
            let first = items.next().map(&f);
            let mut acc = first.unwrap_or_else(|| unreachable!("an empty block"));
            for item in &mut items {
                acc = combine(acc, f(item));
            }
            return Ok(acc);
        }
        // The same fold, looking at the watch before each item.
        let counter = watch.counter();
        let signal = watch.signal();
        let mut acc = None;
        let mut done = 0;
        let stopped = loop {
            if signal.raised() {
                break true;
            }
            let Some(item) = items.next() else {
                break false;
            };
            let value = f(item);
            acc = Some(match acc.take() {
                None => value,
                Some(acc) => combine(acc, value),
            });
            done += 1;
            if let Some(counter) = counter {
                // Relaxed: a count for display.
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        watch.finished(done);
        match acc {
            Some(acc) if !stopped => Ok(acc),
            // A partial fold is dropped here, as a failed block's results
            // are: once, outside any unwinding.
            _ => Err(Stopped),
        }
    };
    let blocks = len.div_ceil(block);
    let partials = match collect(registry, blocks, chunking, &(), || (), || &fold) {
        Ok(partials) => partials,
        Err(mut failure) => {
            let never_started = failure.untaken.drain(..);
            let untaken = into_inner(suffixes)
                .into_iter()
                .chain(never_started.map(|blocks| block_items(blocks, block, len)));
            // SAFETY: the blocks that never started took no item, and a
            // block that stopped recorded the items it did not take.
            let drop_panic = unsafe { drop_untaken(&source, untaken) };
            failure.dropped(drop_panic);
            // A block stops only when the watch says so (`collect` itself
            // watches nothing).
            return match failure.raise() {
                Stop::Error(Stopped) | Stop::Cancelled(_) => Err(watch.cancelled()),
            };
        }
    };
    let mut slots: Vec<Option<R>> = partials.into_iter().map(Some).collect();
    // The partials live in `slots`, outside the closure, so that a panic
    // of `combine` unwinds through none of them: they are dropped below,
    // one at a time, and a `Drop` that panics then cannot abort the
    // process by panicking during the unwinding.
    let combined = catch_unwind(AssertUnwindSafe(|| combine_tree(&mut slots, &combine)));
    match combined {
        Ok(()) => match slots.first_mut().and_then(Option::take) {
            Some(result) => Ok(result),
            None => unreachable!("the tree left no result"),
        },
        Err(panic) => {
            if let Some(extra) = drop_each(slots.into_iter().flatten()) {
                discard(extra);
            }
            resume_unwind(panic);
        }
    }
}

/// A block's fold stopped by the watch.
struct Stopped;

impl Pool {
    /// Maps every item of `input` through `f` and combines the results with
    /// `combine`, in parallel, without collecting them: a sum, a maximum, a
    /// histogram merge. `identity` gives the result of an empty input.
    ///
    /// **The result is the same, bit for bit, on every thread count and in
    /// every run**: the order of combination depends on `input.len()` only.
    /// The input is cut into at most [`MAX_REDUCE_BLOCKS`] equal blocks
    /// (`ceil(len / MAX_REDUCE_BLOCKS)` items each, the last shorter), each folded
    /// left to right on one thread, and the blocks' results are combined in a
    /// fixed binary tree (block 0 with 1, 2 with 3, …, then the pairs, and
    /// so on). A floating-point sum therefore does not change with the pool
    /// or the scheduling, as it does with a per-thread fold. `combine` must
    /// be associative for the result to equal a sequential fold's (for
    /// floating point, to within rounding); it is never given `identity()`.
    ///
    /// The call borrows `input` and the closures and runs like
    /// [`map`](Self::map): the caller starts alone, workers join a call that
    /// runs long enough.
    ///
    /// # Panics
    ///
    /// If `f` or `combine` panics, the panic is re-raised here with its
    /// original payload once every chunk has stopped; the partial results
    /// already made are each dropped once. The pool stays usable.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let input: Vec<f64> = (1..=1000).map(|i| 1.0 / i as f64).collect();
    /// let sum = pool.map_reduce(&input, |x| x * x, || 0.0, |a, b| a + b);
    /// // The same bits on any pool.
    /// let one = stealpool::Pool::new(1)?;
    /// assert_eq!(sum.to_bits(), one.map_reduce(&input, |x| x * x, || 0.0, |a, b| a + b).to_bits());
    /// assert!((sum - 1.6439345666815598).abs() < 1e-12);
    ///
    /// let longest = pool.map_reduce(&["a", "bbb", "cc"], |s| s.len(), || 0, usize::max);
    /// assert_eq!(longest, 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    #[doc(alias = "reduce")]
    #[doc(alias = "sum")]
    #[doc(alias = "fold")]
    pub fn map_reduce<In, R, F, I, C>(&self, input: In, f: F, identity: I, combine: C) -> R
    where
        In: Input,
        R: Send,
        F: Fn(In::Item) -> R + Sync,
        I: FnOnce() -> R,
        C: Fn(R, R) -> R + Sync,
    {
        self.options().map_reduce(input, f, identity, combine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree over 0..n with a combine that records its shape.
    fn shape(n: usize) -> String {
        let mut slots: Vec<Option<String>> = (0..n).map(|i| Some(i.to_string())).collect();
        combine_tree(&mut slots, &|a, b| format!("({a} {b})"));
        slots[0].take().unwrap_or_default()
    }

    #[test]
    fn the_tree_pairs_neighbours_level_by_level() {
        assert_eq!(shape(1), "0");
        assert_eq!(shape(2), "(0 1)");
        assert_eq!(shape(3), "((0 1) 2)");
        assert_eq!(shape(5), "(((0 1) (2 3)) 4)");
        assert_eq!(shape(6), "(((0 1) (2 3)) (4 5))");
    }

    #[test]
    fn blocks_cover_the_input_once() {
        for len in [1usize, 2, 4095, 4096, 4097, 10_000, 1_000_003] {
            let block = len.div_ceil(MAX_REDUCE_BLOCKS);
            let count = len.div_ceil(block);
            assert!(count <= MAX_REDUCE_BLOCKS);
            let mut next = 0;
            for index in 0..count {
                let range = block_items(index..index + 1, block, len);
                assert_eq!(range.start, next);
                assert!(!range.is_empty());
                next = range.end;
            }
            assert_eq!(next, len);
            assert_eq!(block_items(0..count, block, len), 0..len);
        }
    }

    /// The blocks of `usize::MAX` zero-sized items: `count * block` is past
    /// `usize::MAX`, and the block ranges still end at `len`.
    #[test]
    fn blocks_of_the_longest_input_do_not_overflow() {
        let len = usize::MAX;
        let block = len.div_ceil(MAX_REDUCE_BLOCKS);
        let count = len.div_ceil(block);
        assert_eq!(block_items(count - 1..count, block, len).end, len);
        assert_eq!(block_items(count..count, block, len), len..len);
    }
}
