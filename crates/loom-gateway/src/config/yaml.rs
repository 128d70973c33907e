//! YAML text to a JSON-like tree, refusing duplicate keys (YAML parsers keep the last one silently).

use std::fmt;

use figment::providers::{Format, Yaml};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses one YAML document; the error text carries the line and column.
pub(crate) fn parse(yaml: &str) -> Result<Value, String> {
    Yaml::from_str::<Document>(yaml).map(|document| document.0).map_err(|error| error.to_string())
}

/// A whole document, deserialized without duplicate keys.
struct Document(Value);

impl<'de> de::Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Node.deserialize(deserializer).map(Document)
    }
}

/// Any value; the YAML deserializer prefixes its errors with the key path and appends the position.
#[derive(Clone, Copy)]
struct Node;

impl<'de> DeserializeSeed<'de> for Node {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value).map(Value::Number).ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Node)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if entries.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(Node)?;
            entries.insert(key, value);
        }
        Ok(Value::Object(entries))
    }
}

/// A map key: a string, or a scalar written as one (`4:` is the key "4").
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scalars_lists_maps_and_anchors() {
        let parsed = parse("a: &x 1\nb: *x\nc: [true, ~, 0.5, text]\n4: four\n");
        assert_eq!(
            parsed,
            Ok(serde_json::json!({"a": 1, "b": 1, "c": [true, null, 0.5, "text"], "4": "four"}))
        );
        assert_eq!(parse(""), Ok(Value::Null));
        assert_eq!(parse("# only a comment\n"), Ok(Value::Null));
    }

    #[test]
    fn refuses_duplicate_keys_naming_them() {
        let error = parse("ai_gateway:\n  routing: {}\n  routing: {}\n").err().unwrap_or_default();
        assert!(error.starts_with("ai_gateway: duplicate key `routing` at line"), "{error}");
        let error = parse("r:\n  - {id: a}\n  - {id: b, id: c}\n").err().unwrap_or_default();
        assert!(error.starts_with("r[1]: duplicate key `id` at line"), "{error}");
        let error = parse("a: 1\na: 2\n").err().unwrap_or_default();
        assert!(error.starts_with("duplicate key `a`"), "{error}");
    }
}
