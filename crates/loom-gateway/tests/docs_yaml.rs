//! Every ```yaml block of docs/security.md and every config of examples/multi-instance
//! loads and validates, and the complete examples mean what the docs say.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loom_gateway::config::{ConfigBuilder, LoomConfig};
use loom_guard::{Backend, BudgetScope, FailMode, Period, Scope};

/// The number of ```yaml blocks in docs/security.md; a lost block fails.
const SECURITY_YAML_BLOCKS: usize = 8;

/// A provider for the fragments, which set only the guard's keys.
const BASE: &str = "
ai_gateway:
  providers:
    - name: mock
      type: mock
";

/// Dummy values of every variable the docs reference.
const ENV: [(&str, &str); 6] = [
    ("OPENAI_API_KEY", "sk-openai-docs-secret"),
    ("ANTHROPIC_API_KEY", "sk-ant-docs-secret"),
    ("ADMIN_KEY", "admin-docs-secret"),
    ("BACKEND_KEY", "lk-backend-docs-secret"),
    ("DEMO_KEY", "lk-demo-docs-secret"),
    ("REDIS_URL", "redis://:redis-docs-secret@127.0.0.1:6379/0"),
];

fn env(name: &str) -> Option<String> {
    ENV.iter().find(|(var, _)| *var == name).map(|(_, value)| (*value).to_owned())
}

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A ```yaml block and the heading it sits under.
struct Block {
    heading: String,
    yaml: String,
}

fn yaml_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    // Inside a fenced block: Some(true) for ```yaml, Some(false) for any other fence.
    let mut fence: Option<bool> = None;
    let mut yaml = String::new();
    for line in markdown.lines() {
        let fenced = line.trim_start().starts_with("```");
        match fence {
            Some(is_yaml) if fenced => {
                if is_yaml {
                    blocks.push(Block { heading: heading.clone(), yaml: std::mem::take(&mut yaml) });
                }
                fence = None;
            }
            Some(true) => {
                yaml.push_str(line);
                yaml.push('\n');
            }
            Some(false) => {}
            None if fenced => fence = Some(line.trim() == "```yaml"),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().to_owned(),
            None => {}
        }
    }
    assert!(fence.is_none(), "unterminated fenced block under {heading}");
    blocks
}

fn security_blocks() -> Vec<Block> {
    yaml_blocks(&read(&repo_file("docs/security.md")))
}

/// The block merged onto [`BASE`], parsed and validated.
fn merged(block: &Block) -> LoomConfig {
    ConfigBuilder::new(&env).yaml(BASE).yaml(block.yaml.as_str()).build().unwrap_or_else(|error| {
        panic!("docs/security.md block under \"{}\": {error}\n{}", block.heading, block.yaml)
    })
}

fn complete_example() -> LoomConfig {
    let blocks = security_blocks();
    let Some(block) = blocks.iter().find(|block| block.heading == "A complete example") else {
        panic!("docs/security.md has no complete example");
    };
    LoomConfig::from_yaml_str(&block.yaml, &env)
        .unwrap_or_else(|error| panic!("the complete example alone: {error}\n{}", block.yaml))
}

fn instance(file: &str) -> LoomConfig {
    let path = repo_file(&format!("examples/multi-instance/{file}"));
    LoomConfig::from_yaml_str(&read(&path), &env)
        .unwrap_or_else(|error| panic!("examples/multi-instance/{file}: {error}"))
}

#[test]
fn security_has_every_yaml_block() {
    let blocks = security_blocks();
    let headings: Vec<&str> = blocks.iter().map(|block| block.heading.as_str()).collect();
    assert_eq!(blocks.len(), SECURITY_YAML_BLOCKS, "yaml blocks found under: {headings:?}");
}

#[test]
fn every_security_block_loads_and_validates() {
    for block in security_blocks() {
        let config = merged(&block);
        let summary = config.summary();
        for (_, secret) in ENV {
            assert!(!summary.contains(secret), "the summary shows a secret under \"{}\"", block.heading);
        }
    }
}

#[test]
fn the_complete_example_is_what_the_page_says() {
    let config = complete_example();
    let ai = &config.ai_gateway;
    assert!(ai.auth.enabled);
    assert_eq!(ai.auth.admin_key.as_ref().map(|key| key.expose()), Some("admin-docs-secret"));
    let ids: Vec<&str> = ai.auth.keys.iter().map(|key| key.id.as_str()).collect();
    assert_eq!(ids, ["backend", "notebook"]);
    let backend = &ai.auth.keys[0];
    assert_eq!(backend.key.as_ref().map(|key| key.expose()), Some("lk-backend-docs-secret"));
    assert!(backend.allow_identity_headers);
    assert_eq!(backend.limits.len(), 2);
    assert_eq!(backend.budgets[0].scope, BudgetScope::Key);
    let notebook = &ai.auth.keys[1];
    assert!(notebook.key.is_none() && notebook.key_sha256.is_some());
    assert!(!notebook.allow_identity_headers, "identity headers are off unless a key says so");
    let scopes: Vec<Scope> = ai.rate_limits.iter().map(|limit| limit.scope).collect();
    assert_eq!(scopes, [Scope::Team, Scope::Model, Scope::Global]);
    assert_eq!(ai.budgets[1].period, Period::Rolling(Duration::from_secs(30 * 86_400)));
    assert_eq!(ai.state.backend, Backend::Redis);
    assert_eq!(ai.state.timeout, Duration::from_millis(250));
    assert_eq!(ai.state.on_state_error.rate_limits, FailMode::FailOpen);
    assert_eq!(ai.state.on_state_error.budgets, FailMode::FailClosed);
    // Both listeners are public, and both have a key: `loom check` warns about nothing.
    assert!(!config.server.listen.ip().is_loopback() && !config.admin.listen.ip().is_loopback());
    assert_eq!(config.exposure_warnings(), Vec::<String>::new());
}

#[test]
fn the_state_block_shows_the_documented_defaults_elsewhere() {
    let blocks = security_blocks();
    let Some(block) = blocks.iter().find(|block| block.heading == "State: in memory or on Redis") else {
        panic!("no state block");
    };
    let state = merged(block).ai_gateway.state;
    assert_eq!(state.key_prefix, "loom");
    assert_eq!(state.max_entries, loom_guard::DEFAULT_MAX_ENTRIES);
    let defaults = LoomConfig::from_yaml_str(BASE, &env).unwrap_or_else(|error| panic!("base: {error}"));
    assert_eq!(defaults.ai_gateway.state.backend, Backend::Memory);
    assert_eq!(defaults.ai_gateway.state.timeout, Duration::from_millis(500));
    assert!(!defaults.ai_gateway.auth.enabled, "auth is off by default");
}

#[test]
fn the_guard_block_of_the_configuration_reference_loads() {
    let blocks = yaml_blocks(&read(&repo_file("docs/configuration.md")));
    let Some(block) = blocks.iter().find(|block| block.heading == "`ai_gateway.state`") else {
        panic!("docs/configuration.md has no yaml block under `ai_gateway.state`");
    };
    let config = ConfigBuilder::new(&env)
        .yaml(BASE)
        .yaml(block.yaml.as_str())
        .build()
        .unwrap_or_else(|error| panic!("docs/configuration.md, `ai_gateway.state`: {error}"));
    assert!(config.ai_gateway.auth.enabled);
    assert_eq!(config.ai_gateway.state.backend, Backend::Redis);
}

#[test]
fn the_two_instances_share_one_redis_and_differ_only_in_their_ports() {
    let (a, b) = (instance("loom-a.yaml"), instance("loom-b.yaml"));
    for config in [&a, &b] {
        let ai = &config.ai_gateway;
        assert!(ai.auth.enabled);
        assert_eq!(ai.state.backend, Backend::Redis);
        assert_eq!(
            ai.state.url.as_ref().map(|url| url.expose()),
            Some("redis://:redis-docs-secret@127.0.0.1:6379/0")
        );
        assert_eq!(config.exposure_warnings(), Vec::<String>::new());
        let limits: Vec<(Scope, Option<u64>)> =
            ai.rate_limits.iter().map(|limit| (limit.scope, limit.requests_per_minute)).collect();
        assert_eq!(limits, [(Scope::Team, Some(10))], "the README's curl loop counts on 10 per minute");
        assert!(!config.summary().contains("redis-docs-secret"));
    }
    let ports = |config: &LoomConfig| (config.server.listen.port(), config.admin.listen.port());
    assert_eq!((ports(&a), ports(&b)), ((8081, 9191), (8082, 9192)));
    let mut b_on_a_ports = b.clone();
    b_on_a_ports.server.listen = a.server.listen;
    b_on_a_ports.admin.listen = a.admin.listen;
    assert_eq!(b_on_a_ports, a);
}

#[test]
fn the_cache_example_loads_and_means_what_docs_cache_says() {
    let blocks = yaml_blocks(&read(&repo_file("docs/cache.md")));
    assert_eq!(blocks.len(), 1, "docs/cache.md has one yaml block");
    let config = LoomConfig::from_yaml_str(&blocks[0].yaml, &env)
        .unwrap_or_else(|error| panic!("docs/cache.md: {error}\n{}", blocks[0].yaml));
    let cache = &config.ai_gateway.cache;
    assert!(cache.enabled && cache.semantic.enabled);
    assert_eq!(cache.namespace, loom_cache::Namespace::Key);
    assert_eq!(cache.ttl, Duration::from_secs(3600));
    assert_eq!(cache.semantic.similarity_threshold, 0.84);
    assert_eq!(config.ai_gateway.state.backend, Backend::Redis);
    let creative =
        config.routes.iter().find(|route| route.id == "creative").and_then(|route| route.cache.clone());
    let policy = loom_cache::CachePolicy::of(cache, creative.as_ref());
    assert!(policy.enabled && policy.sampled && !policy.semantic);
    assert_eq!(policy.ttl, Duration::from_secs(600));
    assert!(config.summary().contains("  cache: on, namespace key, ttl 1h, max 268435456 bytes, entries shared on redis, semantic (threshold 0.84)"), "{}", config.summary());
}
