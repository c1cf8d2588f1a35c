//! What the public types print: each `Debug` names the type and what it
//! holds, and `Cancelled` displays its count, so that a user's log of a
//! pool, a builder, a stream or a stopped call says something.

use stealpool::{CancelToken, Pool, Progress};

#[test]
fn the_builder_shows_its_settings() {
    let builder = Pool::builder()
        .threads(3)
        .idle_poll(std::time::Duration::from_millis(2));
    let shown = format!("{builder:?}");
    assert!(shown.starts_with("PoolBuilder {"), "{shown}");
    assert!(shown.contains("threads: Some(3)"), "{shown}");
    assert!(shown.contains("idle_poll: 2ms"), "{shown}");
}

#[test]
fn a_pool_shows_its_thread_count() {
    let pool = Pool::new(3).unwrap();
    assert_eq!(format!("{pool:?}"), "Pool { threads: 3, .. }");
}

#[test]
fn a_token_shows_whether_it_was_cancelled() {
    let token = CancelToken::new();
    assert_eq!(format!("{token:?}"), "CancelToken { cancelled: false }");
    token.cancel();
    assert_eq!(format!("{token:?}"), "CancelToken { cancelled: true }");
}

#[test]
fn a_progress_shows_its_counts() {
    let pool = Pool::new(2).unwrap();
    let progress = Progress::new();
    pool.options().progress(&progress).for_each(0..5, |_| {});
    assert_eq!(format!("{progress:?}"), "Progress { done: 5, total: 5 }");
}

#[test]
fn cancelled_displays_how_many_items_finished() {
    let pool = Pool::new(2).unwrap();
    let token = CancelToken::new();
    token.cancel();
    let cancelled = pool
        .options()
        .cancel_on(&token)
        .map(0..10, |i| i)
        .unwrap_err();
    assert_eq!(
        cancelled.to_string(),
        "the call was cancelled after 0 items"
    );
    assert_eq!(format!("{cancelled:?}"), "Cancelled { finished: 0 }");
}

#[test]
fn streams_show_their_window() {
    let pool = Pool::new(2).unwrap();
    let ordered = pool.imap(0..4u32, |x| x).window(3);
    let shown = format!("{ordered:?}");
    assert!(
        shown.starts_with("Imap {") && shown.contains("window: 3"),
        "{shown}"
    );
    let unordered = pool.imap_unordered(0..4u32, |x| x).window(5);
    let shown = format!("{unordered:?}");
    assert!(
        shown.starts_with("ImapUnordered {") && shown.contains("window: 5"),
        "{shown}"
    );
}
