//! What the fuzz tests share: the proptest config, and JSON objects generated from a
//! list of fields.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Cases per property and CI run; `PROPTEST_CASES` sets another number (for a longer hunt).
pub fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 512;
    }
    // Failures print their minimal input; an integration test has no source tree
    // proptest could save them next to.
    config.failure_persistence = None;
    config
}

/// One field of a generated object: its name, the chance it is there, its values.
pub struct Field(&'static str, f64, BoxedStrategy<Value>);

/// A field every object of its kind has.
pub fn always(key: &'static str, value: BoxedStrategy<Value>) -> Field {
    Field(key, 1.0, value)
}

/// A field present in a share `chance` of the objects.
pub fn sometimes(key: &'static str, chance: f64, value: BoxedStrategy<Value>) -> Field {
    Field(key, chance, value)
}

/// An object of `fields`, plus maybe (1 in 30) a field named from `keys` with a value of
/// `extra`.
pub fn object(
    fields: Vec<Field>,
    keys: &'static [&'static str],
    extra: BoxedStrategy<Value>,
) -> BoxedStrategy<Value> {
    let fields = fields
        .into_iter()
        .map(|Field(key, chance, values)| {
            (proptest::bool::weighted(chance), values)
                .prop_map(move |(keep, value)| keep.then_some((key, value)))
        })
        .collect::<Vec<_>>();
    (fields, proptest::option::weighted(1.0 / 30.0, (proptest::sample::select(keys), extra)))
        .prop_map(|(fields, extra)| {
            let mut object: Map<String, Value> =
                fields.into_iter().flatten().map(|(key, value)| (key.to_owned(), value)).collect();
            if let Some((key, value)) = extra {
                object.insert(key.to_owned(), value);
            }
            Value::Object(object)
        })
        .boxed()
}
