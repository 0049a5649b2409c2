//! The feed client's state: fail closed before the first snapshot, a
//! connection must start with a snapshot (the resync), a heartbeat ahead
//! of the view forces a resync, hostile lines end the connection without
//! touching the view, and the reconnect loop backs off and stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use signet_api::proxy::{FeedMessage, ProxyView, UserLock, MAX_FEED_LINE};
use signet_proxy::config::Config;
use signet_proxy::feed::{backoff, read_stream, run, Feed, FeedError, MAX_BACKOFF};
use signet_proxy::{still_allowed, Identity, RefusalCode};

fn view(log_size: u64, locked: &[&str]) -> ProxyView {
    ProxyView {
        log_size,
        time: 1_000,
        user_locks: locked
            .iter()
            .map(|u| UserLock {
                user: (*u).into(),
                reason: "left".into(),
                until: None,
            })
            .collect(),
        ..ProxyView::default()
    }
}

fn stream(messages: &[FeedMessage]) -> Cursor<Vec<u8>> {
    Cursor::new(
        messages
            .iter()
            .map(FeedMessage::to_line)
            .collect::<String>()
            .into_bytes(),
    )
}

fn alice() -> Identity {
    Identity {
        user: "alice".into(),
        device: None,
        not_before: 0,
        not_after: 5_000,
    }
}

#[test]
fn never_synced_refuses_and_a_connection_must_start_with_a_snapshot() {
    let feed = Feed::new();
    let stop = AtomicBool::new(false);
    assert!(feed.view().is_none());
    let r = still_allowed(feed.view().as_deref(), &alice(), 1_000).unwrap_err();
    assert_eq!(r.code, RefusalCode::NotSynced);

    // A heartbeat first is refused and leaves the feed unsynced.
    let err = read_stream(&feed, stream(&[FeedMessage::heartbeat(0, 1_000)]), &stop).unwrap_err();
    assert!(matches!(err, FeedError::NoSnapshot), "{err}");
    assert!(feed.view().is_none());
    assert_eq!(feed.generation(), 0);
}

#[test]
fn snapshots_replace_the_view_and_a_reconnect_resyncs() {
    let feed = Feed::new();
    let stop = AtomicBool::new(false);
    let first = [
        FeedMessage::snapshot(view(3, &[])),
        FeedMessage::heartbeat(3, 1_005),
    ];
    let err = read_stream(&feed, stream(&first), &stop).unwrap_err();
    assert!(matches!(err, FeedError::Closed), "{err}");
    // The stream ended; the last view is kept while reconnecting.
    assert_eq!(feed.view().unwrap().log_size, 3);
    assert_eq!(feed.generation(), 1);
    still_allowed(feed.view().as_deref(), &alice(), 1_000).unwrap();

    // The next connection's snapshot (a lock applied meanwhile) replaces it.
    let second = [FeedMessage::snapshot(view(4, &["alice"]))];
    let _ = read_stream(&feed, stream(&second), &stop);
    assert_eq!(feed.generation(), 2);
    let r = still_allowed(feed.view().as_deref(), &alice(), 1_000).unwrap_err();
    assert_eq!(r.code, RefusalCode::UserLocked);
    assert_eq!(feed.wait_for_change(1, Duration::from_secs(5)), 2);
}

#[test]
fn a_heartbeat_ahead_of_the_view_forces_a_resync() {
    let feed = Feed::new();
    let stop = AtomicBool::new(false);
    let lines = [
        FeedMessage::snapshot(view(3, &[])),
        FeedMessage::heartbeat(4, 1_005),
        FeedMessage::snapshot(view(9, &[])),
    ];
    let err = read_stream(&feed, stream(&lines), &stop).unwrap_err();
    assert!(matches!(err, FeedError::Behind { ca: 4, view: 3 }), "{err}");
    // Nothing after the bad line was applied.
    assert_eq!(feed.view().unwrap().log_size, 3);
}

#[test]
fn hostile_lines_end_the_connection_and_leave_the_view() {
    let feed = Feed::new();
    let stop = AtomicBool::new(false);
    read_stream(&feed, stream(&[FeedMessage::snapshot(view(3, &[]))]), &stop).unwrap_err();
    let good = FeedMessage::snapshot(view(7, &[])).to_line();
    let unknown_version = good.replace("\"v\":1", "\"v\":99");
    assert_ne!(unknown_version, good);
    let truncated = good[..good.len() / 2].to_owned();
    let mut huge = vec![b' '; MAX_FEED_LINE + 10];
    huge.push(b'\n');
    for bad in [
        b"not json\n".to_vec(),
        b"{\"type\":\"snapshot\"}\n".to_vec(),
        unknown_version.into_bytes(),
        truncated.into_bytes(),
        huge,
    ] {
        let err = read_stream(&feed, Cursor::new(bad), &stop).unwrap_err();
        assert!(
            matches!(err, FeedError::Line(_) | FeedError::Closed),
            "{err}"
        );
        assert_eq!(feed.view().unwrap().log_size, 3, "{err}");
        assert_eq!(feed.generation(), 1);
    }
}

#[test]
fn backoff_doubles_up_to_its_bound() {
    assert_eq!(backoff(0), Duration::from_millis(500));
    assert_eq!(backoff(1), Duration::from_secs(1));
    let mut last = Duration::ZERO;
    for attempt in 0..100 {
        let wait = backoff(attempt);
        assert!(wait >= last && wait <= MAX_BACKOFF);
        last = wait;
    }
    assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
}

#[test]
fn the_loop_reports_each_failure_retries_and_stops() {
    let dir = std::env::temp_dir().join(format!("signet-proxy-feed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No CA listens here, and the identity files do not exist.
    let text = format!(
        "listen = \"127.0.0.1:0\"\n[ca]\nurl = \"https://127.0.0.1:9\"\n\
         feed_url = \"https://127.0.0.1:9\"\nroot = {:?}\n[identity]\nkey = {:?}\n\
         certificate = {:?}\n",
        dir.join("root.pem"),
        dir.join("proxy.key"),
        dir.join("proxy.pem"),
    );
    let config = Config::parse(&dir.join("proxy.toml"), &text).unwrap();
    let feed = Feed::new();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handle = {
        let (feed, stop, errors) = (feed.clone(), stop.clone(), errors.clone());
        std::thread::spawn(move || {
            run(&config, &feed, &stop, &|e| {
                errors.lock().unwrap().push(e.to_string())
            })
        })
    };
    while errors.lock().unwrap().len() < 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let errors = errors.lock().unwrap();
    assert!(errors[0].contains("root.pem"), "{errors:?}");
    assert!(feed.view().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
