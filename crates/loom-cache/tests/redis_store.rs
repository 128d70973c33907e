//! RedisCacheStore on a real redis-server: entries with ttl, deletes by namespace and model,
//! the sync stream between two instances (live and replayed), Redis down or frozen, and
//! malformed stream entries.
//!
//! The server is `TEST_REDIS_SERVER` or `redis-server` on PATH (`.ci/run` installs it); like
//! the repository's other Redis tests, a missing binary fails the tests rather than skipping.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use loom_cache::redis_store::{
    EntryId, IndexEvent, MAX_VALUE_BYTES, NewEntry, RedisCacheStore, RedisStoreError,
};
use loom_test_support::RedisServer;
use redis::Commands;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_millis(300);
const HOUR: Duration = Duration::from_secs(3600);
/// Only keeps a hang from stalling the suite: never a measure of speed.
const DEADLINE: Duration = Duration::from_secs(10);

fn store(server: &RedisServer) -> Arc<RedisCacheStore> {
    Arc::new(RedisCacheStore::new(&server.url(), "loom", TIMEOUT).unwrap())
}

fn entry<'a>(namespace: &'a str, model: &'a str, id: &'a EntryId, value: &'a [u8]) -> NewEntry<'a> {
    NewEntry { namespace, model, id, value, ttl: HOUR, semantic: None }
}

/// A follower of `store` sending its events to the returned channel; abort it when done.
fn follower(store: &Arc<RedisCacheStore>) -> (JoinHandle<()>, UnboundedReceiver<IndexEvent>) {
    let (sender, receiver) = unbounded_channel();
    let store = Arc::clone(store);
    let task = tokio::spawn(async move {
        store
            .follow(move |event| {
                let _ = sender.send(event);
            })
            .await;
    });
    (task, receiver)
}

async fn next_event(events: &mut UnboundedReceiver<IndexEvent>) -> IndexEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event before the deadline")
        .expect("the follower is running")
}

/// Asserts `event` is the insert of `id` with `vector`, expiring `ttl` after a moment in
/// `[before, after]` (to the millisecond the stream keeps).
fn assert_insert(
    event: IndexEvent,
    id: EntryId,
    vector: &[f32],
    ttl: Duration,
    before: SystemTime,
    after: SystemTime,
) {
    match event {
        IndexEvent::Insert { namespace, model, id: got, partition, vector: got_vector, expires_at } => {
            assert_eq!(
                (namespace.as_str(), model.as_str(), got, partition),
                ("team-a", "gpt-4o", id, [9; 32])
            );
            assert_eq!(got_vector, vector);
            let earliest = before + ttl - Duration::from_millis(1);
            assert!(expires_at >= earliest && expires_at <= after + ttl, "{expires_at:?}");
        }
        other => panic!("not an insert: {other:?}"),
    }
}

/// A semantic put of `id` in team-a / gpt-4o, partition [9; 32].
async fn put_semantic(
    store: &RedisCacheStore,
    id: &EntryId,
    vector: &[f32],
    ttl: Duration,
) -> Result<(), RedisStoreError> {
    store
        .put(NewEntry {
            namespace: "team-a",
            model: "gpt-4o",
            id,
            value: b"answer",
            ttl,
            semantic: Some(([9; 32], vector)),
        })
        .await
}

#[tokio::test]
async fn put_then_get_gives_the_value_back_under_its_exact_key_only() {
    let server = RedisServer::start();
    let store = store(&server);
    let value = b"{\"choices\":[]}\x00\xff binary too";
    store.put(entry("team-a", "gpt-4o", &[1; 32], value)).await.unwrap();

    assert_eq!(store.get("team-a", "gpt-4o", &[1; 32]).await.unwrap(), Some(value.to_vec()));
    assert_eq!(store.get("team-a", "gpt-4o", &[2; 32]).await.unwrap(), None);
    assert_eq!(store.get("team-b", "gpt-4o", &[1; 32]).await.unwrap(), None);
    assert_eq!(store.get("team-a", "gpt-4o-mini", &[1; 32]).await.unwrap(), None);
    // The key layout of the module docs; an exact entry writes no event.
    let key = format!("{{loom}}:cache:e:7465616d2d61:6770742d346f:{}", "01".repeat(32));
    let mut redis = server.connection();
    let stored: Vec<u8> = redis.get(&key).unwrap();
    assert_eq!(stored, [&[1u8][..], value].concat());
    let events: usize = redis::cmd("XLEN").arg("{loom}:cache:log").query(&mut redis).unwrap();
    assert_eq!(events, 0);
    assert_eq!(store.failures(), 0);
}

#[tokio::test]
async fn entries_expire_with_their_ttl() {
    let server = RedisServer::start();
    let store = store(&server);
    let ttl = Duration::from_millis(1500);
    store.put(NewEntry { ttl, ..entry("team-a", "gpt-4o", &[1; 32], b"soon gone") }).await.unwrap();
    let key = format!("{{loom}}:cache:e:7465616d2d61:6770742d346f:{}", "01".repeat(32));
    let pttl: i64 = server.connection().pttl(&key).unwrap();
    assert!(pttl > 0 && pttl <= 1500, "{pttl}");

    let started = std::time::Instant::now();
    while store.get("team-a", "gpt-4o", &[1; 32]).await.unwrap().is_some() {
        assert!(started.elapsed() < DEADLINE, "the entry never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A zero ttl stores nothing.
    store.put(NewEntry { ttl: Duration::ZERO, ..entry("team-a", "gpt-4o", &[2; 32], b"x") }).await.unwrap();
    assert_eq!(store.get("team-a", "gpt-4o", &[2; 32]).await.unwrap(), None);
}

#[tokio::test]
async fn deletes_select_by_namespace_by_model_or_all_and_names_cannot_widen_them() {
    let server = RedisServer::start();
    let store = store(&server);
    let entries = [("a", "m"), ("a", "n"), ("b", "m"), ("b", "n"), ("b", "m*"), ("b", "*"), ("c:m", "m:")];
    for (index, (namespace, model)) in entries.iter().enumerate() {
        let id = [index as u8; 32];
        store.put(entry(namespace, model, &id, b"v")).await.unwrap();
    }
    let present = || async {
        let mut present = Vec::new();
        for (index, (namespace, model)) in entries.iter().enumerate() {
            if store.get(namespace, model, &[index as u8; 32]).await.unwrap().is_some() {
                present.push((*namespace, *model));
            }
        }
        present
    };

    assert_eq!(store.delete(Some("a"), None).await.unwrap(), 2);
    assert_eq!(present().await, [("b", "m"), ("b", "n"), ("b", "m*"), ("b", "*"), ("c:m", "m:")]);
    assert_eq!(store.delete(None, Some("*")).await.unwrap(), 1, "a model named * is only itself");
    assert_eq!(store.delete(None, Some("m")).await.unwrap(), 1);
    assert_eq!(present().await, [("b", "n"), ("b", "m*"), ("c:m", "m:")]);
    assert_eq!(store.delete(Some("b"), Some("n")).await.unwrap(), 1);
    assert_eq!(store.delete(Some("c"), None).await.unwrap(), 0);
    assert_eq!(store.delete(None, None).await.unwrap(), 2);
    assert_eq!(present().await, []);
    assert_eq!(store.delete(None, None).await.unwrap(), 0);
    // A clear of all left only itself in the stream.
    let events: usize = redis::cmd("XLEN").arg("{loom}:cache:log").query(&mut server.connection()).unwrap();
    assert_eq!(events, 1);

    let (task, mut events) = follower(&store);
    assert_eq!(next_event(&mut events).await, IndexEvent::Clear { namespace: None, model: None });
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_through_one_instance_reaches_the_other_instances_follower() {
    let server = RedisServer::start();
    let (a, b) = (store(&server), store(&server));
    let (task, mut events) = follower(&b);

    let before = SystemTime::now();
    put_semantic(&a, &[5; 32], &[0.6, -0.8, 1e-3], HOUR).await.unwrap();
    let after = SystemTime::now();
    assert_insert(next_event(&mut events).await, [5; 32], &[0.6, -0.8, 1e-3], HOUR, before, after);
    // The answer itself is in Redis for B to serve.
    assert_eq!(b.get("team-a", "gpt-4o", &[5; 32]).await.unwrap(), Some(b"answer".to_vec()));

    // Each delete appends its clear event, in order.
    let clear = |namespace: Option<&str>, model: Option<&str>| IndexEvent::Clear {
        namespace: namespace.map(str::to_owned),
        model: model.map(str::to_owned),
    };
    a.delete(Some("team-a"), None).await.unwrap();
    a.delete(None, Some("*")).await.unwrap();
    a.delete(Some("b"), Some("n")).await.unwrap();
    a.delete(None, None).await.unwrap();
    for expected in
        [clear(Some("team-a"), None), clear(None, Some("*")), clear(Some("b"), Some("n")), clear(None, None)]
    {
        assert_eq!(next_event(&mut events).await, expected);
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_started_later_replays_the_live_inserts_and_skips_expired_ones() {
    let server = RedisServer::start();
    let a = store(&server);
    put_semantic(&a, &[1; 32], &[1.0], Duration::from_millis(100)).await.unwrap();
    let before = SystemTime::now();
    put_semantic(&a, &[2; 32], &[0.5, 0.5], HOUR).await.unwrap();
    let after = SystemTime::now();
    let started = std::time::Instant::now();
    while a.get("team-a", "gpt-4o", &[1; 32]).await.unwrap().is_some() {
        assert!(started.elapsed() < DEADLINE, "the short entry never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let b = store(&server);
    let (task, mut events) = follower(&b);
    // The expired insert comes first in the stream: the first event seen is the live one.
    assert_insert(next_event(&mut events).await, [2; 32], &[0.5, 0.5], HOUR, before, after);
    task.abort();
}

#[tokio::test]
async fn with_nothing_listening_every_call_fails_without_hanging_or_showing_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/");
    let store = RedisCacheStore::new(&url, "loom", TIMEOUT).unwrap();

    let get = tokio::time::timeout(DEADLINE, store.get("team-a", "gpt-4o", &[1; 32])).await.unwrap();
    let put = tokio::time::timeout(DEADLINE, put_semantic(&store, &[1; 32], &[1.0], HOUR)).await.unwrap();
    let delete = tokio::time::timeout(DEADLINE, store.delete(None, None)).await.unwrap();
    for error in [get.unwrap_err(), put.unwrap_err(), delete.unwrap_err()] {
        assert!(error.is_backend_failure(), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
    assert_eq!(store.failures(), 3);
}

#[tokio::test]
async fn a_frozen_redis_times_out() {
    let server = RedisServer::start();
    let store = store(&server);
    store.put(entry("team-a", "gpt-4o", &[1; 32], b"v")).await.unwrap();
    server.pause();
    let get = tokio::time::timeout(DEADLINE, store.get("team-a", "gpt-4o", &[1; 32])).await.unwrap();
    let put =
        tokio::time::timeout(DEADLINE, store.put(entry("team-a", "gpt-4o", &[2; 32], b"v"))).await.unwrap();
    let delete = tokio::time::timeout(DEADLINE, store.delete(None, None)).await.unwrap();
    server.resume();
    assert_eq!(get, Err(RedisStoreError::Timeout(TIMEOUT)));
    assert_eq!(put, Err(RedisStoreError::Timeout(TIMEOUT)));
    assert_eq!(delete, Err(RedisStoreError::Timeout(TIMEOUT)));
    assert_eq!(store.failures(), 3);
}

#[tokio::test]
async fn the_sync_stream_is_trimmed_to_about_its_bound() {
    let server = RedisServer::start();
    let store = RedisCacheStore::new(&server.url(), "loom", TIMEOUT).unwrap().with_max_events(10);
    for index in 0..1000u32 {
        let mut id = [0; 32];
        id[..4].copy_from_slice(&index.to_le_bytes());
        put_semantic(&store, &id, &[1.0], HOUR).await.unwrap();
    }
    let events: usize = redis::cmd("XLEN").arg("{loom}:cache:log").query(&mut server.connection()).unwrap();
    // `MAXLEN ~` trims whole stream nodes (100 entries each by default).
    assert!((10..=110).contains(&events), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_outlives_a_redis_restart_and_picks_up_after_it() {
    let mut server = RedisServer::start();
    let (a, b) = (store(&server), store(&server));
    let (task, mut events) = follower(&b);
    put_semantic(&a, &[1; 32], &[1.0], HOUR).await.unwrap();
    assert!(matches!(next_event(&mut events).await, IndexEvent::Insert { id: [1, ..], .. }));

    server.stop();
    let failed = tokio::time::timeout(DEADLINE, put_semantic(&a, &[2; 32], &[1.0], HOUR)).await.unwrap();
    assert!(failed.unwrap_err().is_backend_failure());
    // Let the follower notice and fail a few times.
    let started = std::time::Instant::now();
    while b.failures() == 0 {
        assert!(started.elapsed() < DEADLINE, "the follower never noticed Redis was gone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart();

    let started = std::time::Instant::now();
    let before = SystemTime::now();
    while put_semantic(&a, &[3; 32], &[0.25], HOUR).await.is_err() {
        assert!(started.elapsed() < DEADLINE, "puts never worked again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = SystemTime::now();
    assert_insert(next_event(&mut events).await, [3; 32], &[0.25], HOUR, before, after);
    assert!(!task.is_finished());
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_stream_entries_are_skipped_and_counted() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let log = "{loom}:cache:log";
    let add = |redis: &mut redis::Connection, fields: &[(&str, &[u8])]| {
        let mut command = redis::cmd("XADD");
        command.arg(log).arg("*");
        for (name, value) in fields {
            command.arg(*name).arg(*value);
        }
        command.query::<String>(redis).unwrap();
    };
    let exp = b"99999999999999";
    add(&mut redis, &[("t", b"insert"), ("ns", b"x")]);
    add(
        &mut redis,
        &[
            ("t", b"insert"),
            ("ns", b"a"),
            ("m", b"m"),
            ("id", &[1; 32]),
            ("p", &[1; 32]),
            ("vec", &[0, 0, 0]),
            ("exp", exp),
        ],
    );
    add(
        &mut redis,
        &[
            ("t", b"insert"),
            ("ns", b"a"),
            ("m", b"m"),
            ("id", &[1; 31]),
            ("p", &[1; 32]),
            ("vec", &[0, 0, 0, 0]),
            ("exp", exp),
        ],
    );
    add(&mut redis, &[("t", b"drop table")]);
    add(&mut redis, &[("t", b"clear"), ("ns", &[0xff])]);

    let store = store(&server);
    let (task, mut events) = follower(&store);
    let before = SystemTime::now();
    put_semantic(&store, &[4; 32], &[2.0], HOUR).await.unwrap();
    let after = SystemTime::now();
    assert_insert(next_event(&mut events).await, [4; 32], &[2.0], HOUR, before, after);
    assert_eq!(store.malformed_events(), 5);
    assert!(!task.is_finished());
    task.abort();
}

#[tokio::test]
async fn stored_values_not_in_the_stores_format_are_refused() {
    let server = RedisServer::start();
    let store = store(&server);
    let key = |id: &str| format!("{{loom}}:cache:e:61:6d:{}", id.repeat(32));
    let mut redis = server.connection();
    let _: () = redis.set(key("01"), b"\x02not ours").unwrap();
    let _: () = redis.set(key("02"), [&[1u8][..], &vec![0; MAX_VALUE_BYTES + 1]].concat()).unwrap();
    let _: () = redis.set(key("03"), [&[1u8][..], &vec![7; MAX_VALUE_BYTES]].concat()).unwrap();

    assert_eq!(store.get("a", "m", &[1; 32]).await, Err(RedisStoreError::Malformed("entry")));
    assert!(matches!(store.get("a", "m", &[2; 32]).await, Err(RedisStoreError::TooLarge { .. })));
    assert_eq!(store.get("a", "m", &[3; 32]).await.unwrap().map(|value| value.len()), Some(MAX_VALUE_BYTES));
    // Names longer than anything stored are a miss without a call.
    assert_eq!(store.get("a", &"m".repeat(300), &[1; 32]).await, Ok(None));
}
