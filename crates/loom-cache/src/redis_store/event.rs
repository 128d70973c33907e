//! Index events and their form on the sync stream, read back as untrusted input.
//!
//! An insert is the fields `t=insert`, `ns`, `m`, `id` (32 bytes), `p` (32 bytes), `vec`
//! (little-endian f32s) and `exp` (expiry, Unix milliseconds, decimal); a clear is `t=clear`
//! with `ns` and `m` when it was limited to them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;

use super::{EntryId, MAX_DIMENSIONS, MAX_MODEL_BYTES, MAX_NAMESPACE_BYTES, PartitionKey};

/// A change every instance applies to its local index, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexEvent {
    /// A semantic entry was stored.
    Insert {
        /// The entry's namespace.
        namespace: String,
        /// The entry's model.
        model: String,
        /// The entry's id (its Redis key holds the answer).
        id: EntryId,
        /// The partition whose entries share everything but the last user turn.
        partition: PartitionKey,
        /// The embedding of the last user turn.
        vector: Vec<f32>,
        /// When the entry expires in Redis.
        expires_at: SystemTime,
    },
    /// Entries were deleted: of a namespace, of a model, both, or all (`None`: any).
    Clear {
        /// The namespace cleared, or every one.
        namespace: Option<String>,
        /// The model cleared, or every one.
        model: Option<String>,
    },
}

/// Why a stream entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) &'static str);

/// The stream fields of an insert.
pub(super) fn insert_fields(
    namespace: &str,
    model: &str,
    id: &EntryId,
    partition: &PartitionKey,
    vector: &[f32],
    expires_at: SystemTime,
) -> Vec<(&'static str, Vec<u8>)> {
    let expires_ms = expires_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    vec![
        ("t", b"insert".to_vec()),
        ("ns", namespace.as_bytes().to_vec()),
        ("m", model.as_bytes().to_vec()),
        ("id", id.to_vec()),
        ("p", partition.to_vec()),
        ("vec", vector.iter().flat_map(|value| value.to_le_bytes()).collect()),
        ("exp", expires_ms.to_string().into_bytes()),
    ]
}

/// The stream fields of a clear.
pub(super) fn clear_fields(namespace: Option<&str>, model: Option<&str>) -> Vec<(&'static str, Vec<u8>)> {
    let mut fields = vec![("t", b"clear".to_vec())];
    if let Some(namespace) = namespace {
        fields.push(("ns", namespace.as_bytes().to_vec()));
    }
    if let Some(model) = model {
        fields.push(("m", model.as_bytes().to_vec()));
    }
    fields
}

/// The event a stream entry's field list holds.
pub(super) fn decode(fields: &Value) -> Result<IndexEvent, Malformed> {
    let fields = field_pairs(fields)?;
    let field = |name: &str| -> Result<Option<&[u8]>, Malformed> {
        let mut found = fields.iter().filter(|(key, _)| *key == name.as_bytes());
        let first = found.next().map(|(_, value)| *value);
        match found.next() {
            Some(_) => Err(Malformed("a field appears twice")),
            None => Ok(first),
        }
    };
    let required = |name: &'static str| field(name)?.ok_or(Malformed(name));
    match required("t")? {
        b"insert" => Ok(IndexEvent::Insert {
            namespace: text(required("ns")?, MAX_NAMESPACE_BYTES)?,
            model: text(required("m")?, MAX_MODEL_BYTES)?,
            id: key_bytes(required("id")?)?,
            partition: key_bytes(required("p")?)?,
            vector: vector(required("vec")?)?,
            expires_at: expiry(required("exp")?)?,
        }),
        b"clear" => Ok(IndexEvent::Clear {
            namespace: field("ns")?.map(|bytes| text(bytes, MAX_NAMESPACE_BYTES)).transpose()?,
            model: field("m")?.map(|bytes| text(bytes, MAX_MODEL_BYTES)).transpose()?,
        }),
        _ => Err(Malformed("unknown event type")),
    }
}

/// A field's name and value.
type Field<'a> = (&'a [u8], &'a [u8]);

/// The fields of an entry: a flat array (RESP2) or a map (RESP3).
fn field_pairs(fields: &Value) -> Result<Vec<Field<'_>>, Malformed> {
    match fields {
        Value::Array(items) if items.len().is_multiple_of(2) => {
            items.chunks_exact(2).map(|pair| Ok((bytes(&pair[0])?, bytes(&pair[1])?))).collect()
        }
        Value::Map(pairs) => pairs.iter().map(|(key, value)| Ok((bytes(key)?, bytes(value)?))).collect(),
        _ => Err(Malformed("the field list")),
    }
}

/// The bytes of a string reply.
pub(super) fn bytes(value: &Value) -> Result<&[u8], Malformed> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.as_bytes()),
        _ => Err(Malformed("a field that is not a string")),
    }
}

/// UTF-8 text of at most `limit` bytes.
fn text(bytes: &[u8], limit: usize) -> Result<String, Malformed> {
    if bytes.len() > limit {
        return Err(Malformed("a name over its length limit"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| Malformed("a name that is not UTF-8"))
}

/// A 32-byte id or partition key.
fn key_bytes(bytes: &[u8]) -> Result<[u8; 32], Malformed> {
    bytes.try_into().map_err(|_| Malformed("an id that is not 32 bytes"))
}

/// Little-endian f32s: at least one, at most [`MAX_DIMENSIONS`], all finite.
fn vector(bytes: &[u8]) -> Result<Vec<f32>, Malformed> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) || bytes.len() / 4 > MAX_DIMENSIONS {
        return Err(Malformed("a vector of the wrong size"));
    }
    let vector: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect();
    if vector.iter().all(|value| value.is_finite()) {
        Ok(vector)
    } else {
        Err(Malformed("a vector with a NaN or infinity"))
    }
}

/// Unix milliseconds, decimal.
fn expiry(bytes: &[u8]) -> Result<SystemTime, Malformed> {
    let millis: u64 = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(Malformed("an expiry that is not a number"))?;
    UNIX_EPOCH.checked_add(Duration::from_millis(millis)).ok_or(Malformed("an expiry out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_value(fields: &[(&str, Vec<u8>)]) -> Value {
        Value::Array(
            fields
                .iter()
                .flat_map(|(name, value)| {
                    [Value::BulkString(name.as_bytes().to_vec()), Value::BulkString(value.clone())]
                })
                .collect(),
        )
    }

    fn insert() -> (IndexEvent, Vec<(&'static str, Vec<u8>)>) {
        let expires_at = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let fields = insert_fields("team-a", "gpt-4o", &[7; 32], &[9; 32], &[0.5, -1.25], expires_at);
        let event = IndexEvent::Insert {
            namespace: "team-a".into(),
            model: "gpt-4o".into(),
            id: [7; 32],
            partition: [9; 32],
            vector: vec![0.5, -1.25],
            expires_at,
        };
        (event, fields)
    }

    #[test]
    fn inserts_and_clears_round_trip() {
        let (event, fields) = insert();
        assert_eq!(decode(&as_value(&fields)), Ok(event));
        let clear = IndexEvent::Clear { namespace: Some("team-a".into()), model: None };
        assert_eq!(decode(&as_value(&clear_fields(Some("team-a"), None))), Ok(clear));
        let all = IndexEvent::Clear { namespace: None, model: None };
        assert_eq!(decode(&as_value(&clear_fields(None, None))), Ok(all));
    }

    #[test]
    fn vectors_are_little_endian_f32() {
        let (_, fields) = insert();
        let vec = &fields.iter().find(|(name, _)| *name == "vec").unwrap().1;
        assert_eq!(vec, &[0, 0, 0, 0x3f, 0, 0, 0xa0, 0xbf]);
    }

    #[test]
    fn malformed_entries_are_refused() {
        let (_, fields) = insert();
        let with = |name: &str, value: &[u8]| {
            let mut fields = fields.clone();
            fields.iter_mut().find(|(field, _)| *field == name).unwrap().1 = value.to_vec();
            decode(&as_value(&fields))
        };
        assert_eq!(with("t", b"upsert"), Err(Malformed("unknown event type")));
        assert!(with("id", &[1; 31]).is_err());
        assert!(with("p", &[1; 33]).is_err());
        assert!(with("vec", &[0, 0, 0]).is_err());
        assert!(with("vec", &[]).is_err());
        assert!(with("vec", &f32::NAN.to_le_bytes()).is_err());
        assert!(with("vec", &vec![0; (MAX_DIMENSIONS + 1) * 4]).is_err());
        assert!(with("exp", b"soon").is_err());
        assert!(with("ns", &[0xff, 0xfe]).is_err());
        assert!(with("m", &vec![b'm'; MAX_MODEL_BYTES + 1]).is_err());
        let without_model: Vec<_> = fields.iter().filter(|(name, _)| *name != "m").cloned().collect();
        assert_eq!(decode(&as_value(&without_model)), Err(Malformed("m")));
        let mut twice = fields.clone();
        twice.push(("m", b"other".to_vec()));
        assert!(decode(&as_value(&twice)).is_err());
        assert!(decode(&Value::Array(vec![Value::BulkString(b"t".to_vec())])).is_err());
        assert!(decode(&Value::Int(3)).is_err());
    }
}
