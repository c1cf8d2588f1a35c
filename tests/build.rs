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
use std::time::{Duration, Instant};
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

/// The size of the calling thread's stack, as the thread library reports it
/// (`pthread_getattr_np`: the size the thread was created with).
fn current_stack_size() -> usize {
    // SAFETY: `attr` is initialized by `pthread_getattr_np` before it is
    // read, and destroyed once; the out-pointers are valid.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        assert_eq!(rc, 0, "pthread_attr_getstack failed");
        size
    }
}

/// Recurses until the stack below `top` (an address in the caller's frame)
/// holds at least `bytes`; returns the lowest stack address reached (the
/// stack grows down). Each frame holds over 4 KiB.
fn use_stack(top: usize, bytes: usize) -> usize {
    let pad = std::hint::black_box([0u8; 4096]);
    let here = pad.as_ptr() as usize;
    if top - here >= bytes {
        return here;
    }
    let lowest = use_stack(top, bytes);
    // Use `pad` after the call, so that the frame stays (no tail call).
    std::hint::black_box(&pad);
    lowest
}

/// Std's default stack for a spawned thread.
const DEFAULT_STACK: usize = 2 << 20;

/// Every worker gets the name its index asks for, and the stack size asked
/// for: the thread library reports at least 16 MiB for each worker (a
/// default thread has 2 MiB), and a recursion that fills 8 MiB of stack
/// then runs on the workers, which would overflow a default stack. The
/// sizes are checked first, so that a pool that ignored `stack_size` fails
/// that assertion instead of crashing the test binary in the recursion. A
/// size below the default (256 KiB) applies as well.
#[test]
fn thread_names_and_stack_size_are_applied() {
    watchdog(WATCHDOG_SECS, || {
        const BIG: usize = 16 << 20;
        let prefix = unique_prefix("nm");
        let name = prefix.clone();
        let pool = Pool::builder()
            .threads(3)
            .thread_name(move |i| format!("{name}{i}"))
            .stack_size(BIG)
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
        // One item per worker (they wait for each other), so that each of
        // the three stacks is measured. The call runs inside `apply`, so
        // that its caller is a worker too (an outside caller takes part in
        // its call, on its own stack).
        let arrived = AtomicUsize::new(0);
        let sizes = pool.apply(|| {
            pool.options().chunk_size(1).map(&[(); 3], |_| {
                arrived.fetch_add(1, Ordering::SeqCst);
                let start = Instant::now();
                while arrived.load(Ordering::SeqCst) < 3
                    && start.elapsed() < Duration::from_secs(20)
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                (stealpool::current_thread_index(), current_stack_size())
            })
        });
        let mut workers: Vec<Option<usize>> = sizes.iter().map(|&(w, _)| w).collect();
        workers.sort();
        workers.dedup();
        assert_eq!(
            workers,
            [Some(0), Some(1), Some(2)],
            "the items did not run on the 3 workers: {sizes:?}"
        );
        for &(worker, size) in &sizes {
            assert!(
                size >= BIG,
                "worker {worker:?} has a stack of {size} bytes, not the {BIG} asked for"
            );
        }
        // And the stacks are usable to that depth: a recursion that fills
        // four times the default stack (and would overflow a default one)
        // runs on the workers. (Only reached once the sizes are checked.)
        pool.apply(|| {
            pool.options().chunk_size(1).map(&[(); 6], |_| {
                assert!(stealpool::current_thread_index().is_some());
                let top = std::hint::black_box(0u8);
                let top = &top as *const u8 as usize;
                use_stack(top, 4 * DEFAULT_STACK);
            })
        });
        drop(pool);
        let left = threads_left_after(&prefix, GONE_WITHIN);
        assert!(left.is_empty(), "threads left after drop: {left:?}");

        // A stack smaller than the default applies too.
        const SMALL: usize = 256 << 10;
        let pool = Pool::builder()
            .threads(2)
            .stack_size(SMALL)
            .build()
            .unwrap();
        let sizes = pool.apply(|| {
            pool.options()
                .chunk_size(1)
                .map(&[(); 8], |_| current_stack_size())
        });
        for size in sizes {
            assert!(
                (SMALL..DEFAULT_STACK).contains(&size),
                "a worker asked for {SMALL} bytes of stack has {size}"
            );
        }
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
