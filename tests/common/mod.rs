//! Helpers shared by the integration tests: every test file declares
//! `mod common;`, and uses only part of what is here.

#![allow(dead_code)]

use std::any::Any;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{Pool, Stats};

/// A watchdog's limit: `secs`, or less if `STEALPOOL_WATCHDOG_SECS` says
/// so. The mutation run (`tools/mutants.sh`) sets it below its own timeout,
/// so that a mutant that hangs a test fails that test (and is caught)
/// instead of timing out the whole run.
pub fn watchdog_secs(secs: u64) -> u64 {
    std::env::var("STEALPOOL_WATCHDOG_SECS")
        .ok()
        .and_then(|cap| cap.parse().ok())
        .map_or(secs, |cap: u64| secs.min(cap))
}

/// Runs `f` on a thread of its own and returns what it returns. Panics with a
/// clear message if `f` has not finished after `secs` seconds (see
/// [`watchdog_secs`]; the stuck thread is left behind: the test has failed
/// anyway), and re-raises the panic of `f`, payload and all, if it panicked.
pub fn watchdog<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let secs = watchdog_secs(secs);
    let test = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("watched".to_owned())
        .spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            // The receiver is gone only if the watchdog already fired.
            let _ = tx.send(result);
        })
        .expect("watchdog: could not start the watched thread");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(RecvTimeoutError::Timeout) => panic!(
            "watchdog: `{test}` did not finish within {secs} s: \
             the pool probably deadlocked or hangs"
        ),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("watchdog: the watched thread of `{test}` ended without a result")
        }
    }
}

/// Runs `attempt(0)`, `attempt(1)`, ... `attempts` times, each on a thread
/// of its own under a limit of `secs` seconds: a deadlock that shows only now
/// and then fails with the number of the attempt that hung. `attempts` is
/// read from `STEALPOOL_ISOLATION_ATTEMPTS` when set.
pub fn watchdog_each(
    attempts: usize,
    secs: u64,
    what: &str,
    attempt: impl Fn(usize) + Send + Sync + 'static,
) {
    let secs = watchdog_secs(secs);
    let attempts = std::env::var("STEALPOOL_ISOLATION_ATTEMPTS")
        .ok()
        .map_or(attempts, |n| {
            n.parse()
                .expect("STEALPOOL_ISOLATION_ATTEMPTS must be a number")
        });
    let attempt = Arc::new(attempt);
    for i in 0..attempts {
        let attempt = Arc::clone(&attempt);
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("attempt {i}"))
            .spawn(move || {
                let result = panic::catch_unwind(AssertUnwindSafe(|| attempt(i)));
                let _ = tx.send(result);
            })
            .expect("watchdog_each: could not start an attempt");
        match rx.recv_timeout(Duration::from_secs(secs)) {
            Ok(Ok(())) => {}
            Ok(Err(payload)) => panic::resume_unwind(payload),
            Err(_) => panic!(
                "watchdog: {what}: attempt {i} of {attempts} did not finish within {secs} s: \
                 a thread waiting inside a pool call probably ran other work that needs \
                 the lock it holds"
            ),
        }
    }
}

/// Busy-waits for `duration`: an item expensive enough that helpers pay off.
pub fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Waits (sleeping briefly between looks) until `flag` is set or `timeout`
/// has passed; returns whether it was set.
/// An input of `n` items that counts how many were pulled.
pub fn counted_input(
    n: u64,
    pulls: &Arc<AtomicUsize>,
) -> impl Iterator<Item = u64> + Send + 'static {
    let pulls = Arc::clone(pulls);
    (0..n).inspect(move |_| {
        pulls.fetch_add(1, Ordering::SeqCst);
    })
}

pub fn wait_for(flag: &AtomicBool, timeout: Duration) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) {
        if start.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_micros(100));
    }
    true
}

/// A thread-name prefix unique in this process, short enough that
/// `prefix + index` fits Linux's 15-byte thread names (`comm`). The `#`
/// cannot occur in the test harness's thread names (test paths).
pub fn unique_prefix(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("{tag}#{n}.");
    assert!(prefix.len() <= 11, "thread-name prefix {prefix:?} too long");
    prefix
}

/// Whether the calling thread's name starts with `prefix`.
pub fn current_thread_named(prefix: &str) -> bool {
    thread::current()
        .name()
        .is_some_and(|name| name.starts_with(prefix))
}

/// The threads of this process whose name (`/proc/self/task/<tid>/comm`)
/// starts with `prefix`, as `(tid, name)`.
pub fn threads_named(prefix: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let tasks = fs::read_dir("/proc/self/task").expect("cannot list /proc/self/task");
    for entry in tasks {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and this read.
        if let Ok(comm) = fs::read_to_string(entry.path().join("comm")) {
            let name = comm.trim_end_matches('\n');
            if name.starts_with(prefix) {
                found.push((tid, name.to_owned()));
            }
        }
    }
    found
}

/// The threads named `prefix...`, once there are `count` of them (waiting
/// up to `timeout`). A new thread sets its own name once it runs, so the
/// names of a pool's workers may show up a moment after `build` returns.
pub fn wait_threads_named(prefix: &str, count: usize, timeout: Duration) -> Vec<(u32, String)> {
    let start = Instant::now();
    loop {
        let found = threads_named(prefix);
        if found.len() >= count || start.elapsed() > timeout {
            return found;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The names of the threads named `prefix...` still present after waiting up
/// to `timeout` for them to go.
///
/// A joined thread can stay listed in `/proc/self/task` for a moment:
/// `pthread_join` returns when the kernel clears the thread's tid, a little
/// before the kernel task is released. A leaked thread (still blocked in the
/// pool) stays forever, so a short poll tells the two apart. The poll starts
/// after a short pause, so that a leaked thread that has only just started
/// has had time to set its name.
pub fn threads_left_after(prefix: &str, timeout: Duration) -> Vec<String> {
    thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    loop {
        let left = threads_named(prefix);
        if left.is_empty() || start.elapsed() > timeout {
            return left.into_iter().map(|(_, name)| name).collect();
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The marker in the messages of the panics the tests provoke on purpose.
pub const EXPECTED: &str = "expected test panic";

/// A custom panic payload (for `std::panic::panic_any`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPayload {
    /// Some data to compare after the round trip.
    pub code: u32,
    /// More data, on the heap.
    pub text: String,
}

/// A panic payload that counts its creations and drops.
#[derive(Debug)]
pub struct CountedPayload {
    counts: Arc<Counts>,
}

impl CountedPayload {
    /// A new payload, counted as created in `counts`.
    pub fn new(counts: &Arc<Counts>) -> CountedPayload {
        counts.created.fetch_add(1, Ordering::SeqCst);
        CountedPayload {
            counts: Arc::clone(counts),
        }
    }
}

impl Drop for CountedPayload {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Installs (once per process) a panic hook that keeps quiet about the panics
/// the tests provoke on purpose (messages containing [`EXPECTED`],
/// [`CustomPayload`] and [`CountedPayload`]) and reports every other panic,
/// such as a failed assertion, as the default hook does.
pub fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !is_expected(info.payload()) {
                default(info);
            }
        }));
    });
}

fn is_expected(payload: &(dyn Any + Send)) -> bool {
    payload
        .downcast_ref::<&str>()
        .is_some_and(|s| s.contains(EXPECTED))
        || payload
            .downcast_ref::<String>()
            .is_some_and(|s| s.contains(EXPECTED))
        || payload.is::<CustomPayload>()
        || payload.is::<CountedPayload>()
}

/// The message of a panic payload, if it is a string.
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Creation and drop counts of one kind of tracked value.
#[derive(Debug, Default)]
pub struct Counts {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    /// A new tracked value.
    pub fn make(&self, value: usize) -> Tracked<'_> {
        self.created.fetch_add(1, Ordering::SeqCst);
        Tracked {
            value,
            counts: self,
        }
    }

    /// How many values were made.
    pub fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    /// How many values were dropped.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// A value whose drop is counted (no heap memory, so a double drop shows up
/// in the counts instead of crashing the test binary).
#[derive(Debug)]
pub struct Tracked<'a> {
    /// The payload.
    pub value: usize,
    counts: &'a Counts,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The input sizes the order tests use: edge cases around powers of two, and
/// a few pseudo-random sizes, all in `0..=10_000`.
pub fn sample_sizes() -> Vec<usize> {
    let mut sizes = vec![0, 1, 2, 3, 7, 8, 63, 64, 65, 1000, 4097, 10_000];
    let mut rng = Rng::new(0x5eed_1234);
    sizes.extend((0..6).map(|_| rng.below(10_001) as usize));
    sizes
}

/// The CPU time thread `tid` of this process has used, in nanoseconds:
/// the first field of `/proc/self/task/<tid>/schedstat`, or, where the
/// kernel has no schedstat, [`stat_ns`].
pub fn cpu_ns(tid: u32) -> u64 {
    schedstat_ns(tid).unwrap_or_else(|| stat_ns(tid))
}

fn schedstat_ns(tid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// utime + stime of thread `tid` (fields 14 and 15 of
/// `/proc/self/task/<tid>/stat`, in clock ticks), in nanoseconds.
pub fn stat_ns(tid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .unwrap_or_else(|err| panic!("cannot read the stat of thread {tid}: {err}"));
    // The name, field 2, is in parentheses and may hold spaces: count the
    // fields after its closing parenthesis, which starts at field 3.
    let rest = &stat[stat.rfind(')').expect("malformed stat") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[14 - 3].parse().expect("utime");
    let stime: u64 = fields[15 - 3].parse().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_s = u64::try_from(ticks_per_s).unwrap_or(100).max(1);
    (utime + stime) * 1_000_000_000 / ticks_per_s
}

/// The CPU time the calling thread has used, in nanoseconds, by its CPU-time
/// clock (independent of `/proc`).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A [`CustomPayload`] with this code, to throw with `panic_any`.
pub fn custom(code: u32) -> CustomPayload {
    CustomPayload {
        code,
        text: format!("{EXPECTED} #{code}"),
    }
}

/// The code of a [`CustomPayload`] panic, or a test failure naming what came
/// instead.
pub fn payload_code(payload: &(dyn std::any::Any + Send)) -> u32 {
    match payload.downcast_ref::<CustomPayload>() {
        Some(p) => p.code,
        None => panic!(
            "the panic payload is not the CustomPayload thrown (message: {:?})",
            panic_message(payload)
        ),
    }
}

/// Counts its drops in the shared counter; the second field is a payload.
#[derive(Debug)]
pub struct DropCount(pub Arc<AtomicUsize>, pub u64);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A field of `/proc/self/status` (`VmRSS:`, `VmSize:`, ...), in bytes (the
/// kernel gives kB).
pub fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a size in kB");
    kib * 1024
}

/// How many workers of a pool are blocked now, by its `stats`: a park is
/// counted as a worker blocks and a wake-up as it is woken (a worker leaves
/// its block only when woken), so `parks - wakeups` workers are blocked.
pub fn blocked(stats: &Stats) -> i64 {
    stats.parks as i64 - stats.wakeups as i64
}

/// Waits until every worker of `pool` is blocked, by the stats (see
/// [`blocked`]), and returns the stats then.
pub fn wait_all_parked(pool: &Pool) -> Stats {
    let start = Instant::now();
    loop {
        let stats = pool.stats();
        if blocked(&stats) == pool.threads() as i64 {
            return stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the workers of an idle pool are not all blocked after 20 s, \
             by the stats: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
