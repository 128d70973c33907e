//! Property-based fuzzing of the config loader: whatever the YAML, loading never panics
//! and ends in a config or a `ConfigError`, and no error shows the value of a secret
//! variable.
//!
//! The inputs are arbitrary text, valid configs cut short or with a byte changed, and
//! configs built from the real key names with random values (durations, numbers,
//! addresses, `${VAR}` placeholders...), written as block YAML or as JSON, with random
//! `LOOM_` overrides on top.

use loom_gateway::config::{ConfigBuilder, ConfigError, LoomConfig};
use proptest::prelude::*;
use serde_json::Value;

mod fuzz_support;

use fuzz_support::{Field, always, config};

/// The value of `${SECRET}`; no error may show it.
const SECRET: &str = "sk-fuzz-secret-0123456789";

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some(SECRET.to_owned()),
        "PORT" => Some("8080".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Scalar values the config's keys take, right and wrong.
const WORDS: &[&str] = &[
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "vertex",
    "local",
    "mock",
    "priority",
    "round_robin",
    "weighted",
    "cost",
    "latency",
    "json",
    "text",
    "info",
    "debug",
    "0s",
    "1ms",
    "30s",
    "5m",
    "1h 2m",
    "-1s",
    "18446744073709551615s",
    "1ns",
    "soon",
    "127.0.0.1:0",
    "0.0.0.0:8080",
    "[::1]:9090",
    "127.0.0.1:99999",
    "localhost:80",
    "http://127.0.0.1:8080/v1",
    "https://api.openai.com/v1",
    "ftp://example.com",
    "/v1/*",
    "/ai/*",
    "/v1/**",
    "v1",
    "/*",
    "cl100k_base",
    "o200k_base",
    "/nonexistent/tokenizer.json",
    "2024-10-21",
    "${SECRET}",
    "Bearer ${SECRET}",
    "${PORT}",
    "${EMPTY}",
    "${MISSING}",
    "${MISSING:-fallback}",
    "${",
    "$${SECRET}",
    "${bad name}",
    "",
    "é\u{1F600}",
];

/// Keys of every level of the config, for random extra fields and overrides.
const KEYS: &[&str] = &[
    "server",
    "listen",
    "max_body_bytes",
    "shutdown_timeout",
    "request_timeout",
    "workers",
    "admin",
    "enabled",
    "logging",
    "level",
    "format",
    "ai_gateway",
    "providers",
    "name",
    "type",
    "api_key",
    "base_url",
    "models",
    "api_version",
    "deployments",
    "headers",
    "timeouts",
    "connect",
    "first_byte",
    "idle",
    "request",
    "pool_max_idle_per_host",
    "mock",
    "latency",
    "chunk_delay",
    "reply",
    "vertex",
    "project",
    "location",
    "routing",
    "strategy",
    "failover",
    "retry_codes",
    "max_retries",
    "backoff",
    "max_backoff",
    "health",
    "failure_threshold",
    "cooldown",
    "probe_interval",
    "priority",
    "weight",
    "cost_per_1k_input",
    "cost_per_1k_output",
    "model_mapping",
    "streaming",
    "flush_interval",
    "token_accounting",
    "ledger_path",
    "prices",
    "tokenizers",
    "count_input",
    "routes",
    "id",
    "path",
];

fn word() -> BoxedStrategy<Value> {
    prop_oneof![6 => proptest::sample::select(WORDS).prop_map(Value::from), 1 => any::<String>().prop_map(Value::from)]
        .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        (0u32..100).prop_map(Value::from),
        proptest::sample::select(vec![0i64, -1, 65535, 65536, i64::from(u32::MAX) + 1, i64::MAX, i64::MIN])
            .prop_map(Value::from),
        any::<f64>().prop_map(|float| serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number)),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), word()].boxed()
}

/// Any value whose maps use the real key names.
fn value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..4).prop_map(|fields| {
                    Value::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
                }),
            ]
        })
        .boxed()
}

/// `valid` mostly, sometimes (1 in 60) any value. A config has dozens of keys, so most
/// generated configs stay loadable and reach validation.
fn mostly(valid: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![59 => valid, 1 => value()].boxed()
}

/// One of `valid` mostly, else (1 in 20) one of `wrong`, else (rarely) any value.
fn pick(valid: &[&'static str], wrong: &[&'static str]) -> BoxedStrategy<Value> {
    let valid = proptest::sample::select(valid.to_vec()).prop_map(Value::from);
    if wrong.is_empty() {
        return mostly(valid);
    }
    let wrong = proptest::sample::select(wrong.to_vec()).prop_map(Value::from);
    mostly(prop_oneof![19 => valid, 1 => wrong])
}

fn duration() -> BoxedStrategy<Value> {
    pick(&["0s", "1ms", "30s", "5m", "1h 2m", "1ns"], &["-1s", "18446744073709551615s", "soon", ""])
}

fn int() -> BoxedStrategy<Value> {
    mostly(prop_oneof![19 => (1u32..10).prop_map(Value::from), 1 => number()])
}

/// An HTTP status to retry on: mostly an error status, sometimes any number.
fn status() -> BoxedStrategy<Value> {
    mostly(prop_oneof![9 => (400u16..600).prop_map(Value::from), 1 => number()])
}

fn boolean() -> BoxedStrategy<Value> {
    mostly(any::<bool>().prop_map(Value::Bool))
}

/// A string: plain, a placeholder, or (1 in 20) a broken placeholder or any text.
fn text() -> BoxedStrategy<Value> {
    let valid = proptest::sample::select(vec![
        "gpt-4o",
        "hello",
        "v1",
        "${SECRET}",
        "${MISSING:-fallback}",
        "$${SECRET}",
    ]);
    let wrong = prop_oneof![
        proptest::sample::select(vec!["${MISSING}", "${", "${bad name}", ""]).prop_map(str::to_owned),
        any::<String>(),
    ];
    mostly(prop_oneof![19 => valid.prop_map(Value::from), 1 => wrong.prop_map(Value::from)])
}

/// Provider names: a few, so routing targets and mappings name defined ones.
const NAMES: &[&str] = &["openai", "claude", "gemini", "demo"];

fn name() -> BoxedStrategy<Value> {
    pick(NAMES, &["", "unknown"])
}

/// A map from provider names to strings.
fn per_provider() -> BoxedStrategy<Value> {
    mostly(
        proptest::collection::btree_map(
            proptest::sample::select(NAMES).prop_map(str::to_owned),
            text(),
            0..3,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect())),
    )
}

fn tokenizers() -> BoxedStrategy<Value> {
    let spec = pick(&["o200k_base", "cl100k_base"], &["/nonexistent/tokenizer.json", "${SECRET}"]);
    mostly(
        proptest::collection::btree_map(
            proptest::sample::select(vec!["gpt-4o", "llama*"]).prop_map(str::to_owned),
            spec,
            0..2,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect())),
    )
}

/// A field present in 1 map of 2.
fn often(key: &'static str, value: BoxedStrategy<Value>) -> Field {
    fuzz_support::sometimes(key, 0.5, value)
}

/// A map of `fields`, plus maybe (1 in 30) a random one.
fn map(fields: Vec<Field>) -> BoxedStrategy<Value> {
    fuzz_support::object(fields, KEYS, value())
}

fn list(item: BoxedStrategy<Value>, sizes: std::ops::Range<usize>) -> BoxedStrategy<Value> {
    mostly(proptest::collection::vec(item, sizes).prop_map(Value::Array))
}

fn strings() -> BoxedStrategy<Value> {
    list(text(), 0..3)
}

fn string_map() -> BoxedStrategy<Value> {
    mostly(
        proptest::collection::btree_map(proptest::sample::select(KEYS).prop_map(str::to_owned), text(), 0..3)
            .prop_map(|map| Value::Object(map.into_iter().collect())),
    )
}

fn timeouts() -> BoxedStrategy<Value> {
    map(vec![
        often("connect", duration()),
        often("first_byte", duration()),
        often("idle", duration()),
        often("request", duration()),
    ])
}

/// A provider entry: mostly one of the fields its type takes, sometimes of every type's.
fn provider() -> BoxedStrategy<Value> {
    let api_key = || pick(&["${SECRET}", "sk-inline-key"], &["${MISSING}", "${EMPTY}"]);
    let base_url =
        || pick(&["http://127.0.0.1:8080/v1", "https://api.openai.com/v1"], &["ftp://x", "${SECRET}", ""]);
    let mock =
        || map(vec![often("latency", duration()), often("chunk_delay", duration()), often("reply", text())]);
    let vertex = || {
        map(vec![
            always("project", text()),
            often("location", text()),
            often("access_token", pick(&["${SECRET}"], &["${MISSING}"])),
        ])
    };
    let common = || {
        vec![
            always("name", name()),
            often("models", strings()),
            often("timeouts", timeouts()),
            often("pool_max_idle_per_host", int()),
        ]
    };
    let of_type = |kind: &'static str, fields: Vec<Field>| {
        let mut all = common();
        all.push(always("type", pick(&[kind], &["grok"])));
        all.extend(fields);
        map(all)
    };
    prop_oneof![
        2 => of_type("mock", vec![often("mock", mock())]),
        2 => of_type("openai", vec![always("api_key", api_key()), often("base_url", base_url()), often("headers", string_map())]),
        2 => of_type("anthropic", vec![always("api_key", api_key()), often("base_url", base_url()), often("default_max_tokens", int())]),
        1 => of_type("gemini", vec![always("api_key", api_key())]),
        1 => of_type("vertex", vec![always("vertex", vertex())]),
        1 => of_type("azure", vec![always("api_key", api_key()), always("base_url", base_url()), always("api_version", text()), often("deployments", string_map())]),
        1 => of_type("local", vec![always("base_url", base_url()), often("format", pick(&["openai", "anthropic"], &["gemini"]))]),
        1 => map(vec![
            always("name", name()),
            always("type", pick(&["openai", "azure", "anthropic", "gemini", "vertex", "local", "mock"], &["grok"])),
            often("api_key", api_key()),
            often("base_url", base_url()),
            often("api_version", text()),
            often("format", pick(&["openai", "anthropic"], &["gemini"])),
            often("deployments", string_map()),
            often("mock", mock()),
            often("vertex", vertex()),
        ]),
    ]
    .boxed()
}

fn routing() -> BoxedStrategy<Value> {
    let target = map(vec![
        always("name", name()),
        often("priority", int()),
        often("weight", int()),
        often("cost_per_1k_input", mostly(number())),
        often("cost_per_1k_output", mostly(number())),
    ]);
    map(vec![
        often("strategy", pick(&["priority", "round_robin", "weighted", "cost", "latency"], &["random"])),
        often(
            "failover",
            map(vec![
                often("enabled", boolean()),
                often("retry_codes", list(status(), 0..4)),
                often("max_retries", int()),
                often("backoff", duration()),
                often("max_backoff", duration()),
            ]),
        ),
        often(
            "health",
            map(vec![
                often("failure_threshold", int()),
                often("cooldown", duration()),
                often("probe_interval", duration()),
            ]),
        ),
        often("providers", list(target, 0..3)),
    ])
}

/// A whole config: every section, of mostly the right shapes.
fn config_tree() -> BoxedStrategy<Value> {
    let address =
        pick(&["127.0.0.1:0", "0.0.0.0:8080", "[::1]:9090"], &["127.0.0.1:99999", "localhost:80", "${PORT}"]);
    let prices = mostly(
        proptest::collection::btree_map(
            proptest::sample::select(vec!["gpt-4o", "claude", "*"]).prop_map(str::to_owned),
            map(vec![
                always("cost_per_1k_input", mostly(number())),
                always("cost_per_1k_output", mostly(number())),
                often("cost_per_1k_cached_input", mostly(number())),
            ]),
            0..3,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect())),
    );
    let ai_gateway = map(vec![
        often("enabled", boolean()),
        always("providers", list(provider(), 1..4)),
        often("routing", routing()),
        often(
            "model_mapping",
            mostly(
                proptest::collection::btree_map(
                    proptest::sample::select(vec!["gpt-4o", "fast"]).prop_map(str::to_owned),
                    per_provider(),
                    0..2,
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ),
        ),
        often("streaming", map(vec![often("enabled", boolean()), often("flush_interval", duration())])),
        often(
            "token_accounting",
            map(vec![
                often("flush_interval", duration()),
                often("prices", prices),
                often("tokenizers", tokenizers()),
                often("count_input", boolean()),
            ]),
        ),
    ]);
    let route = map(vec![
        always("id", text()),
        always("path", pick(&["/v1/*", "/ai/*", "/*", "/v1/chat/completions"], &["/v1/**", "v1", "/a b"])),
        often("ai_gateway", boolean()),
        often("routing", routing()),
    ]);
    map(vec![
        often(
            "server",
            map(vec![
                often("listen", address.clone()),
                often("max_body_bytes", int()),
                often("shutdown_timeout", duration()),
                often("request_timeout", duration()),
                often("workers", int()),
            ]),
        ),
        often("admin", map(vec![often("listen", address), often("enabled", boolean())])),
        often(
            "logging",
            map(vec![
                often("level", pick(&["info", "debug", "loom=trace"], &["loud"])),
                often("format", pick(&["json", "text"], &["xml"])),
            ]),
        ),
        always("ai_gateway", ai_gateway),
        often("routes", list(route, 0..3)),
    ])
}

/// `value` as YAML text: block style (`key: value` lines), or JSON (YAML's flow style).
fn yaml(value: &Value, block: bool) -> String {
    if !block {
        return value.to_string();
    }
    let mut out = String::new();
    write_block(value, 0, &mut out);
    out
}

fn write_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                out.push_str(&format!("{pad}{}:", scalar(&Value::String(key.clone()))));
                write_item(item, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                write_item(item, indent, out);
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// The rest of a `key:` or `-` line: a scalar after a space, or a nested block below.
fn write_item(item: &Value, indent: usize, out: &mut String) {
    let nested = matches!(item, Value::Object(map) if !map.is_empty())
        || matches!(item, Value::Array(items) if !items.is_empty());
    if nested {
        out.push('\n');
        write_block(item, indent + 2, out);
    } else {
        out.push_str(&format!(" {}\n", scalar(item)));
    }
}

/// A scalar, plain where YAML reads it back as the same string, else double-quoted.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => {
            let plain = text
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphanumeric() || "/$".contains(first))
                && text.chars().all(|c| c.is_ascii_alphanumeric() || "/$_.:-{}*".contains(c))
                && !text.contains(": ");
            if plain { text.clone() } else { value.to_string() }
        }
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    }
}

/// Configs that load, to be cut short or changed a byte.
const VALID_CONFIGS: &[&str] = &[
    "server:\n  listen: 127.0.0.1:8080\n  request_timeout: 30s\nai_gateway:\n  providers:\n    - name: openai\n      type: openai\n      api_key: ${SECRET}\n      timeouts: {connect: 2s, idle: 30s}\n    - name: claude\n      type: anthropic\n      api_key: \"${SECRET}\"\n  routing:\n    strategy: weighted\n    failover: {enabled: true, retry_codes: [429, 500], backoff: 50ms}\n    providers:\n      - {name: openai, weight: 3}\n      - {name: claude, weight: 1}\n  model_mapping:\n    fast: {openai: gpt-4o-mini, claude: claude-haiku}\nroutes:\n  - id: ai\n    path: /v1/*\n    ai_gateway: true\n",
    "ai_gateway:\n  providers:\n    - name: demo\n      type: mock\n      mock: {latency: 5ms, reply: hi}\n  token_accounting:\n    prices:\n      gpt-4o: {cost_per_1k_input: 0.0025, cost_per_1k_output: 0.01}\n",
];

fn mangled() -> BoxedStrategy<String> {
    (proptest::sample::select(VALID_CONFIGS), any::<prop::sample::Index>(), any::<u8>(), any::<bool>())
        .prop_map(|(config, at, byte, replace)| {
            let mut bytes = config.as_bytes().to_vec();
            let at = at.index(bytes.len());
            if replace {
                bytes[at] = byte;
            } else {
                bytes.truncate(at);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .boxed()
}

/// YAML of every kind: arbitrary text, mangled valid configs, random values, configs.
fn document() -> BoxedStrategy<String> {
    prop_oneof![
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        2 => mangled(),
        1 => (value(), any::<bool>()).prop_map(|(value, block)| yaml(&value, block)),
        5 => (config_tree(), any::<bool>()).prop_map(|(value, block)| yaml(&value, block)),
    ]
    .boxed()
}

/// `LOOM_` override variables: real key paths (list indices included) and random values,
/// quoted or not. Without `escapes`, no value holds a backslash: figment panics on a quoted
/// value with a non-ASCII character before an escape (see `a_quoted_override_with_an_escape_loads_or_is_refused`).
fn overrides(escapes: bool) -> BoxedStrategy<Vec<(String, String)>> {
    let segment = prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_ascii_uppercase),
        1 => (0usize..4).prop_map(|index| index.to_string()),
        1 => Just(String::new()),
    ];
    let name =
        proptest::collection::vec(segment, 1..5).prop_map(|segments| format!("LOOM_{}", segments.join("__")));
    let raw = prop_oneof![
        proptest::sample::select(WORDS).prop_map(str::to_owned),
        any::<String>(),
        any::<String>().prop_map(|text| format!("\"{text}\"")),
        Just("[1, 2]".to_owned()),
        Just("{a: 1}".to_owned())
    ];
    let raw = raw.prop_filter("no escapes", move |raw| escapes || !raw.contains('\\'));
    proptest::collection::vec((name, raw), 0..3).boxed()
}

/// A load's result is a config or an error with a message.
fn check(result: &Result<LoomConfig, ConfigError>) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        prop_assert!(!error.to_string().is_empty(), "{error:?}");
    }
    Ok(())
}

/// An error shows no value substituted from the environment.
fn check_secret(result: &Result<LoomConfig, ConfigError>) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        let text = error.to_string();
        prop_assert!(!text.contains(SECRET), "the secret shows: {text}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_yaml_loads_or_is_refused(yaml in document()) {
        check(&LoomConfig::from_yaml_str(&yaml, &env))?;
    }

    #[test]
    fn overrides_on_any_yaml_load_or_are_refused(yaml in document(), vars in overrides(false)) {
        check(&ConfigBuilder::new(&env).yaml(yaml).env_overrides(vars).build())?;
    }

    #[test]
    fn overrides_with_escapes_load_or_are_refused(yaml in document(), vars in overrides(true)) {
        check(&ConfigBuilder::new(&env).yaml(yaml).env_overrides(vars).build())?;
    }

    #[test]
    fn no_error_shows_a_secret(yaml in document(), vars in overrides(false)) {
        check_secret(&ConfigBuilder::new(&env).yaml(yaml).env_overrides(vars).build())?;
    }
}

/// The minimal case `overrides_with_escapes_load_or_are_refused` found: `"é\n"` as an
/// override's value panics in figment's value parser, called by `apply_override`.
#[test]
fn a_quoted_override_with_an_escape_loads_or_is_refused() {
    let yaml = "ai_gateway:\n  providers:\n    - {name: demo, type: mock}\n";
    let vars = [("LOOM_LOGGING__LEVEL".to_owned(), "\"é\\n\"".to_owned())];
    let loaded = ConfigBuilder::new(&env).yaml(yaml).env_overrides(vars).build();
    // Refusing the value is as good as reading it; panicking is not.
    if let Ok(config) = loaded {
        assert_eq!(config.logging.level, "é\n");
    }
}

/// The minimal case `no_error_shows_a_secret` found: parse errors hide values substituted
/// from the environment, validation errors do not.
#[test]
fn a_secret_in_a_validation_error_is_not_shown() {
    let yaml = "ai_gateway:\n  providers:\n    - {name: demo, type: mock}\nroutes:\n  - {id: \"${SECRET}\", path: /v1/*}\n  - {id: \"${SECRET}\", path: /v2/*}\n";
    let error = LoomConfig::from_yaml_str(yaml, &env).err().map(|error| error.to_string());
    assert_eq!(error.as_deref(), Some("routes[1].id: duplicate route id \"***\""));
}

/// The generated configs reach past parsing: a good share of them load.
#[test]
fn the_generated_configs_include_loadable_ones() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    const CONFIGS: usize = 512;
    let mut runner = TestRunner::deterministic();
    let strategy = (config_tree(), any::<bool>()).prop_map(|(value, block)| yaml(&value, block));
    let mut loaded = 0;
    for _ in 0..CONFIGS {
        let yaml = strategy.new_tree(&mut runner).map(|tree| tree.current()).unwrap_or_default();
        loaded += usize::from(LoomConfig::from_yaml_str(&yaml, &env).is_ok());
    }
    assert!(loaded >= CONFIGS / 20, "{loaded} of {CONFIGS} generated configs load");
}
