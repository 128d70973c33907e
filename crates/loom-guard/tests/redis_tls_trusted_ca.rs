//! `rediss://` without `#insecure`, trusting a private CA through `SSL_CERT_FILE` (read by
//! the redis crate's rustls setup through `rustls-native-certs`): no Loom setting needed.
//! Alone in its own test binary because it sets a process-wide environment variable.

use std::time::Duration;

use loom_core::Secret;
use loom_guard::{Backend, GuardState, StateConfig};
use loom_test_support::RedisServer;

#[tokio::test]
async fn rediss_trusts_a_private_ca_named_by_ssl_cert_file() {
    let tls = RedisServer::start_tls();
    // SAFETY: the only test in this binary, and no other thread of it reads the environment
    // now (the runtime is single-threaded and no Redis connection exists yet).
    unsafe { std::env::set_var("SSL_CERT_FILE", tls.ca_certificate()) };
    for url in [tls.url(), tls.url().replace("127.0.0.1", "localhost")] {
        let config = StateConfig {
            backend: Backend::Redis,
            url: Some(Secret::new(url.clone())),
            timeout: Duration::from_secs(2),
            ..StateConfig::default()
        };
        let state = GuardState::from_config(&config).unwrap();
        assert_eq!(state.ping().await, Ok(()), "{url}");
    }
}
