//! `Pool::map_reduce`: the same bits on every thread count and run, the
//! documented combination order, order kept for an associative but not
//! commutative combine, the identity for an empty input, and panics of `f`
//! and of `combine` re-raised with every partial result dropped once.

mod common;

use common::{panic_message, quiet_expected_panics, sample_sizes, Counts, Rng, EXPECTED};
use std::panic::{catch_unwind, AssertUnwindSafe};
use stealpool::{Pool, MAX_REDUCE_BLOCKS};

/// `n` values of mixed sign and magnitude (1e-8 to 1e8): a sum whose bits
/// depend on the order of the additions.
fn mixed(n: usize) -> Vec<f64> {
    let mut rng = Rng::new(0xf10a7);
    (0..n)
        .map(|_| {
            let mantissa = rng.below(1 << 52) as f64 / (1u64 << 52) as f64 + 1.0;
            let exponent = rng.below(17) as i32 - 8;
            let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
            sign * mantissa * 10f64.powi(exponent)
        })
        .collect()
}

/// The documented rule, written out sequentially: blocks of
/// `ceil(len / MAX_REDUCE_BLOCKS)` folded left to right, then neighbours
/// combined level by level.
fn by_the_rule(input: &[f64]) -> f64 {
    let block = input.len().div_ceil(MAX_REDUCE_BLOCKS);
    let mut level: Vec<f64> = input
        .chunks(block)
        .map(|chunk| chunk[1..].iter().fold(chunk[0], |acc, x| acc + x))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| pair.iter().skip(1).fold(pair[0], |acc, x| acc + x))
            .collect();
    }
    level[0]
}

/// A sum that depends on the thread count: one left fold per thread over
/// contiguous pieces, then the pieces in order (what a per-thread
/// accumulator gives at best).
fn per_thread_fold(input: &[f64], threads: usize) -> f64 {
    input
        .chunks(input.len().div_ceil(threads))
        .map(|piece| piece.iter().fold(0.0, |acc, x| acc + x))
        .fold(0.0, |acc, x| acc + x)
}

#[test]
fn an_f64_sum_has_the_same_bits_on_every_thread_count_and_run() {
    let input = mixed(1_000_000);
    let expected = by_the_rule(&input);
    // The data is order-sensitive, so the checks below can fail: another
    // order (a plain left fold, or per-thread folds) gives other bits.
    let left_fold = input.iter().fold(0.0, |acc, x| acc + x);
    assert_ne!(left_fold.to_bits(), expected.to_bits());
    assert_ne!(
        per_thread_fold(&input, 2).to_bits(),
        per_thread_fold(&input, 3).to_bits(),
        "per-thread folds of 2 and 3 threads agree: the data does not show order"
    );
    for (threads, runs) in [(1, 3), (2, 100), (3, 10), (4, 10), (8, 10)] {
        let pool = Pool::new(threads).unwrap();
        for run in 0..runs {
            let sum = pool.map_reduce(&input, |&x| x, || 0.0, |a, b| a + b);
            assert_eq!(
                sum.to_bits(),
                expected.to_bits(),
                "{threads} threads, run {run}: {sum:e} against the rule's {expected:e}"
            );
        }
    }
}

#[test]
fn results_combine_in_input_order() {
    // Concatenation is associative but not commutative: the result lists
    // the items in input order only if every combine keeps left before right.
    let pool = Pool::new(3).unwrap();
    for len in sample_sizes() {
        let input: Vec<usize> = (0..len).collect();
        let all = pool.map_reduce(
            &input,
            |&i| vec![i],
            Vec::new,
            |mut a, b| {
                a.extend(b);
                a
            },
        );
        assert_eq!(all, input, "len {len}");
    }
}

#[test]
fn sums_match_the_loop() {
    let pool = Pool::new(2).unwrap();
    for len in sample_sizes()
        .into_iter()
        .chain([MAX_REDUCE_BLOCKS + 1, 100_003])
    {
        let input: Vec<u64> = (0..len as u64).collect();
        let expected = input.iter().fold(0u64, |acc, x| acc.wrapping_add(x * x));
        let sum = pool.map_reduce(&input, |x| x * x, || 0, u64::wrapping_add);
        assert_eq!(sum, expected, "len {len}");
    }
}

#[test]
fn an_empty_input_gives_the_identity_and_calls_nothing() {
    let pool = Pool::new(2).unwrap();
    let before = pool.stats();
    let result = pool.map_reduce(
        &[] as &[u32],
        |_| -> u32 { panic!("f called on an empty input") },
        || 42,
        |_, _| panic!("combine called on an empty input"),
    );
    assert_eq!(result, 42);
    assert_eq!(pool.stats().jobs_run, before.jobs_run);
}

#[test]
fn a_panic_of_f_is_reraised_and_every_partial_dropped_once() {
    quiet_expected_panics();
    let pool = Pool::new(3).unwrap();
    for len in [1usize, 5, 4096, 20_000] {
        for at in [0, len / 2, len - 1] {
            let counts = Counts::default();
            let input: Vec<usize> = (0..len).collect();
            let result = catch_unwind(AssertUnwindSafe(|| {
                pool.map_reduce(
                    &input,
                    |&i| {
                        if i == at {
                            panic!("{EXPECTED}: f fails at {i}");
                        }
                        counts.make(i)
                    },
                    || counts.make(0),
                    |a, b| {
                        let sum = a.value + b.value;
                        drop((a, b));
                        counts.make(sum)
                    },
                )
            }));
            let payload = result.expect_err("the panic of f reached the caller");
            assert_eq!(
                panic_message(payload.as_ref()),
                Some(format!("{EXPECTED}: f fails at {at}").as_str())
            );
            assert_eq!(
                counts.created(),
                counts.dropped(),
                "len {len}, panic at {at}: {} made, {} dropped",
                counts.created(),
                counts.dropped()
            );
        }
    }
}

#[test]
fn a_panic_of_combine_is_reraised_and_every_partial_dropped_once() {
    quiet_expected_panics();
    let pool = Pool::new(3).unwrap();
    // len 3: blocks of 1 item, so the panicking combine is in the tree on
    // the caller; len 5,000 and 100,000: blocks of 2 and 25 items, and the
    // value is the second item of its block, so the panic is inside a
    // block's fold.
    for (len, fail_on) in [(3usize, 2usize), (5_000, 4_001), (100_000, 50_001)] {
        let counts = Counts::default();
        let input: Vec<usize> = (0..len).collect();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.map_reduce(
                &input,
                |&i| counts.make(i),
                || counts.make(0),
                |a, b| {
                    if b.value == fail_on {
                        panic!("{EXPECTED}: combine fails");
                    }
                    let sum = a.value + b.value;
                    drop((a, b));
                    counts.make(sum)
                },
            )
        }));
        let payload = result.expect_err("the panic of combine reached the caller");
        assert_eq!(
            panic_message(payload.as_ref()),
            Some(format!("{EXPECTED}: combine fails").as_str())
        );
        assert_eq!(
            counts.created(),
            counts.dropped(),
            "len {len}: {} made, {} dropped",
            counts.created(),
            counts.dropped()
        );
    }
}
