//! Reading the tool calls of OpenAI-format assistant messages for providers that want
//! their arguments as JSON values rather than strings.

use serde_json::{Map, Value};

use loom_core::{LoomError, ToolCall};

/// The arguments of `call` (the `position`-th tool call of message `message`) as JSON;
/// empty arguments are an empty object. Not JSON: a 400 naming the field.
pub(crate) fn arguments(call: &ToolCall, message: usize, position: usize) -> Result<Value, LoomError> {
    if call.function.arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(&call.function.arguments).map_err(|error| {
        LoomError::invalid_request(
            format!("Tool call arguments must be JSON: {error}"),
            Some(format!("messages[{message}].tool_calls[{position}].function.arguments")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom_core::ErrorKind;
    use serde_json::json;

    fn call(arguments: &str) -> ToolCall {
        serde_json::from_value(json!({
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": arguments}
        }))
        .unwrap()
    }

    #[test]
    fn arguments_are_parsed_and_empty_ones_are_an_empty_object() {
        assert_eq!(arguments(&call(r#"{"city":"Paris"}"#), 1, 0).unwrap(), json!({"city": "Paris"}));
        assert_eq!(arguments(&call("  "), 1, 0).unwrap(), json!({}));
    }

    #[test]
    fn arguments_that_are_not_json_name_their_field() {
        let error = arguments(&call("{city: Paris"), 3, 1).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(error.param.as_deref(), Some("messages[3].tool_calls[1].function.arguments"));
        assert!(error.message.starts_with("Tool call arguments must be JSON: "), "{}", error.message);
    }
}
