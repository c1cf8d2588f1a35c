//! The process-wide pool and thread identity.

use crate::sync::OnceLock;
use crate::worker_thread::WorkerThread;
use crate::Pool;

/// The environment variable that sizes the [`global`] pool.
const THREADS_VAR: &str = "STEALPOOL_THREADS";

/// The index of the calling thread in its pool, if it is a worker of any
/// stealpool pool; `None` on any other thread.
///
/// ```
/// assert_eq!(stealpool::current_thread_index(), None);
/// let pool = stealpool::Pool::new(2)?;
/// let index = pool.apply(stealpool::current_thread_index);
/// assert!(matches!(index, Some(0 | 1)));
/// # Ok::<(), stealpool::BuildError>(())
/// ```
pub fn current_thread_index() -> Option<usize> {
    WorkerThread::current().map(WorkerThread::index)
}

/// A process-wide pool, built on first use and never dropped.
///
/// Its size is the value of the `STEALPOOL_THREADS` environment variable if
/// set, otherwise the available parallelism.
///
/// # Panics
///
/// On first use, if `STEALPOOL_THREADS` is set to something other than a
/// positive integer, or if the pool's threads cannot be started.
///
/// ```
/// let squares = stealpool::global().map(&[1, 2, 3], |x| x * x);
/// assert_eq!(squares, [1, 4, 9]);
/// ```
pub fn global() -> &'static Pool {
    static GLOBAL: OnceLock<Pool> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let mut builder = Pool::builder().thread_name(|i| format!("stealpool-global-{i}"));
        if let Some(threads) = threads_from_env(std::env::var_os(THREADS_VAR)) {
            builder = builder.threads(threads);
        }
        match builder.build() {
            Ok(pool) => pool,
            Err(err) => panic!("stealpool: cannot build the global pool: {err}"),
        }
    })
}

/// Parses the value of `STEALPOOL_THREADS`.
fn threads_from_env(value: Option<std::ffi::OsString>) -> Option<usize> {
    let value = value?;
    match value.to_str().map(str::trim).map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Some(n),
        _ => panic!("stealpool: {THREADS_VAR} must be a positive integer, not {value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::threads_from_env;

    #[test]
    fn unset_means_default() {
        assert_eq!(threads_from_env(None), None);
    }

    #[test]
    fn positive_integers_are_accepted() {
        assert_eq!(threads_from_env(Some("3".into())), Some(3));
        assert_eq!(threads_from_env(Some(" 16 ".into())), Some(16));
    }

    #[test]
    #[should_panic(expected = "STEALPOOL_THREADS must be a positive integer")]
    fn zero_is_refused_naming_the_variable() {
        threads_from_env(Some("0".into()));
    }

    #[test]
    #[should_panic(expected = "STEALPOOL_THREADS must be a positive integer, not \"many\"")]
    fn garbage_is_refused_naming_the_variable() {
        threads_from_env(Some("many".into()));
    }
}
