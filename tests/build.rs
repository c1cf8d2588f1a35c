//! Building pools: thread counts, the errors of `build` and their `Display`
//! and `Error` impls, and what happens to the threads already started when
//! `build` fails (an impossible stack size, a panicking or invalid
//! `thread_name`): none of them is left behind.

mod common;

use common::{
    quiet_expected_panics, threads_left_after, threads_named, unique_prefix, wait_threads_named,
    watchdog, EXPECTED,
};
use std::error::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stealpool::{BuildError, Pool};

/// How long a joined thread may take to leave `/proc/self/task` (see
/// `common::threads_left_after`).
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// A build that fails must not hang joining its threads.
const WATCHDOG_SECS: u64 = 60;

#[test]
fn pool_and_builder_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool>();
    send_sync::<stealpool::Stats>();
    fn send<T: Send>() {}
    send::<stealpool::PoolBuilder>();
    send::<BuildError>();
    // And the pool works through a shared reference from another thread.
    let pool = Pool::new(2).unwrap();
    let out = std::thread::scope(|s| s.spawn(|| pool.map(&[1, 2], |x| x * 10)).join());
    assert_eq!(out.unwrap(), [10, 20]);
}

#[test]
fn zero_threads_is_an_error() {
    let err = Pool::new(0).expect_err("a pool of 0 threads was built");
    assert!(matches!(err, BuildError::ZeroThreads), "{err:?}");
    assert!(!err.to_string().is_empty());
    assert!(err.source().is_none());

    let err = Pool::builder().threads(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroThreads), "{err:?}");
}

#[test]
fn build_error_is_a_std_error() {
    fn as_std_error(err: BuildError) -> Box<dyn Error + Send + Sync> {
        Box::new(err)
    }
    let boxed = as_std_error(Pool::new(0).unwrap_err());
    assert!(!boxed.to_string().is_empty());
    assert!(!format!("{boxed:?}").is_empty());

    let spawn = BuildError::Spawn(std::io::Error::other("no threads today"));
    let text = spawn.to_string();
    assert!(!text.is_empty());
    assert!(text.contains("no threads today"), "{text}");
    let source = spawn
        .source()
        .expect("Spawn has the io::Error as its source");
    assert_eq!(source.to_string(), "no threads today");

    let too_many = BuildError::TooManyThreads { max: 7 };
    assert!(!too_many.to_string().is_empty());
    // The three variants say different things.
    let texts = [
        BuildError::ZeroThreads.to_string(),
        too_many.to_string(),
        spawn.to_string(),
    ];
    assert_ne!(texts[0], texts[1]);
    assert_ne!(texts[1], texts[2]);
    assert_ne!(texts[0], texts[2]);
}

#[test]
fn too_many_threads_is_an_error() {
    let prefix = unique_prefix("big");
    let name = prefix.clone();
    let err = Pool::builder()
        .threads(usize::MAX)
        .thread_name(move |i| format!("{name}{i}"))
        .build()
        .expect_err("a pool of usize::MAX threads was built");
    match err {
        BuildError::TooManyThreads { max } => {
            assert!(max >= 1);
            assert!(max < usize::MAX);
            assert!(err.to_string().contains(&max.to_string()), "{err}");
        }
        other => panic!("expected TooManyThreads, got {other:?}"),
    }
    assert!(threads_named(&prefix).is_empty());
}

#[test]
fn thread_counts_are_what_was_asked() {
    for n in [1, 2, 3, 4, 8] {
        let pool = Pool::new(n).unwrap();
        assert_eq!(pool.threads(), n);
        let pool = Pool::builder().threads(n).build().unwrap();
        assert_eq!(pool.threads(), n);
    }
    let pool = Pool::builder().threads(2).build().unwrap();
    assert_eq!(pool.threads(), 2);
    assert_eq!(pool.map(&[1, 2, 3], |x| x + 1), [2, 3, 4]);
}

#[test]
fn default_builder_uses_available_parallelism() {
    let expected = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = Pool::builder().build().unwrap();
    assert_eq!(pool.threads(), expected);
    let input: Vec<u32> = (0..1000).collect();
    let out = pool.map(&input, |x| x * 2);
    assert!(out.iter().enumerate().all(|(i, &y)| y == 2 * i as u32));
}

/// Every worker gets the name its index asks for, and a working stack size.
#[test]
fn thread_names_and_stack_size_are_applied() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("nm");
        let name = prefix.clone();
        let pool = Pool::builder()
            .threads(3)
            .thread_name(move |i| format!("{name}{i}"))
            .stack_size(4 << 20)
            .build()
            .unwrap();
        let mut names: Vec<String> = wait_threads_named(&prefix, 3, GONE_WITHIN)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                format!("{prefix}0"),
                format!("{prefix}1"),
                format!("{prefix}2")
            ]
        );
        // A deep recursion that needs more than a tiny stack runs fine on them.
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 512]);
            if n == 0 {
                u32::from(pad[0])
            } else {
                depth(n - 1) + 1
            }
        }
        let input = vec![1000u32; 64];
        let out = pool.map_chunked(&input, 1, |&n| depth(n));
        assert!(out.iter().all(|&d| d == 1000));
        drop(pool);
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(left.is_empty(), "threads left after drop: {left:?}");
    });
}

/// A stack no system can provide makes `build` fail with `Spawn`.
///
/// 1 << 62 bytes (4 EiB): std passes it to `pthread_attr_setstacksize`, which
/// glibc accepts (it only checks the minimum; the value is page-aligned, so
/// std's round-up fallback does not apply), and `pthread_create` then has to
/// `mmap` the stack. x86_64 user space spans 2^47 bytes (2^56 with 5-level
/// paging), so that mapping fails with ENOMEM whatever the overcommit policy,
/// and `pthread_create` returns an error that std hands back as an
/// `io::Error`. The first worker already fails, so no thread is ever started;
/// the joining of started threads on failure is covered by the `thread_name`
/// tests below.
#[test]
fn impossible_stack_size_is_a_spawn_error() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("stk");
        let name = prefix.clone();
        let names_asked = Arc::new(AtomicUsize::new(0));
        let asked = Arc::clone(&names_asked);
        let result = Pool::builder()
            .threads(4)
            .thread_name(move |i| {
                asked.fetch_add(1, Ordering::SeqCst);
                format!("{name}{i}")
            })
            .stack_size(1 << 62)
            .build();
        let err = result.expect_err("a pool with 4 EiB stacks was built");
        match &err {
            BuildError::Spawn(io) => {
                assert!(!io.to_string().is_empty());
                assert!(err.source().is_some(), "Spawn has no source");
            }
            other => panic!("expected BuildError::Spawn, got {other:?}"),
        }
        assert!(!err.to_string().is_empty());
        assert!(
            names_asked.load(Ordering::SeqCst) >= 1,
            "build failed before trying to start a thread"
        );
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(
            left.is_empty(),
            "threads left after a failed build: {left:?}"
        );

        // Building still works afterwards.
        let pool = Pool::new(2).unwrap();
        assert_eq!(pool.map(&[3, 4], |x| x * x), [9, 16]);
    });
}

/// A `thread_name` callback that panics for index 2 of 4: the panic leaves
/// `build` with its payload, after the two workers already started were
/// stopped and joined.
#[test]
fn panicking_thread_name_joins_the_started_threads() {
    watchdog(WATCHDOG_SECS, || {
        quiet_expected_panics();
        let prefix = unique_prefix("tn");
        let name = prefix.clone();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            Pool::builder()
                .threads(4)
                .thread_name(move |i| {
                    if i == 2 {
                        panic!("{EXPECTED}: no name for worker 2");
                    }
                    format!("{name}{i}")
                })
                .build()
        }));
        let payload = match caught {
            Ok(Ok(_)) => panic!("build succeeded although thread_name panicked"),
            Ok(Err(err)) => panic!("build returned {err:?} instead of panicking"),
            Err(payload) => payload,
        };
        assert_eq!(
            common::panic_message(&*payload),
            Some(format!("{EXPECTED}: no name for worker 2").as_str())
        );
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(
            left.is_empty(),
            "workers started before the panic are still alive: {left:?}"
        );
    });
}

/// A name with a NUL byte for index 2 of 4: `build` panics (as documented),
/// after joining the two workers already started.
#[test]
fn nul_in_thread_name_joins_the_started_threads() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("nul");
        let name = prefix.clone();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            Pool::builder()
                .threads(4)
                .thread_name(move |i| {
                    if i == 2 {
                        format!("{name}\0{i}")
                    } else {
                        format!("{name}{i}")
                    }
                })
                .build()
        }));
        assert!(
            caught.is_err(),
            "build did not panic on a thread name with a NUL byte"
        );
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(
            left.is_empty(),
            "workers started before the panic are still alive: {left:?}"
        );
    });
}

/// The workers of a failed build were really started (so the checks above
/// look at real threads): the same builder without the failure has them.
#[test]
fn named_threads_are_visible_while_the_pool_lives() {
    watchdog(WATCHDOG_SECS, || {
        let prefix = unique_prefix("vis");
        let name = prefix.clone();
        let pool = Pool::builder()
            .threads(4)
            .thread_name(move |i| format!("{name}{i}"))
            .build()
            .unwrap();
        assert_eq!(wait_threads_named(&prefix, 4, GONE_WITHIN).len(), 4);
        drop(pool);
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(left.is_empty(), "threads left after drop: {left:?}");
    });
}
