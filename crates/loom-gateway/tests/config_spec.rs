//! Every ```yaml block of the AI gateway spec loads and means what the spec says.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use loom_gateway::config::{ConfigBuilder, LoomConfig, RouteConfig, RoutingTarget, Strategy};
use loom_providers::ProviderType;

/// The number of ```yaml blocks in docs/spec/ai-gateway-overview.md; a lost block fails.
const SPEC_YAML_BLOCKS: usize = 11;

/// A config that defines the providers the spec's fragments refer to.
const BASE: &str = r#"
ai_gateway:
  providers:
    - name: openai
      type: openai
      api_key: ${OPENAI_API_KEY}
    - name: anthropic
      type: anthropic
      api_key: ${ANTHROPIC_API_KEY}
    - name: azure
      type: azure
      api_key: ${AZURE_API_KEY}
      base_url: https://example-resource.openai.azure.com
      api_version: "2024-02-15-preview"
"#;

const SECRETS: [(&str, &str); 3] = [
    ("OPENAI_API_KEY", "sk-openai-spec-secret"),
    ("ANTHROPIC_API_KEY", "sk-ant-spec-secret"),
    ("AZURE_API_KEY", "azure-spec-secret"),
];

fn env(name: &str) -> Option<String> {
    SECRETS.iter().find(|(var, _)| *var == name).map(|(_, value)| (*value).to_owned())
}

/// A ```yaml block and the heading it sits under.
struct Block {
    heading: String,
    yaml: String,
}

fn spec_blocks() -> Vec<Block> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec/ai-gateway-overview.md");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let mut blocks = Vec::new();
    let mut heading = String::new();
    // Inside a fenced block: Some(true) for ```yaml, Some(false) for any other fence.
    let mut fence: Option<bool> = None;
    let mut yaml = String::new();
    for line in text.lines() {
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

fn merged(block: &Block) -> LoomConfig {
    ConfigBuilder::new(&env).yaml(BASE).yaml(block.yaml.as_str()).build().unwrap_or_else(|error| {
        panic!("spec block under \"{}\", merged onto the base: {error}", block.heading)
    })
}

fn target(name: &str) -> RoutingTarget {
    RoutingTarget::named(name)
}

fn names(targets: &[RoutingTarget]) -> Vec<&str> {
    targets.iter().map(|target| target.name.as_str()).collect()
}

fn ai_route() -> RouteConfig {
    RouteConfig {
        id: "ai".into(),
        path: "/v1/*".into(),
        ai_gateway: true,
        routing: None,
        checks: None,
        cache: None,
    }
}

fn has_note(config: &LoomConfig, needle: &str) -> bool {
    config.inactive_features().iter().any(|note| note.contains(needle))
}

#[test]
fn the_spec_has_every_yaml_block() {
    let blocks = spec_blocks();
    let headings: Vec<&str> = blocks.iter().map(|block| block.heading.as_str()).collect();
    assert_eq!(blocks.len(), SPEC_YAML_BLOCKS, "yaml blocks found under: {headings:?}");
}

#[test]
fn every_block_parses_standalone() {
    for block in spec_blocks() {
        if let Err(error) = LoomConfig::parse_yaml_str(&block.yaml, &env) {
            panic!("spec block under \"{}\" does not parse: {error}\n{}", block.heading, block.yaml);
        }
    }
}

#[test]
fn every_block_validates_merged_onto_the_base() {
    for block in spec_blocks() {
        let config = merged(&block);
        let summary = config.summary();
        for (_, secret) in SECRETS {
            assert!(!summary.contains(secret), "summary shows a key under \"{}\"", block.heading);
        }
    }
}

#[test]
fn every_block_says_what_the_spec_says() {
    let mut checked = 0;
    for block in spec_blocks() {
        let config = merged(&block);
        let ai = &config.ai_gateway;
        let routing = &ai.routing;
        let heading = block.heading.as_str();
        match heading {
            "Quick Start" => {
                let standalone = LoomConfig::from_yaml_str(&block.yaml, &env)
                    .unwrap_or_else(|error| panic!("quick start alone: {error}"));
                assert_eq!(standalone, config);
                assert!(ai.enabled);
                assert_eq!(ai.providers.len(), 2);
                let openai = &ai.providers[0];
                assert_eq!((openai.name.as_str(), openai.kind), ("openai", ProviderType::Openai));
                assert_eq!(openai.api_key.as_ref().map(|key| key.expose()), Some("sk-openai-spec-secret"));
                assert_eq!(openai.base_url.as_deref(), Some("https://api.openai.com/v1"));
                let anthropic = &ai.providers[1];
                assert_eq!((anthropic.name.as_str(), anthropic.kind), ("anthropic", ProviderType::Anthropic));
                assert_eq!(anthropic.api_key.as_ref().map(|key| key.expose()), Some("sk-ant-spec-secret"));
                assert_eq!(routing.strategy, Strategy::Priority);
                assert_eq!(
                    routing.providers,
                    [
                        RoutingTarget { priority: Some(1), ..target("openai") },
                        RoutingTarget { priority: Some(2), ..target("anthropic") },
                    ]
                );
                assert_eq!(config.routes, [ai_route()]);
                assert!(!has_note(&config, "provider type anthropic"), "anthropic is active");
            }
            "Single Provider" => {
                let standalone = LoomConfig::from_yaml_str(&block.yaml, &env)
                    .unwrap_or_else(|error| panic!("single provider alone: {error}"));
                assert_eq!(standalone, config);
                assert!(ai.enabled);
                assert_eq!(ai.providers.len(), 1);
                assert_eq!(ai.providers[0].name, "openai");
                assert_eq!(ai.providers[0].kind, ProviderType::Openai);
                assert_eq!(ai.providers[0].base_url, None);
                assert_eq!(config.routes, [ai_route()]);
                assert!(config.inactive_features().is_empty(), "{:?}", config.inactive_features());
            }
            "Multiple Providers" => {
                let standalone = LoomConfig::from_yaml_str(&block.yaml, &env)
                    .unwrap_or_else(|error| panic!("multiple providers alone: {error}"));
                assert_eq!(standalone, config);
                let provider_names: Vec<&str> = ai.providers.iter().map(|p| p.name.as_str()).collect();
                assert_eq!(provider_names, ["openai", "anthropic", "azure"]);
                assert_eq!(ai.providers[0].models, ["gpt-4", "gpt-3.5-turbo"]);
                assert_eq!(ai.providers[1].models, ["claude-3-opus", "claude-3-sonnet"]);
                let azure = &ai.providers[2];
                assert_eq!(azure.kind, ProviderType::Azure);
                assert_eq!(azure.api_key.as_ref().map(|key| key.expose()), Some("azure-spec-secret"));
                assert_eq!(azure.base_url.as_deref(), Some("https://your-resource.openai.azure.com"));
                assert_eq!(azure.api_version.as_deref(), Some("2024-02-15-preview"));
                let deployments = BTreeMap::from([
                    ("gpt-4".to_owned(), "your-gpt4-deployment".to_owned()),
                    ("gpt-35-turbo".to_owned(), "your-gpt35-deployment".to_owned()),
                ]);
                assert_eq!(azure.deployments, deployments);
                assert!(config.routes.is_empty());
                assert_eq!(config.effective_routes(), [ai_route()]);
            }
            "Priority-Based" => {
                assert_eq!(routing.strategy, Strategy::Priority);
                assert_eq!(
                    routing.providers,
                    [
                        RoutingTarget { priority: Some(1), ..target("openai") },
                        RoutingTarget { priority: Some(2), ..target("anthropic") },
                    ]
                );
                assert_eq!(names(&routing.targets_by_priority(&ai.providers)), ["openai", "anthropic"]);
                assert!(!has_note(&config, "strategy"));
            }
            "Round Robin" => {
                assert_eq!(routing.strategy, Strategy::RoundRobin);
                assert_eq!(routing.providers, [target("openai"), target("anthropic")]);
                assert!(!has_note(&config, "strategy"), "every strategy is active");
            }
            "Weighted" => {
                assert_eq!(routing.strategy, Strategy::Weighted);
                assert_eq!(
                    routing.providers,
                    [
                        RoutingTarget { weight: Some(70), ..target("openai") },
                        RoutingTarget { weight: Some(30), ..target("anthropic") },
                    ]
                );
                assert!(!has_note(&config, "strategy"), "every strategy is active");
            }
            "Cost-Optimized" => {
                assert_eq!(routing.strategy, Strategy::Cost);
                assert_eq!(
                    routing.providers,
                    [
                        RoutingTarget {
                            cost_per_1k_input: Some(0.01),
                            cost_per_1k_output: Some(0.03),
                            ..target("openai")
                        },
                        RoutingTarget {
                            cost_per_1k_input: Some(0.008),
                            cost_per_1k_output: Some(0.024),
                            ..target("anthropic")
                        },
                    ]
                );
                assert!(!has_note(&config, "strategy"), "every strategy is active");
                assert!(!has_note(&config, "cost_per_1k"), "prices are active: cost accounting uses them");
            }
            "Latency-Optimized" => {
                assert_eq!(routing.strategy, Strategy::Latency);
                assert_eq!(routing.providers, [target("openai"), target("anthropic")]);
                assert!(!has_note(&config, "strategy"), "every strategy is active");
            }
            "Failover" => {
                assert_eq!(routing.strategy, Strategy::Priority);
                assert!(routing.failover.enabled);
                assert_eq!(routing.failover.retry_codes, [429, 500, 502, 503]);
                assert_eq!(routing.failover.max_retries, 2);
                assert_eq!(names(&routing.targets_by_priority(&ai.providers)), ["openai", "anthropic"]);
                assert!(!has_note(&config, "failover"), "failover is active");
            }
            "Model Mapping" => {
                let gpt4 = &ai.model_mapping["gpt-4"];
                assert_eq!(gpt4["openai"], "gpt-4-turbo");
                assert_eq!(gpt4["anthropic"], "claude-3-opus");
                assert_eq!(gpt4["azure"], "gpt-4");
                let gpt35 = &ai.model_mapping["gpt-3.5-turbo"];
                assert_eq!(gpt35["openai"], "gpt-3.5-turbo");
                assert_eq!(gpt35["anthropic"], "claude-3-sonnet");
                assert_eq!(gpt35["azure"], "gpt-35-turbo");
                assert_eq!(ai.model_mapping.len(), 2);
                assert_eq!(ai.provider_model("gpt-4", "anthropic"), "claude-3-opus");
                assert_eq!(ai.provider_model("gpt-4o", "openai"), "gpt-4o");
            }
            "Streaming Support" => {
                assert!(ai.streaming.enabled);
                assert_eq!(ai.streaming.flush_interval, Duration::from_millis(50));
            }
            other => panic!("a yaml block under \"{other}\" has no assertions yet; add them here"),
        }
        checked += 1;
    }
    assert_eq!(checked, SPEC_YAML_BLOCKS);
}

#[test]
fn fragments_leave_the_base_providers_in_place() {
    let blocks = spec_blocks();
    let Some(streaming) = blocks.iter().find(|block| block.heading == "Streaming Support") else {
        panic!("no streaming block");
    };
    let config = merged(streaming);
    let provider_names: Vec<&str> = config.ai_gateway.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(provider_names, ["openai", "anthropic", "azure"]);
    assert_eq!(config.effective_routes(), [ai_route()]);
}
