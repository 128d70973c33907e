//! Bad configs are refused with an error that names the key; secrets never show.
//!
//! Only `process_environment_and_files` touches the process environment; every other
//! test injects its variables, so tests cannot race on `std::env`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use loom_gateway::config::{
    ConfigBuilder, ConfigError, LogFormat, LoomConfig, RouteConfig, Strategy, provider_is_active,
};
use loom_providers::{ProviderType, WireFormat};

/// Two valid providers; fragments in the tests below are merged on top.
const BASE: &str = r#"
ai_gateway:
  providers:
    - name: openai
      type: openai
      api_key: ${OPENAI_API_KEY}
    - name: anthropic
      type: anthropic
      api_key: ${ANTHROPIC_API_KEY}
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai-secret-1".to_owned()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-secret-2".to_owned()),
        "OTHER_SECRET" => Some("other-secret-3".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads BASE with `fragment` merged on top.
fn load(fragment: &str) -> Result<LoomConfig, ConfigError> {
    ConfigBuilder::new(&env).yaml(BASE).yaml(fragment).build()
}

fn load_ok(fragment: &str) -> LoomConfig {
    load(fragment).unwrap_or_else(|error| panic!("expected a valid config, got: {error}\n{fragment}"))
}

/// Loads BASE + `fragment`, expects a validation error, returns (key, full message).
fn invalid(fragment: &str) -> (String, String) {
    match load(fragment) {
        Err(error @ ConfigError::Invalid { .. }) => {
            let key = error.key().unwrap_or_default().to_owned();
            let text = error.to_string();
            assert!(text.starts_with(&format!("{key}: ")), "{text}");
            (key, text)
        }
        Err(other) => panic!("expected a validation error, got {other:?}"),
        Ok(_) => panic!("expected a validation error for:\n{fragment}"),
    }
}

fn invalid_key(fragment: &str) -> String {
    invalid(fragment).0
}

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

// ---------------------------------------------------------------- parsing

#[test]
fn unknown_key_in_a_provider_names_its_path() {
    let error = load("ai_gateway:\n  providers:\n    - nmae: openai\n      type: openai\n")
        .err()
        .map(|error| (error.key().map(str::to_owned), error.to_string()));
    let Some((Some(key), text)) = error else { panic!("a typo must be rejected") };
    assert_eq!(key, "ai_gateway.providers[0].nmae");
    assert!(text.starts_with("ai_gateway.providers[0].nmae: unknown field `nmae`"), "{text}");
    assert!(text.contains("`name`"), "lists the expected fields: {text}");
}

#[test]
fn unknown_keys_are_rejected_at_every_depth() {
    for (yaml, key) in [
        ("serverr:\n  listen: 0.0.0.0:1\n", "serverr"),
        ("server:\n  listenn: 0.0.0.0:1\n", "server.listenn"),
        ("ai_gateway:\n  routing:\n    failover:\n      retries: 1\n", "ai_gateway.routing.failover.retries"),
        (
            "ai_gateway:\n  routing:\n    providers:\n      - name: openai\n        wieght: 1\n",
            "ai_gateway.routing.providers[0].wieght",
        ),
        ("ai_gateway:\n  streaming:\n    flush: 1ms\n", "ai_gateway.streaming.flush"),
        ("routes:\n  - id: a\n    path: /v1/*\n    ai: true\n", "routes[0].ai"),
        (
            "ai_gateway:\n  providers:\n    - name: m\n      type: mock\n      mock:\n        latncy: 1ms\n",
            "ai_gateway.providers[0].mock.latncy",
        ),
    ] {
        match load(yaml) {
            Err(ConfigError::Parse { key: found, message }) => {
                assert_eq!(found, key, "{message}");
                assert!(message.starts_with("unknown field"), "{message}");
            }
            other => panic!("{yaml}: expected an unknown-field error, got {other:?}"),
        }
    }
}

#[test]
fn wrong_types_name_the_key() {
    let error = load("ai_gateway:\n  routing:\n    failover:\n      max_retries: \"two\"\n").err();
    let Some(ConfigError::Parse { key, message }) = error else { panic!("expected a parse error") };
    assert_eq!(key, "ai_gateway.routing.failover.max_retries");
    assert!(message.contains("\"two\"") && message.contains("u32"), "{message}");

    for (yaml, key) in [
        ("server:\n  listen: localhost\n", "server.listen"),
        ("server:\n  shutdown_timeout: 30\n", "server.shutdown_timeout"),
        ("server:\n  workers: 0\n", "server.workers"),
        ("server:\n  workers: many\n", "server.workers"),
        ("ai_gateway:\n  streaming:\n    flush_interval: soon\n", "ai_gateway.streaming.flush_interval"),
        ("ai_gateway:\n  routing:\n    strategy: fastest\n", "ai_gateway.routing.strategy"),
        ("ai_gateway:\n  providers:\n    - name: x\n      type: openia\n", "ai_gateway.providers[0].type"),
        ("logging:\n  format: xml\n", "logging.format"),
        ("routes: yes\n", "routes"),
    ] {
        match load(yaml) {
            Err(ConfigError::Parse { key: found, .. }) => assert_eq!(found, key, "{yaml}"),
            other => panic!("{yaml}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn malformed_yaml_is_a_parse_error() {
    let Err(error) = LoomConfig::from_yaml_str("server:\n  listen: [\n", &env) else {
        panic!("malformed YAML must fail")
    };
    let text = error.to_string();
    assert!(text.starts_with("invalid YAML:") && text.contains("line"), "{text}");
    let Err(error) = LoomConfig::from_yaml_str("- a list\n", &env) else { panic!("a list is not a config") };
    assert!(matches!(error, ConfigError::Parse { .. }), "{error}");
    let twice = "ai_gateway:\n  routing:\n    strategy: weighted\n  routing:\n    strategy: cost\n";
    let Err(error) = LoomConfig::from_yaml_str(twice, &env) else {
        panic!("a duplicated key must not silently win")
    };
    let text = error.to_string();
    assert!(text.starts_with("invalid YAML: ai_gateway: duplicate key `routing`"), "{text}");
}

// ---------------------------------------------------------------- ${VAR}

#[test]
fn a_missing_variable_names_it_and_the_key_and_leaks_nothing() {
    let yaml = r#"
ai_gateway:
  providers:
    - name: anthropic
      type: anthropic
      api_key: ${ANTHROPIC_API_KEY}
    - name: openai
      type: openai
      api_key: ${UNSET_OPENAI_KEY}
      headers:
        X-Other: ${OTHER_SECRET}
"#;
    let Err(error) = LoomConfig::from_yaml_str(yaml, &env) else { panic!("an unset variable must fail") };
    let text = error.to_string();
    assert_eq!(text, "ai_gateway.providers[1].api_key: environment variable UNSET_OPENAI_KEY is not set");
    match error {
        ConfigError::MissingEnv { var, key } => {
            assert_eq!(var, "UNSET_OPENAI_KEY");
            assert_eq!(key, "ai_gateway.providers[1].api_key");
        }
        other => panic!("expected MissingEnv, got {other:?}"),
    }
    for secret in ["sk-openai-secret-1", "sk-ant-secret-2", "other-secret-3"] {
        assert!(!text.contains(secret), "error leaks a secret: {text}");
    }
}

#[test]
fn substituted_values_never_appear_in_errors() {
    // An env value that lands in a typed key: the error names the key but hides the value.
    let Err(error) = LoomConfig::from_yaml_str("logging:\n  format: ${OTHER_SECRET}\n", &env) else {
        panic!("not a log format")
    };
    let text = error.to_string();
    assert!(text.starts_with("logging.format: unknown variant"), "{text}");
    assert!(!text.contains("other-secret-3"), "{text}");

    // A literal of the wrong type at an api_key is hidden too.
    let yaml = "ai_gateway:\n  providers:\n    - name: o\n      type: openai\n      api_key: 987654321\n";
    let Err(error) = LoomConfig::from_yaml_str(yaml, &env) else { panic!("a number is not a key") };
    let text = error.to_string();
    assert!(text.starts_with("ai_gateway.providers[0].api_key:"), "{text}");
    assert!(!text.contains("987654321"), "{text}");
}

#[test]
fn defaults_and_escapes_in_placeholders() {
    let yaml = r#"
ai_gateway:
  providers:
    - name: local
      type: local
      format: openai
      base_url: ${LOCAL_LLM_URL:-http://127.0.0.1:11434/v1}
      api_key: ${EMPTY:-none-needed}
      headers:
        X-Template: "$${NOT_A_VAR} costs $5"
"#;
    let config = LoomConfig::from_yaml_str(yaml, &env).unwrap_or_else(|error| panic!("{error}"));
    let provider = &config.ai_gateway.providers[0];
    assert_eq!(provider.base_url.as_deref(), Some("http://127.0.0.1:11434/v1"));
    assert_eq!(provider.api_key.as_ref().map(|key| key.expose()), Some("none-needed"));
    assert_eq!(provider.headers["X-Template"].expose(), "${NOT_A_VAR} costs $5");

    let set = |name: &str| (name == "LOCAL_LLM_URL").then(|| "http://10.0.0.7:8000/v1".to_owned());
    let config = LoomConfig::from_yaml_str(yaml, &set).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.ai_gateway.providers[0].base_url.as_deref(), Some("http://10.0.0.7:8000/v1"));
}

#[test]
fn placeholders_in_comments_and_keys_are_not_expanded() {
    let yaml = "# api_key: ${NEVER_SET}\nai_gateway:\n  model_mapping:\n    ${NOT_EXPANDED}:\n      openai: gpt-4o\n";
    let config = ConfigBuilder::new(&no_env)
        .yaml("ai_gateway:\n  providers:\n    - name: openai\n      type: local\n      format: openai\n      base_url: http://localhost:1\n")
        .yaml(yaml)
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(config.ai_gateway.model_mapping.contains_key("${NOT_EXPANDED}"));
}

#[test]
fn malformed_placeholders_name_the_key() {
    let Err(error) = load("logging:\n  level: ${UNCLOSED\n") else { panic!("unterminated placeholder") };
    assert_eq!(error.key(), Some("logging.level"));
    let Err(error) = load("logging:\n  level: ${LEVEL:info}\n") else { panic!("`:` without `-`") };
    assert_eq!(error.key(), Some("logging.level"));
    assert!(error.to_string().contains(":-"), "{error}");
}

// ---------------------------------------------------------------- LOOM_ overrides

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

#[test]
fn loom_variables_override_keys() {
    let config = ConfigBuilder::new(&env)
        .yaml(BASE)
        .yaml("server:\n  listen: 127.0.0.1:8080\n")
        .env_overrides(vars(&[
            ("LOOM_SERVER__LISTEN", "0.0.0.0:9000"),
            ("LOOM_AI_GATEWAY__STREAMING__FLUSH_INTERVAL", "10ms"),
            ("LOOM_AI_GATEWAY__ROUTING__FAILOVER__RETRY_CODES", "[429, 503]"),
            ("LOOM_AI_GATEWAY__ROUTING__FAILOVER__MAX_RETRIES", "5"),
            ("LOOM_AI_GATEWAY__PROVIDERS__1__API_KEY", "sk-from-env"),
            ("LOOM_LOGGING__FORMAT", "json"),
            ("LOOM_ADMIN__ENABLED", "false"),
            ("LOOM_SERVER__WORKERS", "3"),
            // Not config keys: read by the binary, or not ours.
            ("LOOM_CONFIG", "/etc/loom/loom.yaml"),
            ("LOOM_LOG", "debug"),
            ("OPENAI_API_KEY", "ignored"),
            ("PATH", "/usr/bin"),
        ]))
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.server.listen, "0.0.0.0:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(config.ai_gateway.streaming.flush_interval, Duration::from_millis(10));
    assert_eq!(config.ai_gateway.routing.failover.retry_codes, [429, 503]);
    assert_eq!(config.ai_gateway.routing.failover.max_retries, 5);
    assert_eq!(config.ai_gateway.providers[1].api_key.as_ref().map(|key| key.expose()), Some("sk-from-env"));
    assert_eq!(config.logging.format, LogFormat::Json);
    assert!(!config.admin.enabled);
    assert_eq!(config.server.workers.map(|workers| workers.get()), Some(3));
}

#[test]
fn bad_overrides_name_the_key_and_the_variable() {
    let Err(error) = ConfigBuilder::new(&env)
        .yaml(BASE)
        .env_overrides(vars(&[("LOOM_SERVER__LISTN", "0.0.0.0:1")]))
        .build()
    else {
        panic!("an unknown override key must fail")
    };
    let text = error.to_string();
    assert!(text.starts_with("server.listn: unknown field `listn`"), "{text}");
    assert!(text.contains("LOOM_SERVER__LISTN"), "{text}");

    let Err(error) = ConfigBuilder::new(&env)
        .yaml(BASE)
        .env_overrides(vars(&[("LOOM_SERVER__MAX_BODY_BYTES", "lots")]))
        .build()
    else {
        panic!("a wrong-typed override must fail")
    };
    assert_eq!(error.key(), Some("server.max_body_bytes"));
    assert!(error.to_string().contains("LOOM_SERVER__MAX_BODY_BYTES"), "{error}");

    let Err(error) = ConfigBuilder::new(&env)
        .yaml(BASE)
        .env_overrides(vars(&[("LOOM_AI_GATEWAY__PROVIDERS__9__NAME", "x")]))
        .build()
    else {
        panic!("an out-of-range index must fail")
    };
    assert!(error.to_string().contains("LOOM_AI_GATEWAY__PROVIDERS__9__NAME"), "{error}");
}

// ---------------------------------------------------------------- validation

#[test]
fn provider_names_are_unique_and_not_empty() {
    let (key, text) =
        invalid("ai_gateway:\n  providers:\n    - {name: a, type: mock}\n    - {name: a, type: mock}\n");
    assert_eq!(key, "ai_gateway.providers[1].name");
    assert!(text.contains("duplicate provider name \"a\""), "{text}");
    assert_eq!(
        invalid_key("ai_gateway:\n  providers:\n    - {name: \"\", type: mock}\n"),
        "ai_gateway.providers[0].name"
    );
}

#[test]
fn api_keys_are_required_where_the_provider_needs_one() {
    for kind in ["openai", "anthropic", "gemini"] {
        let yaml = format!("ai_gateway:\n  providers:\n    - {{name: p, type: {kind}}}\n");
        assert_eq!(invalid_key(&yaml), "ai_gateway.providers[0].api_key", "{kind}");
    }
    let azure = "ai_gateway:\n  providers:\n    - {name: p, type: azure, base_url: \"https://r.openai.azure.com\", api_version: \"2024-02-15-preview\"}\n";
    assert_eq!(invalid_key(azure), "ai_gateway.providers[0].api_key");
    // An empty value (e.g. `${VAR}` set to "") counts as missing.
    let empty = "ai_gateway:\n  providers:\n    - {name: p, type: openai, api_key: \"${EMPTY}\"}\n";
    assert_eq!(invalid_key(empty), "ai_gateway.providers[0].api_key");
    // No key needed for mock, local and vertex (which authenticates with OAuth2).
    load_ok("ai_gateway:\n  providers:\n    - {name: m, type: mock}\n");
    load_ok(
        "ai_gateway:\n  providers:\n    - {name: l, type: local, format: openai, base_url: \"http://127.0.0.1:8000/v1\"}\n",
    );
    load_ok(
        "ai_gateway:\n  providers:\n    - {name: v, type: vertex, vertex: {project: p, access_token: t}}\n",
    );
    let (key, _) = invalid("ai_gateway:\n  providers:\n    - {name: v, type: vertex}\n");
    assert_eq!(key, "ai_gateway.providers[0].vertex");
    let (key, _) = invalid(
        "ai_gateway:\n  providers:\n    - {name: g, type: gemini, api_key: k, vertex: {project: p}}\n",
    );
    assert_eq!(key, "ai_gateway.providers[0].vertex");
}

#[test]
fn azure_and_local_need_their_settings() {
    let azure = |extra: &str| {
        format!("ai_gateway:\n  providers:\n    - {{name: az, type: azure, api_key: k{extra}}}\n")
    };
    assert_eq!(invalid_key(&azure(", api_version: v1")), "ai_gateway.providers[0].base_url");
    assert_eq!(
        invalid_key(&azure(", base_url: \"https://r.openai.azure.com\"")),
        "ai_gateway.providers[0].api_version"
    );
    load_ok(&azure(", base_url: \"https://r.openai.azure.com\", api_version: v1"));

    let local = |extra: &str| format!("ai_gateway:\n  providers:\n    - {{name: l, type: local{extra}}}\n");
    assert_eq!(invalid_key(&local(", format: openai")), "ai_gateway.providers[0].base_url");
    assert_eq!(invalid_key(&local(", base_url: \"http://h:1\"")), "ai_gateway.providers[0].format");
}

#[test]
fn base_urls_must_be_http_urls_and_are_not_echoed() {
    for url in ["ftp://files.internal", "files.internal/v1", "not a url", "https:///no-host"] {
        let yaml = format!(
            "ai_gateway:\n  providers:\n    - {{name: o, type: openai, api_key: k, base_url: \"{url}\"}}\n"
        );
        let (key, text) = invalid(&yaml);
        assert_eq!(key, "ai_gateway.providers[0].base_url", "{url}");
        assert!(!text.contains(url), "{text}");
    }
}

#[test]
fn type_specific_settings_only_on_their_type() {
    let openai = |extra: &str| {
        format!("ai_gateway:\n  providers:\n    - {{name: o, type: openai, api_key: k, {extra}}}\n")
    };
    assert_eq!(invalid_key(&openai("deployments: {gpt-4: d}")), "ai_gateway.providers[0].deployments");
    assert_eq!(invalid_key(&openai("format: openai")), "ai_gateway.providers[0].format");
    assert_eq!(invalid_key(&openai("mock: {latency: 1ms}")), "ai_gateway.providers[0].mock");
}

#[test]
fn headers_must_be_valid_http() {
    let yaml = "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k, headers: {\"bad header\": v}}\n";
    assert_eq!(invalid_key(yaml), "ai_gateway.providers[0].headers.bad header");
}

#[test]
fn routing_targets_must_name_defined_providers_once() {
    let (_, text) = invalid("ai_gateway:\n  routing:\n    providers:\n      - name: foo\n");
    assert_eq!(
        text,
        "ai_gateway.routing.providers[0].name: unknown provider \"foo\"; defined: openai, anthropic"
    );
    let (key, text) =
        invalid("ai_gateway:\n  routing:\n    providers:\n      - name: openai\n      - name: openai\n");
    assert_eq!(key, "ai_gateway.routing.providers[1].name");
    assert!(text.contains("already listed at ai_gateway.routing.providers[0]"), "{text}");
}

#[test]
fn weighted_routing_needs_a_positive_weight() {
    let fragment = "ai_gateway:\n  routing:\n    strategy: weighted\n    providers:\n      - {name: openai, weight: 0}\n      - {name: anthropic, weight: 0}\n";
    assert_eq!(invalid_key(fragment), "ai_gateway.routing.providers");
    load_ok(
        "ai_gateway:\n  routing:\n    strategy: weighted\n    providers:\n      - {name: openai, weight: 0}\n      - {name: anthropic, weight: 1}\n",
    );
    // Unset weights count as 1.
    load_ok("ai_gateway:\n  routing:\n    strategy: weighted\n");
}

#[test]
fn model_mapping_must_name_defined_providers() {
    let (key, text) =
        invalid("ai_gateway:\n  model_mapping:\n    gpt-4:\n      openai: gpt-4-turbo\n      azure: gpt-4\n");
    assert_eq!(key, "ai_gateway.model_mapping.gpt-4.azure");
    assert!(text.contains("unknown provider \"azure\"; defined: openai, anthropic"), "{text}");
}

#[test]
fn retry_codes_are_http_error_statuses() {
    let fragment = "ai_gateway:\n  routing:\n    failover:\n      retry_codes: [429, 302]\n";
    assert_eq!(invalid_key(fragment), "ai_gateway.routing.failover.retry_codes[1]");
    assert_eq!(
        invalid_key("ai_gateway:\n  routing:\n    failover:\n      retry_codes: [600]\n"),
        "ai_gateway.routing.failover.retry_codes[0]"
    );
}

#[test]
fn routes_are_checked() {
    let (key, text) = invalid(
        "routes:\n  - {id: ai, path: /v1/*, ai_gateway: true}\n  - {id: ai, path: /v2/*, ai_gateway: true}\n",
    );
    assert_eq!(key, "routes[1].id");
    assert!(text.contains("duplicate route id \"ai\""), "{text}");
    assert_eq!(invalid_key("routes:\n  - {id: ai, path: v1/*, ai_gateway: true}\n"), "routes[0].path");
    assert_eq!(invalid_key("routes:\n  - {id: ai, path: /v1/*/chat, ai_gateway: true}\n"), "routes[0].path");
    assert_eq!(invalid_key("routes:\n  - {id: ai, path: /v1*, ai_gateway: true}\n"), "routes[0].path");
    load_ok(
        "routes:\n  - {id: chat, path: /v1/chat/completions, ai_gateway: true}\n  - {id: rest, path: /*, ai_gateway: true}\n",
    );
}

#[test]
fn per_route_routing_is_checked_like_the_global_block() {
    let route = |routing: &str| {
        format!("routes:\n  - id: ai\n    path: /v1/*\n    ai_gateway: true\n    routing:\n{routing}")
    };
    assert_eq!(
        invalid_key(&route("      providers:\n        - name: foo\n")),
        "routes[0].routing.providers[0].name"
    );
    assert_eq!(
        invalid_key(&route("      failover:\n        retry_codes: [200]\n")),
        "routes[0].routing.failover.retry_codes[0]"
    );
    assert_eq!(
        invalid_key("routes:\n  - id: web\n    path: /web/*\n    routing:\n      strategy: priority\n"),
        "routes[0].routing"
    );
    let config =
        load_ok(&route("      strategy: round_robin\n      providers:\n        - name: anthropic\n"));
    assert_eq!(config.inactive_features(), Vec::<String>::new(), "per-route routing is active");
}

#[test]
fn an_enabled_gateway_needs_a_provider() {
    let Err(error) = LoomConfig::from_yaml_str("server:\n  listen: 0.0.0.0:8080\n", &env) else {
        panic!("no providers")
    };
    assert_eq!(error.key(), Some("ai_gateway.providers"));
    LoomConfig::from_yaml_str("ai_gateway:\n  enabled: false\n", &env)
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn listeners_are_checked() {
    assert_eq!(
        invalid_key("admin:\n  listen: 0.0.0.0:8080\nserver:\n  listen: 0.0.0.0:8080\n"),
        "admin.listen"
    );
    assert_eq!(invalid_key("server:\n  max_body_bytes: 0\n"), "server.max_body_bytes");
    assert_eq!(invalid_key("server:\n  request_timeout: 0s\n"), "server.request_timeout");
    // Port 0 on both (tests binding ephemeral ports) is fine.
    load_ok("admin:\n  listen: 127.0.0.1:0\nserver:\n  listen: 127.0.0.1:0\n");
}

#[test]
fn validation_reports_every_broken_rule_in_config_order() {
    let fragment = "server:\n  workers: 5000
logging:\n  level: \"\"\nai_gateway:\n  routing:\n    providers:\n      - name: nope\n";
    let Err(error) = load(fragment) else { panic!("three rules are broken") };
    let ConfigError::Many { errors } = &error else { panic!("expected every error, got {error:?}") };
    let keys: Vec<Option<&str>> = errors.iter().map(ConfigError::key).collect();
    assert_eq!(
        keys,
        [Some("server.workers"), Some("logging.level"), Some("ai_gateway.routing.providers[0].name")]
    );
    assert!(errors.iter().all(|error| matches!(error, ConfigError::Invalid { .. })), "{errors:?}");
    // The first error's key stands for the whole; the text is one line per error.
    assert_eq!(error.key(), Some("server.workers"));
    assert_eq!(error.problems().len(), 3);
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{error}");
    assert!(lines[0].starts_with("server.workers: 5000 is more than the limit of "), "{error}");
    assert_eq!(lines[1], "logging.level: must not be empty (e.g. `info`)");
    assert_eq!(
        lines[2],
        "ai_gateway.routing.providers[0].name: unknown provider \"nope\"; defined: openai, anthropic"
    );
}

#[test]
fn one_broken_rule_is_reported_alone() {
    let Err(error) = load("logging:\n  level: \" \"\n") else { panic!("an empty level") };
    assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
    assert_eq!(error.problems().len(), 1);
}

// ---------------------------------------------------------------- ranges

/// A duration past `Instant`'s range: it panicked every request before it was refused.
const HUGE: &str = "10000000000000000000s";

#[test]
fn timeouts_must_be_above_zero() {
    let provider_timeout = |name: &str| {
        format!(
            "ai_gateway:\n  providers:\n    - name: o\n      type: openai\n      api_key: k\n      timeouts:\n        {name}: 0s\n"
        )
    };
    let cases = [
        ("server:\n  request_timeout: 0s\n".to_owned(), "server.request_timeout"),
        ("server:\n  shutdown_timeout: 0s\n".to_owned(), "server.shutdown_timeout"),
        ("server:\n  body_timeout: 0s\n".to_owned(), "server.body_timeout"),
        ("server:\n  header_timeout: 0s\n".to_owned(), "server.header_timeout"),
        ("server:\n  keepalive_timeout: 0s\n".to_owned(), "server.keepalive_timeout"),
        ("server:\n  http2_keepalive_interval: 0s\n".to_owned(), "server.http2_keepalive_interval"),
        (provider_timeout("connect"), "ai_gateway.providers[0].timeouts.connect"),
        (provider_timeout("first_byte"), "ai_gateway.providers[0].timeouts.first_byte"),
        (provider_timeout("idle"), "ai_gateway.providers[0].timeouts.idle"),
        (provider_timeout("request"), "ai_gateway.providers[0].timeouts.request"),
        ("ai_gateway:\n  routing:\n    health:\n      cooldown: 0ms\n".to_owned(), "ai_gateway.routing.health.cooldown"),
        (
            "ai_gateway:\n  routing:\n    health:\n      probe_interval: 0ms\n".to_owned(),
            "ai_gateway.routing.health.probe_interval",
        ),
        (
            "routes:\n  - id: ai\n    path: /v1/*\n    ai_gateway: true\n    routing:\n      health:\n        cooldown: 0s\n"
                .to_owned(),
            "routes[0].routing.health.cooldown",
        ),
    ];
    for (fragment, key) in cases {
        assert_eq!(invalid(&fragment).1, format!("{key}: must be greater than 0"), "{fragment}");
    }
}

#[test]
fn huge_durations_are_refused_naming_the_key_and_the_bound() {
    let mock = |setting: &str| {
        format!(
            "ai_gateway:\n  providers:\n    - name: m\n      type: mock\n      mock:\n        {setting}\n"
        )
    };
    let cases = [
        (format!("server:\n  request_timeout: {HUGE}\n"), "server.request_timeout", "24h"),
        (format!("server:\n  shutdown_timeout: {HUGE}\n"), "server.shutdown_timeout", "24h"),
        (
            format!(
                "ai_gateway:\n  providers:\n    - {{name: o, type: openai, api_key: k}}\n    - {{name: a, type: anthropic, api_key: k, timeouts: {{idle: {HUGE}}}}}\n"
            ),
            "ai_gateway.providers[1].timeouts.idle",
            "24h",
        ),
        (
            "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k, timeouts: {request: 25h}}\n"
                .to_owned(),
            "ai_gateway.providers[0].timeouts.request",
            "24h",
        ),
        (mock(&format!("latency: {HUGE}")), "ai_gateway.providers[0].mock.latency", "1h"),
        (mock("chunk_delay: 61m"), "ai_gateway.providers[0].mock.chunk_delay", "1h"),
        (
            format!("ai_gateway:\n  routing:\n    failover:\n      backoff: {HUGE}\n"),
            "ai_gateway.routing.failover.backoff",
            "1h",
        ),
        (
            "ai_gateway:\n  routing:\n    failover:\n      max_backoff: 2h\n".to_owned(),
            "ai_gateway.routing.failover.max_backoff",
            "1h",
        ),
        (
            format!("ai_gateway:\n  routing:\n    health:\n      cooldown: {HUGE}\n"),
            "ai_gateway.routing.health.cooldown",
            "24h",
        ),
        (
            "ai_gateway:\n  routing:\n    health:\n      probe_interval: 2days\n".to_owned(),
            "ai_gateway.routing.health.probe_interval",
            "24h",
        ),
        (
            "ai_gateway:\n  streaming:\n    flush_interval: 61s\n".to_owned(),
            "ai_gateway.streaming.flush_interval",
            "1m",
        ),
        (
            format!("ai_gateway:\n  token_accounting:\n    flush_interval: {HUGE}\n"),
            "ai_gateway.token_accounting.flush_interval",
            "1h",
        ),
    ];
    for (fragment, key, bound) in cases {
        let (found, text) = invalid(&fragment);
        assert_eq!(found, key, "{fragment}");
        let prefix = format!("{key}: must be at most {bound}, not ");
        assert!(text.starts_with(&prefix), "expected `{prefix}...`, got {text}");
    }
    assert_eq!(
        invalid("server:\n  request_timeout: 25h\n").1,
        "server.request_timeout: must be at most 24h, not 1day 1h"
    );
}

#[test]
fn durations_at_their_bounds_load() {
    let config = load_ok(
        "server:\n  request_timeout: 24h\n  shutdown_timeout: 1ms\nai_gateway:\n  providers:\n    - {name: m, type: mock, timeouts: {connect: 24h, first_byte: 24h, idle: 24h, request: 24h}, mock: {latency: 1h, chunk_delay: 0ms}}\n  routing:\n    failover: {backoff: 0ms, max_backoff: 1h}\n    health: {cooldown: 24h, probe_interval: 1ms}\n  streaming:\n    flush_interval: 1m\n  token_accounting:\n    flush_interval: 0ms\n",
    );
    assert_eq!(config.server.request_timeout, Duration::from_secs(24 * 3600));
    assert_eq!(config.ai_gateway.streaming.flush_interval, Duration::from_secs(60));
    assert_eq!(config.ai_gateway.token_accounting.flush_interval, Duration::ZERO);
}

#[test]
fn workers_are_bounded_by_the_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let limit = (8 * cpus).min(1024);
    let (key, text) = invalid("server:\n  workers: 2000\n");
    assert_eq!(key, "server.workers");
    assert_eq!(
        text,
        format!(
            "server.workers: 2000 is more than the limit of {limit} (8 per CPU, {cpus} CPUs here, 1024 at most); \
             leave it unset for one per CPU"
        )
    );
    let at_limit = load_ok(&format!("server:\n  workers: {limit}\n"));
    assert_eq!(at_limit.server.workers.map(std::num::NonZeroUsize::get), Some(limit));
    assert_eq!(invalid_key(&format!("server:\n  workers: {}\n", limit + 1)), "server.workers");
}

#[test]
fn counts_that_could_exhaust_the_gateway_are_bounded() {
    let cases = [
        (
            "server:\n  max_body_bytes: 1073741825\n",
            "server.max_body_bytes: must be at most 1073741824, not 1073741825",
        ),
        (
            "ai_gateway:\n  routing:\n    failover:\n      max_retries: 4294967295\n",
            "ai_gateway.routing.failover.max_retries: must be at most 10, not 4294967295",
        ),
        (
            "ai_gateway:\n  routing:\n    health:\n      failure_threshold: 0\n",
            "ai_gateway.routing.health.failure_threshold: must be greater than 0",
        ),
        (
            "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k, pool_max_idle_per_host: 100000}\n",
            "ai_gateway.providers[0].pool_max_idle_per_host: must be at most 16384, not 100000",
        ),
        (
            "ai_gateway:\n  routing:\n    strategy: weighted\n    providers:\n      - {name: openai, weight: 4294967295}\n",
            "ai_gateway.routing.providers[0].weight: must be at most 1000000, not 4294967295",
        ),
    ];
    for (fragment, expected) in cases {
        assert_eq!(invalid(fragment).1, expected, "{fragment}");
    }
    let config = load_ok(
        "server:\n  max_body_bytes: 1073741824\nai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k, pool_max_idle_per_host: 0}\n  routing:\n    failover: {max_retries: 10}\n    health: {failure_threshold: 1}\n    providers:\n      - {name: o, weight: 1000000}\n",
    );
    assert_eq!(config.ai_gateway.routing.failover.max_retries, 10);
}

#[test]
fn prices_are_finite_and_bounded_everywhere() {
    let cases = [
        (
            "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k, cost_per_1k_output: 2000000}\n",
            "ai_gateway.providers[0].cost_per_1k_output: must be a price of at most 1000000",
        ),
        (
            "ai_gateway:\n  routing:\n    providers:\n      - {name: openai, cost_per_1k_input: -1}\n",
            "ai_gateway.routing.providers[0].cost_per_1k_input: must be a price of 0 or more",
        ),
        (
            "ai_gateway:\n  token_accounting:\n    prices:\n      my-model: {cost_per_1k_input: -0.5, cost_per_1k_output: 1}\n",
            "ai_gateway.token_accounting.prices.my-model.cost_per_1k_input: must be a price of 0 or more",
        ),
        (
            "ai_gateway:\n  token_accounting:\n    prices:\n      my-model: {cost_per_1k_input: 1, cost_per_1k_output: 1, cost_per_1k_cached_input: 1e300}\n",
            "ai_gateway.token_accounting.prices.my-model.cost_per_1k_cached_input: must be a price of at most 1000000",
        ),
    ];
    for (fragment, expected) in cases {
        assert_eq!(invalid(fragment).1, expected, "{fragment}");
    }
}

#[test]
fn a_provider_priced_twice_differently_is_refused_naming_both_keys() {
    let one_price =
        "a provider has one price, used for routing and billing alike: write it once, or the same everywhere";
    let cases = [
        (
            "ai_gateway:\n  routing:\n    strategy: cost\n    providers:\n      - {name: openai, cost_per_1k_input: 0.01, cost_per_1k_output: 0.03}\nroutes:\n  - id: cheap\n    path: /v1/*\n    ai_gateway: true\n    routing:\n      providers:\n        - {name: anthropic}\n        - {name: openai, cost_per_1k_input: 0.005, cost_per_1k_output: 0.03}\n",
            format!(
                "routes[0].routing.providers[1].cost_per_1k_input: provider \"openai\" costs 0.005 here but 0.01 at ai_gateway.routing.providers[0].cost_per_1k_input; {one_price}"
            ),
        ),
        (
            "ai_gateway:\n  providers:\n    - {name: openai, type: openai, api_key: k, cost_per_1k_output: 0.03}\n  routing:\n    providers:\n      - {name: openai, cost_per_1k_input: 0.01, cost_per_1k_output: 0.02}\n",
            format!(
                "ai_gateway.routing.providers[0].cost_per_1k_output: provider \"openai\" costs 0.02 here but 0.03 at ai_gateway.providers[0].cost_per_1k_output; {one_price}"
            ),
        ),
    ];
    for (fragment, expected) in cases {
        assert_eq!(invalid(fragment).1, expected, "{fragment}");
    }
    // The same price written in several places, or its two halves in two places, is one price.
    load_ok(
        "ai_gateway:\n  providers:\n    - {name: openai, type: openai, api_key: k, cost_per_1k_input: 0.01}\n  routing:\n    providers:\n      - {name: openai, cost_per_1k_input: 0.01, cost_per_1k_output: 0.03}\nroutes:\n  - id: all\n    path: /v1/*\n    ai_gateway: true\n    routing:\n      providers:\n        - {name: openai, cost_per_1k_output: 0.03}\n",
    );
}

// ---------------------------------------------------------------- files named in the config

/// Makes a FIFO at `path`; false when `mkfifo` is not available here.
fn mkfifo(path: &std::path::Path) -> bool {
    std::process::Command::new("mkfifo").arg(path).status().is_ok_and(|status| status.success())
}

/// A sparse file one byte over `limit` (nothing is written, so it costs no disk).
fn file_over(path: &std::path::Path, limit: u64) {
    let file = std::fs::File::create(path).unwrap_or_else(|error| panic!("{error}"));
    file.set_len(limit + 1).unwrap_or_else(|error| panic!("{error}"));
}

/// The error `Gateway::from_config` gives for BASE + `fragment`.
fn gateway_error(fragment: &str) -> String {
    let config = load_ok(fragment);
    match loom_gateway::Gateway::from_config(&config) {
        Ok(_) => panic!("the gateway was built from:\n{fragment}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn tokenizer_files_must_be_small_regular_files() {
    let tokenizer = |path: &std::path::Path| {
        format!("ai_gateway:\n  token_accounting:\n    tokenizers:\n      my-model: {}\n", path.display())
    };
    let prefix = "ai_gateway.token_accounting.tokenizers.my-model: cannot load tokenizer";
    assert_eq!(
        gateway_error(&tokenizer(std::path::Path::new("/dev/zero"))),
        format!("{prefix} /dev/zero: not a regular file (a character device)")
    );
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let big = dir.path().join("big.json");
    file_over(&big, 256 * 1024 * 1024);
    assert_eq!(
        gateway_error(&tokenizer(&big)),
        format!("{prefix} {}: larger than the limit of 268435456 bytes", big.display())
    );
    let fifo = dir.path().join("fifo.json");
    if mkfifo(&fifo) {
        assert_eq!(
            gateway_error(&tokenizer(&fifo)),
            format!("{prefix} {}: not a regular file (a FIFO)", fifo.display())
        );
    }
}

#[test]
fn vertex_credentials_files_must_be_small_regular_files() {
    let vertex = |path: &std::path::Path| {
        format!(
            "ai_gateway:\n  providers:\n    - {{name: v, type: vertex, vertex: {{project: p, credentials_file: {}}}}}\n",
            path.display()
        )
    };
    let prefix = "ai_gateway.providers: provider `v`: cannot read credentials_file";
    assert_eq!(
        gateway_error(&vertex(std::path::Path::new("/dev/zero"))),
        format!("{prefix} `/dev/zero`: not a regular file (a character device)")
    );
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let big = dir.path().join("key.json");
    file_over(&big, 1024 * 1024);
    assert_eq!(
        gateway_error(&vertex(&big)),
        format!("{prefix} `{}`: larger than the limit of 1048576 bytes", big.display())
    );
    let fifo = dir.path().join("fifo.json");
    if mkfifo(&fifo) {
        assert_eq!(
            gateway_error(&vertex(&fifo)),
            format!("{prefix} `{}`: not a regular file (a FIFO)", fifo.display())
        );
    }
}

// ---------------------------------------------------------------- layered files

/// A fragment laid over a base: later keys win, maps merge, lists are replaced.
#[test]
fn files_layer_in_order_and_errors_name_the_file_that_set_the_key() {
    let base = std::path::Path::new("base.yaml");
    let fragment = std::path::Path::new("fragment.yaml");
    let config = ConfigBuilder::new(&env)
        .yaml_from(base, BASE)
        .yaml_from(
            fragment,
            "server:\n  listen: 127.0.0.1:7000\nai_gateway:\n  routing:\n    strategy: round_robin\n",
        )
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.server.listen, "127.0.0.1:7000".parse::<SocketAddr>().unwrap());
    assert_eq!(config.ai_gateway.routing.strategy, Strategy::RoundRobin);
    assert_eq!(config.ai_gateway.providers.len(), 2, "the base's providers stay");

    let file_and_key = |error: &ConfigError| match error {
        ConfigError::InFile { path, error } => (Some(path.clone()), error.key().map(str::to_owned)),
        other => (None, other.key().map(str::to_owned)),
    };
    // A rule broken in each file, and one in a block the fragment only merges into.
    let Err(error) = ConfigBuilder::new(&env)
        .yaml_from(base, format!("{BASE}  streaming:\n    flush_interval: 2m\n"))
        .yaml_from(
            fragment,
            "server:\n  workers: 5000\nai_gateway:\n  routing:\n    providers:\n      - name: nope\n",
        )
        .build()
    else {
        panic!("rules are broken")
    };
    let found: Vec<_> = error.problems().iter().map(file_and_key).collect();
    assert_eq!(
        found,
        [
            (Some(fragment.to_path_buf()), Some("server.workers".to_owned())),
            (Some(fragment.to_path_buf()), Some("ai_gateway.routing.providers[0].name".to_owned())),
            (Some(base.to_path_buf()), Some("ai_gateway.streaming.flush_interval".to_owned())),
        ]
    );
    let text = error.to_string();
    assert!(
        text.lines()
            .nth(2)
            .is_some_and(|line| line.starts_with("base.yaml: ai_gateway.streaming.flush_interval: ")),
        "{text}"
    );

    // A missing key is named by the file of the block that lacks it.
    let Err(error) = ConfigBuilder::new(&no_env)
        .yaml_from(base, "ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n")
        .yaml_from(fragment, "ai_gateway:\n  providers:\n    - name: openai\n      type: openai\n")
        .build()
    else {
        panic!("no api key")
    };
    assert_eq!(
        file_and_key(&error),
        (Some(fragment.to_path_buf()), Some("ai_gateway.providers[0].api_key".to_owned()))
    );

    // Parsing stops at the first error, named by its file; malformed YAML too.
    let Err(error) =
        ConfigBuilder::new(&env).yaml_from(base, BASE).yaml_from(fragment, "server:\n  lisen: 1\n").build()
    else {
        panic!("unknown key")
    };
    assert_eq!(file_and_key(&error), (Some(fragment.to_path_buf()), Some("server.lisen".to_owned())));
    let Err(error) =
        ConfigBuilder::new(&env).yaml_from(base, "server: [\n").yaml_from(fragment, BASE).build()
    else {
        panic!("bad YAML")
    };
    assert!(error.to_string().starts_with("base.yaml: invalid YAML: "), "{error}");

    // A key no file sets, and one a LOOM_ variable set, name no file.
    let Err(error) = ConfigBuilder::new(&env).yaml_from(base, "server:\n  listen: 127.0.0.1:1\n").build()
    else {
        panic!("no providers")
    };
    assert_eq!(file_and_key(&error), (None, Some("ai_gateway.providers".to_owned())));
    let Err(error) = ConfigBuilder::new(&env)
        .yaml_from(base, format!("{BASE}server:\n  workers: 4\n"))
        .env_overrides(vars(&[("LOOM_SERVER__WORKERS", "5000")]))
        .build()
    else {
        panic!("too many workers")
    };
    assert_eq!(file_and_key(&error), (None, Some("server.workers".to_owned())));
}

/// `LoomConfig::load_files` reads each file in order (it reads the process environment,
/// so `process_environment_and_files` calls it).
fn load_files_reads_each_file_in_order() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let base = dir.path().join("base.yaml");
    let fragment = dir.path().join("fragment.yaml");
    std::fs::write(&base, "ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n").unwrap();
    std::fs::write(&fragment, "logging:\n  format: json\n").unwrap();
    let config = LoomConfig::load_files(&[&base, &fragment]).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        (config.ai_gateway.providers[0].name.as_str(), config.logging.format),
        ("mock", LogFormat::Json)
    );
    let missing = dir.path().join("missing.yaml");
    let Err(error @ ConfigError::Io { .. }) = LoomConfig::load_files(&[&base, &missing]) else {
        panic!("a missing file")
    };
    assert!(
        error.to_string().starts_with(&format!("cannot read config file {}: ", missing.display())),
        "{error}"
    );
}

// ---------------------------------------------------------------- defaults, summary

#[test]
fn defaults() {
    let config = load_ok("");
    assert_eq!(config.server.listen, "0.0.0.0:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(config.server.max_body_bytes, 10_485_760);
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.server.request_timeout, Duration::from_secs(600));
    assert_eq!(config.admin.listen, "127.0.0.1:9091".parse::<SocketAddr>().unwrap());
    assert!(config.admin.enabled);
    assert_eq!(config.logging.level, "info");
    assert_eq!(config.logging.format, LogFormat::Text);
    let ai = &config.ai_gateway;
    assert!(ai.enabled);
    assert_eq!(ai.routing.strategy, Strategy::Priority);
    assert!(!ai.routing.failover.enabled);
    assert_eq!(ai.routing.failover.retry_codes, [429, 500, 502, 503]);
    assert_eq!(ai.routing.failover.max_retries, 2);
    assert!(ai.streaming.enabled);
    assert_eq!(ai.streaming.flush_interval, Duration::ZERO);
    assert!(config.routes.is_empty());
    assert_eq!(
        config.effective_routes(),
        [RouteConfig {
            id: "ai".into(),
            path: "/v1/*".into(),
            ai_gateway: true,
            routing: None,
            checks: None,
            cache: None
        }]
    );
    let targets = ai.routing.targets_by_priority(&ai.providers);
    assert_eq!(targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["openai", "anthropic"]);
}

#[test]
fn summary_shows_the_setup_but_never_a_key() {
    let config = load_ok(
        "ai_gateway:\n  providers:\n    - {name: openai, type: openai, api_key: \"${OPENAI_API_KEY}\", base_url: \"https://user:pw@api.example.com/v1?key=qs-secret\", models: [gpt-4o]}\n",
    );
    let summary = config.summary();
    for expected in [
        "0.0.0.0:8080",
        "127.0.0.1:9091",
        "openai",
        "https://api.example.com/v1",
        "gpt-4o",
        "priority",
        "/v1/*",
        "streaming",
    ] {
        assert!(summary.contains(expected), "summary lacks {expected}:\n{summary}");
    }
    for secret in ["sk-openai-secret-1", "pw", "qs-secret"] {
        assert!(!summary.contains(secret), "summary leaks {secret}:\n{summary}");
    }
}

#[test]
fn inactive_features_are_listed() {
    let web_route = "routes:\n  - {id: ai, path: /v1/*, ai_gateway: true}\n  - {id: web, path: /web/*}\n";
    let config = load_ok(web_route);
    assert!(
        config
            .inactive_features()
            .iter()
            .any(|note| note.contains("routes[1] (web): ai_gateway: false is configured, not active yet")),
        "{:?}",
        config.inactive_features()
    );
    let only_active = "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k}\n    - {name: m, type: mock}\n    - {name: l, type: local, format: openai, base_url: \"http://h:1\"}\n    - {name: a, type: anthropic, api_key: k}\n    - {name: la, type: local, format: anthropic, base_url: \"http://h:2\"}\n    - {name: z, type: azure, api_key: k, base_url: \"https://r.openai.azure.com\", api_version: \"2024-02-15-preview\"}\n    - {name: g, type: gemini, api_key: k}\n    - {name: v, type: vertex, vertex: {project: p, access_token: t}}\n";
    let config = load_ok(only_active);
    assert_eq!(config.inactive_features(), Vec::<String>::new());
    assert!(config.ai_gateway.providers.iter().all(provider_is_active));
    assert_eq!(config.ai_gateway.providers[4].format, Some(WireFormat::Anthropic));
}

// ---------------------------------------------------------------- examples and files

#[test]
fn quickstart_example_loads_without_any_environment() {
    let yaml = std::fs::read_to_string(repo_file("examples/quickstart.yaml"))
        .unwrap_or_else(|error| panic!("{error}"));
    let config =
        LoomConfig::from_yaml_str(&yaml, &no_env).unwrap_or_else(|error| panic!("quickstart: {error}"));
    let mock = &config.ai_gateway.providers[0];
    assert_eq!((mock.name.as_str(), mock.kind), ("mock", ProviderType::Mock));
    assert!(mock.models.is_empty() && mock.serves("gpt-4o-mini") && mock.serves("text-embedding-3-small"));
    assert_eq!(mock.mock.as_ref().map(|settings| settings.latency), Some(Duration::ZERO));
    assert_eq!(config.ai_gateway.streaming.flush_interval, Duration::ZERO);
    assert_eq!(config.effective_routes()[0].path, "/v1/*");
    assert!(config.inactive_features().is_empty(), "{:?}", config.inactive_features());
}

#[test]
fn openai_example_loads_with_its_key_set() {
    let yaml =
        std::fs::read_to_string(repo_file("examples/openai.yaml")).unwrap_or_else(|error| panic!("{error}"));
    let config =
        LoomConfig::from_yaml_str(&yaml, &env).unwrap_or_else(|error| panic!("openai example: {error}"));
    let openai = &config.ai_gateway.providers[0];
    assert_eq!(openai.kind, ProviderType::Openai);
    assert_eq!(openai.api_key.as_ref().map(|key| key.expose()), Some("sk-openai-secret-1"));
    assert!(openai.serves("gpt-4o-mini") && !openai.serves("claude-3-opus"));
    assert!(config.inactive_features().is_empty(), "{:?}", config.inactive_features());

    let Err(error) = LoomConfig::from_yaml_str(&yaml, &no_env) else { panic!("no key set") };
    assert_eq!(
        error.to_string(),
        "ai_gateway.providers[0].api_key: environment variable OPENAI_API_KEY is not set"
    );
}

/// The only test that touches the process environment (see the module docs).
#[test]
fn process_environment_and_files() {
    let missing = repo_file("examples/does-not-exist.yaml");
    let Err(error @ ConfigError::Io { .. }) = LoomConfig::load(&missing) else { panic!("missing file") };
    assert!(error.to_string().contains("does-not-exist.yaml"), "{error}");

    let quickstart =
        LoomConfig::load(&repo_file("examples/quickstart.yaml")).unwrap_or_else(|error| panic!("{error}"));
    load_files_reads_each_file_in_order();
    assert_eq!(quickstart.ai_gateway.providers[0].name, "mock");

    // The config file itself: a regular file of at most 16 MiB, never read from a device
    // or waited on as a FIFO.
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let refused = |path: &std::path::Path| match LoomConfig::load(path) {
        Err(error @ ConfigError::Io { .. }) => error.to_string(),
        Err(other) => panic!("expected a read error for {}, got {other}", path.display()),
        Ok(_) => panic!("{} loaded", path.display()),
    };
    assert_eq!(
        refused(std::path::Path::new("/dev/zero")),
        "cannot read config file /dev/zero: not a regular file (a character device)"
    );
    let big = dir.path().join("big.yaml");
    file_over(&big, 16 * 1024 * 1024);
    assert_eq!(
        refused(&big),
        format!("cannot read config file {}: larger than the limit of 16777216 bytes", big.display())
    );
    let fifo = dir.path().join("fifo.yaml");
    if mkfifo(&fifo) {
        assert_eq!(
            refused(&fifo),
            format!("cannot read config file {}: not a regular file (a FIFO)", fifo.display())
        );
    }

    let path = dir.path().join("loom.yaml");
    let yaml = "ai_gateway:\n  providers:\n    - name: openai\n      type: openai\n      api_key: ${CONFIG_ERRORS_TEST_KEY}\n";
    std::fs::write(&path, yaml).unwrap_or_else(|error| panic!("{error}"));
    // SAFETY: no other test in this binary reads or writes the process environment.
    unsafe {
        std::env::set_var("CONFIG_ERRORS_TEST_KEY", "sk-process-env");
        std::env::set_var("LOOM_SERVER__LISTEN", "127.0.0.1:9000");
        std::env::set_var("LOOM_CONFIG", "ignored.yaml");
    }
    let loaded = LoomConfig::load(&path);
    unsafe {
        std::env::remove_var("CONFIG_ERRORS_TEST_KEY");
        std::env::remove_var("LOOM_SERVER__LISTEN");
        std::env::remove_var("LOOM_CONFIG");
    }
    let config = loaded.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.server.listen, "127.0.0.1:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(
        config.ai_gateway.providers[0].api_key.as_ref().map(|key| key.expose()),
        Some("sk-process-env")
    );
}

#[test]
fn connection_and_buffer_limits_are_bounded() {
    let cases = [
        (
            "server:\n  max_body_bytes: 2048\n  max_buffered_body_bytes: 1024\n",
            "server.max_buffered_body_bytes",
            "must be at least 2048",
        ),
        (
            "server:\n  http2_max_concurrent_streams: 0\n",
            "server.http2_max_concurrent_streams",
            "must be greater than 0",
        ),
        (
            "server:\n  http2_max_concurrent_streams: 100000\n",
            "server.http2_max_concurrent_streams",
            "must be at most 10000, not 100000",
        ),
        (
            "server:\n  max_connections: 2000000\n",
            "server.max_connections",
            "must be at most 1000000, not 2000000",
        ),
    ];
    for (yaml, key, message) in cases {
        let (found, text) = invalid(yaml);
        assert_eq!(found, key, "{yaml}");
        assert!(text.ends_with(message), "{yaml}: {text}");
    }
}

#[test]
fn an_embedder_without_its_model_refuses_to_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let error = gateway_error(&format!("ai_gateway:\n  embedder: {{path: {}}}\n", dir.path().display()));
    assert!(error.starts_with("ai_gateway.embedder.path: "), "{error}");
    assert!(error.contains("config.json"), "{error}");
}

// ---------------------------------------------------------------- cache

#[test]
fn cache_settings_are_validated_where_they_are_written() {
    for (yaml, key) in [
        ("ai_gateway:\n  cache:\n    enabeld: true\n", "ai_gateway.cache.enabeld"),
        ("ai_gateway:\n  cache:\n    namespace: tenant\n", "ai_gateway.cache.namespace"),
        ("ai_gateway:\n  cache:\n    ttl: 0s\n", "ai_gateway.cache.ttl"),
        ("ai_gateway:\n  cache:\n    max_entry_bytes: 0\n", "ai_gateway.cache.max_entry_bytes"),
        (
            "ai_gateway:\n  cache:\n    semantic:\n      similarity_threshold: 1.5\n",
            "ai_gateway.cache.semantic.similarity_threshold",
        ),
        // Semantic lookups embed questions: they need the model.
        (
            "ai_gateway:\n  cache:\n    enabled: true\n    semantic:\n      enabled: true\n",
            "ai_gateway.cache.semantic.enabled",
        ),
        (
            "routes:\n  - id: a\n    path: /v1/*\n    ai_gateway: true\n    cache:\n      semantic: {similarity_threshold: 0}\n",
            "routes[0].cache.semantic.similarity_threshold",
        ),
        (
            "routes:\n  - id: a\n    path: /v1/*\n    ai_gateway: true\n    cache:\n      ttl: 0s\n",
            "routes[0].cache.ttl",
        ),
        ("routes:\n  - id: a\n    path: /web/*\n    cache:\n      enabled: true\n", "routes[0].cache"),
    ] {
        let found = match load(yaml) {
            Err(error) => error.key().map(str::to_owned),
            Ok(_) => None,
        };
        assert_eq!(found.as_deref(), Some(key), "{yaml}");
    }
    let config = load_ok("ai_gateway:\n  cache:\n    enabled: true\n    namespace: team\n    ttl: 5m\n");
    assert_eq!(config.ai_gateway.cache.ttl, Duration::from_secs(300));
}
