//! The follower: replays the sync stream from its start, then follows it, handing each
//! event to the local index; it outlives Redis outages by reconnecting with backoff.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::RedisCacheStore;
use super::error::RedisStoreError;
use super::event::{self, IndexEvent, Malformed};

/// How long one XREAD waits for new events: short, so a dead connection is noticed soon.
const BLOCK: Duration = Duration::from_millis(250);

/// Events read at once (at most 256 vectors of the largest size, 8 MiB, in memory).
const READ_COUNT: usize = 256;

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The stream id before every entry.
const START: &str = "0-0";

/// Where the follower is in the stream, kept across reconnections.
struct Position {
    /// The last entry read.
    last_id: String,
    /// The `run_id` of the server it was read from: another server's stream starts over.
    server: Option<String>,
}

impl RedisCacheStore {
    /// The follower's loop (see [`RedisCacheStore::follow`]).
    pub(super) async fn follow_stream(&self, apply: &(impl Fn(IndexEvent) + Send + Sync)) {
        let mut position = Position { last_id: START.to_owned(), server: None };
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.follow_connection(&mut position, apply, &mut backoff).await {
                Ok(never) => match never {},
                Err(_) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Follows the stream on one connection until a call fails.
    async fn follow_connection(
        &self,
        position: &mut Position,
        apply: &(impl Fn(IndexEvent) + Send + Sync),
        backoff: &mut Duration,
    ) -> Result<std::convert::Infallible, RedisStoreError> {
        let mut connection = self.connections.blocking_connection(BLOCK).await?;
        let server = self.server_run_id(&mut connection).await?;
        if position.server.as_ref().is_some_and(|previous| *previous != server) {
            // A restarted or failed-over server: its ids need not follow ours.
            position.last_id = START.to_owned();
        }
        position.server = Some(server);
        let log = self.keys.log();
        loop {
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&log)
                .arg(&position.last_id);
            let limit = self.connections.timeout() + BLOCK;
            let reply: Value = self.connections.call(limit, read.query_async(&mut connection)).await?;
            *backoff = MIN_BACKOFF;
            let entries = stream_entries(&reply)
                .map_err(|Malformed(what)| RedisStoreError::Backend(format!("an XREAD reply: {what}")))?;
            let now = SystemTime::now();
            for (id, fields) in entries {
                position.last_id = id;
                match event::decode(fields) {
                    Ok(IndexEvent::Insert { expires_at, .. }) if expires_at <= now => {}
                    Ok(event) => apply(event),
                    Err(_) => {
                        self.malformed_events.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// The `run_id` of the server behind `connection`.
    async fn server_run_id(&self, connection: &mut MultiplexedConnection) -> Result<String, RedisStoreError> {
        let info: String = self
            .connections
            .call(self.connections.timeout(), redis::cmd("INFO").arg("server").query_async(connection))
            .await?;
        info.lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|run_id| run_id.trim().to_owned())
            .ok_or_else(|| RedisStoreError::Backend("INFO server has no run_id".to_owned()))
    }
}

/// The (id, fields) of each entry of an XREAD reply on one stream: nil when the block timed
/// out, else `[[stream, [[id, fields], ...]]]` (RESP2) or `{stream: [[id, fields], ...]}` (RESP3).
fn stream_entries(reply: &Value) -> Result<Vec<(String, &Value)>, Malformed> {
    let entries = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => match streams.as_slice() {
            [Value::Array(stream)] => match stream.as_slice() {
                [_, entries] => entries,
                _ => return Err(Malformed("a stream")),
            },
            _ => return Err(Malformed("the stream list")),
        },
        Value::Map(streams) => match streams.as_slice() {
            [(_, entries)] => entries,
            _ => return Err(Malformed("the stream list")),
        },
        _ => return Err(Malformed("the reply")),
    };
    let Value::Array(entries) = entries else { return Err(Malformed("the entry list")) };
    entries
        .iter()
        .map(|entry| match entry {
            Value::Array(parts) => match parts.as_slice() {
                [id, fields] => {
                    let id = std::str::from_utf8(event::bytes(id)?).map_err(|_| Malformed("an entry id"))?;
                    Ok((id.to_owned(), fields))
                }
                _ => Err(Malformed("an entry")),
            },
            _ => Err(Malformed("an entry")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn xread_replies_in_both_protocols_give_their_entries() {
        let fields = Value::Array(vec![text("t"), text("clear")]);
        let entries = Value::Array(vec![Value::Array(vec![text("1-0"), fields.clone()])]);
        let resp2 = Value::Array(vec![Value::Array(vec![text("log"), entries.clone()])]);
        let resp3 = Value::Map(vec![(text("log"), entries)]);
        for reply in [resp2, resp3] {
            assert_eq!(stream_entries(&reply), Ok(vec![("1-0".to_owned(), &fields)]));
        }
        assert_eq!(stream_entries(&Value::Nil), Ok(Vec::new()));
        assert!(stream_entries(&Value::Int(1)).is_err());
    }
}
