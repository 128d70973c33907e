//! KeyStore on a real redis-server: keys created, changed and revoked on one instance take
//! effect on another.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use loom_core::Secret;
use loom_guard::{
    AuthConfig, Backend, GuardError, GuardState, KeyConfig, KeyPatch, KeyStore, Lookup, NewKey, StateConfig,
};
use loom_test_support::RedisServer;

fn auth() -> AuthConfig {
    AuthConfig {
        enabled: true,
        keys: vec![KeyConfig {
            id: "ops".to_owned(),
            name: None,
            key: Some(Secret::new("sk-ops")),
            key_sha256: None,
            user: None,
            team: Some("ops".to_owned()),
            metadata: BTreeMap::new(),
            models: Vec::new(),
            routes: Vec::new(),
            allow_identity_headers: true,
            expires_at: None,
            limits: Vec::new(),
            budgets: Vec::new(),
            checks: None,
        }],
        admin_key: None,
    }
}

async fn instance(server: &RedisServer) -> KeyStore {
    let config = StateConfig {
        backend: Backend::Redis,
        url: Some(Secret::new(server.url())),
        ..StateConfig::default()
    };
    let state = GuardState::redis(&config).unwrap();
    KeyStore::open(&auth(), &state).await.unwrap()
}

fn found(lookup: Lookup) -> String {
    match lookup {
        Lookup::Found(key) => key.id.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_key_created_on_one_instance_works_on_another_until_revoked() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let now = SystemTime::now();
    let new: NewKey = serde_json::from_str(r#"{"id":"ci","team":"eng","models":["gpt-4o*"]}"#).unwrap();
    let (plaintext, created) = a.create(new).await.unwrap();
    assert_eq!(found(a.lookup(&plaintext, now)), "ci");
    assert_eq!(b.lookup(&plaintext, now), Lookup::Unknown);
    b.refresh().await.unwrap();
    match b.lookup(&plaintext, now) {
        Lookup::Found(key) => {
            assert_eq!(key.team.as_deref(), Some("eng"));
            assert!(key.allows_model("gpt-4o-mini") && !key.allows_model("gpt-4"));
            assert_eq!(key.created_at, created.created_at);
        }
        other => panic!("{other:?}"),
    }
    // The configuration key works on both, untouched by Redis.
    assert_eq!(found(b.lookup("sk-ops", now)), "ops");

    // Changed on B, seen on A.
    let patch: KeyPatch = serde_json::from_str(r#"{"team":"research"}"#).unwrap();
    b.update("ci", patch).await.unwrap();
    a.refresh().await.unwrap();
    assert!(
        matches!(a.lookup(&plaintext, now), Lookup::Found(key) if key.team.as_deref() == Some("research"))
    );

    a.revoke("ci").await.unwrap();
    assert!(matches!(a.lookup(&plaintext, now), Lookup::Revoked(_)));
    b.refresh().await.unwrap();
    assert!(matches!(b.lookup(&plaintext, now), Lookup::Revoked(_)));
}

#[tokio::test]
async fn the_refresh_task_picks_up_changes_by_itself() {
    let server = RedisServer::start();
    let a = instance(&server).await;
    let b = Arc::new(instance(&server).await);
    let task = b.spawn_refresh(Duration::from_millis(20));
    let (plaintext, _) = a.create(NewKey::default()).await.unwrap();
    let mut seen = false;
    // A bounded wait, not a timing assertion: the poll runs every 20ms.
    for _ in 0..250 {
        if matches!(b.lookup(&plaintext, SystemTime::now()), Lookup::Found(_)) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "instance B never saw the key");
    drop(b);
    // With the store gone, the task ends by itself.
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn stored_records_and_listings_hold_no_plaintext() {
    let server = RedisServer::start();
    let a = instance(&server).await;
    let (plaintext, created) =
        a.create(NewKey { id: Some("svc".to_owned()), ..NewKey::default() }).await.unwrap();
    let mut connection = server.connection();
    let stored: String = redis::cmd("HGET").arg("{loom}:keys").arg("svc").query(&mut connection).unwrap();
    assert!(!stored.contains(&plaintext));
    assert!(stored.contains(&created.hash.to_hex()), "the record keeps the hash to look keys up");
    let listed = serde_json::to_string(&a.list()).unwrap();
    assert!(!listed.contains(&plaintext) && !listed.contains(&created.hash.to_hex()), "{listed}");
    assert!(listed.contains(r#""id":"svc""#) && listed.contains(r#""id":"ops""#), "{listed}");
}

#[tokio::test]
async fn ids_are_unique_across_instances_and_config_keys_are_read_only() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    a.create(NewKey { id: Some("same".to_owned()), ..NewKey::default() }).await.unwrap();
    // B has not refreshed, so only Redis knows the id is taken.
    let clash = b.create(NewKey { id: Some("same".to_owned()), ..NewKey::default() }).await.unwrap_err();
    assert_eq!(clash, GuardError::invalid("id", "a key with id `same` exists"));
    assert_eq!(b.revoke("ops").await, Err(GuardError::ReadOnlyKey("ops".to_owned())));
    assert_eq!(b.revoke("missing").await, Err(GuardError::NotFound("missing".to_owned())));
}
