//! What identifies a cached answer: a hash of everything in a request that changes the
//! output, within the caller's namespace; and, for semantic lookups, the same hash without
//! the last user turn (the partition) plus that turn's text (the question).

use loom_core::{ChatRequest, Content, ContentPart, Identity, Role};

use crate::config::Namespace;

/// A cache entry's id: the BLAKE3 hash of the request's namespace, route and canonical form.
pub type EntryId = [u8; 32];

/// The BLAKE3 hash of everything in a request but its last user turn: semantic lookups search
/// only entries with the same one.
pub type PartitionKey = [u8; 32];

/// A request's place in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestKey {
    /// The exact entry's id.
    pub id: EntryId,
    /// Whose entries these are (e.g. `key:k-1`, `team:ml`, `global`).
    pub namespace: String,
    /// The model the client asked for.
    pub model: String,
    /// The last user turn and its partition, when the request can be looked up by meaning.
    pub question: Option<Question>,
}

/// The part of a request a semantic lookup compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Hash of everything else.
    pub partition: PartitionKey,
    /// The last user turn's text.
    pub text: String,
    /// Its embedding, once a semantic lookup computed it (stored with the answer).
    pub embedding: Option<std::sync::Arc<[f32]>>,
}

/// The namespace a caller's entries live in.
pub fn namespace(namespace: Namespace, identity: &Identity) -> String {
    let part = |prefix: &str, value: Option<&str>| format!("{prefix}:{}", value.unwrap_or("-"));
    match namespace {
        Namespace::Key => match (&identity.key_id, &identity.user) {
            (Some(key), _) => part("key", Some(key)),
            // Without virtual keys, the caller's user header is the closest thing to a tenant.
            (None, user) => part("user", user.as_deref()),
        },
        Namespace::Team => part("team", identity.team.as_deref()),
        Namespace::Global => "global".to_owned(),
    }
}

/// The key of `chat` on `route` in `namespace`; `None` when the request cannot be put in
/// canonical form (it serialises anything a client can send, so only on a bug).
///
/// The request is serialised once into one buffer, as a sequence of JSON texts (each
/// delimits itself, so no two different requests give the same bytes): the namespace, the
/// route, everything but the messages and the fields left out of the key, the earlier
/// messages. Its hash is the partition; the entry's id is the hash of the partition and the
/// last message. `chat` is borrowed mutably to set the left-out fields aside while it is
/// serialised (no copy of a large request); it is unchanged afterwards.
pub fn request_key(namespace: String, route: &str, chat: &mut ChatRequest) -> Option<RequestKey> {
    let mut bytes = Vec::with_capacity(1024);
    bytes.push(b'P');
    serde_json::to_writer(&mut bytes, &namespace).ok()?;
    serde_json::to_writer(&mut bytes, route).ok()?;
    let messages = std::mem::take(&mut chat.messages);
    let left_out = (chat.stream.take(), chat.stream_options.take(), chat.user.take(), chat.metadata.take());
    let rest = serde_json::to_writer(&mut bytes, &*chat);
    chat.messages = messages;
    (chat.stream, chat.stream_options, chat.user, chat.metadata) = left_out;
    rest.ok()?;
    let (earlier, last) = match chat.messages.split_last() {
        Some((last, earlier)) => (earlier, Some(last)),
        None => (&chat.messages[..], None),
    };
    serde_json::to_writer(&mut bytes, earlier).ok()?;
    let partition: PartitionKey = blake3::hash(&bytes).into();
    bytes.clear();
    bytes.push(b'E');
    bytes.extend_from_slice(&partition);
    serde_json::to_writer(&mut bytes, &last).ok()?;
    let id: EntryId = blake3::hash(&bytes).into();
    let question = last_user_text(chat).map(|text| Question { partition, text, embedding: None });
    Some(RequestKey { id, namespace, model: chat.model.clone(), question })
}

/// The text of the last message when it is the user's and only text (an image or file
/// cannot be compared by its words).
fn last_user_text(chat: &ChatRequest) -> Option<String> {
    let last = chat.messages.last().filter(|message| message.role == Role::User)?;
    match last.content.as_ref()? {
        Content::Text(text) => Some(text.clone()),
        Content::Parts(parts) => {
            let mut text = String::new();
            for part in parts {
                let ContentPart::Text(part) = part else { return None };
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&part.text);
            }
            Some(text)
        }
    }
}

/// Lowercase hex of an id, for logs, Redis keys and the admin API.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom_core::Message;

    fn chat(body: serde_json::Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    fn key(body: serde_json::Value) -> RequestKey {
        let mut request = chat(body);
        let before = request.clone();
        let key = request_key("global".into(), "ai", &mut request).unwrap();
        assert_eq!(request, before, "the request is unchanged");
        key
    }

    #[test]
    fn delivery_and_caller_fields_do_not_change_the_key() {
        let plain =
            key(serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}));
        let streamed = key(serde_json::json!({
            "model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": true,
            "stream_options": {"include_usage": true}, "user": "u-1", "metadata": {"a": "b"}
        }));
        assert_eq!(plain, streamed);
    }

    #[test]
    fn every_output_changing_field_changes_the_key() {
        let base = serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
        let plain = key(base.clone());
        for (field, value) in [
            ("model", serde_json::json!("gpt-4o-mini")),
            ("temperature", serde_json::json!(0.5)),
            ("max_tokens", serde_json::json!(10)),
            ("seed", serde_json::json!(1)),
            ("tools", serde_json::json!([{"type": "function", "function": {"name": "f"}}])),
            ("tool_choice", serde_json::json!("required")),
            ("response_format", serde_json::json!({"type": "json_object"})),
            ("service_tier", serde_json::json!("flex")),
        ] {
            let mut changed = base.clone();
            changed[field] = value;
            assert_ne!(key(changed).id, plain.id, "{field}");
        }
        let other_route = request_key("global".into(), "other", &mut chat(base.clone())).unwrap();
        assert_ne!(other_route.id, plain.id);
        let other_tenant = request_key("key:k2".into(), "ai", &mut chat(base)).unwrap();
        assert_ne!(other_tenant.id, plain.id);
    }

    #[test]
    fn the_partition_is_everything_but_the_last_user_turn() {
        let first = key(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is Python typed?"}]}));
        let second = key(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is Python statically typed?"}]}));
        let other_system = key(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "Be long."}, {"role": "user", "content": "Is Python typed?"}]}));
        assert_ne!(first.id, second.id);
        let (first, second, other) =
            (first.question.unwrap(), second.question.unwrap(), other_system.question.unwrap());
        assert_eq!(first.partition, second.partition);
        assert_ne!(first.partition, other.partition);
        assert_eq!(first.text, "Is Python typed?");
    }

    #[test]
    fn only_a_text_user_turn_is_a_question() {
        let image = key(serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}));
        assert_eq!(image.question, None);
        let parts = key(serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}));
        assert_eq!(parts.question.unwrap().text, "a\nb");
        let mut assistant_last = chat(serde_json::json!({"model": "m", "messages": []}));
        assistant_last.messages.push(Message::text(Role::Assistant, "Hello"));
        assert_eq!(request_key("global".into(), "ai", &mut assistant_last).unwrap().question, None);
    }

    #[test]
    fn namespaces_keep_tenants_apart() {
        let identity =
            Identity { key_id: Some("k-1".into()), user: Some("u".into()), team: Some("ml".into()) };
        assert_eq!(namespace(Namespace::Key, &identity), "key:k-1");
        assert_eq!(namespace(Namespace::Team, &identity), "team:ml");
        assert_eq!(namespace(Namespace::Global, &identity), "global");
        assert_eq!(namespace(Namespace::Key, &Identity::default()), "user:-");
        assert_eq!(namespace(Namespace::Team, &Identity::default()), "team:-");
    }
}
