//! [`StreamLog`]: the JetStream stream that holds the audit log, and the
//! client connection to it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use super::ClusterError;
use crate::settings::ClusterSettings;

/// How often the client pings the server: the default (60 s) takes about
/// three minutes to notice a dead link, far longer than a lease may last.
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// The stream that holds the audit log, on a live connection.
#[derive(Debug, Clone)]
pub struct StreamLog {
    js: jetstream::Context,
    stream: String,
    subject: String,
    node: String,
    replicas: usize,
    read_timeout: Duration,
}

impl StreamLog {
    /// Connects to `settings.urls` and creates the stream, or brings its
    /// configuration up to `settings` (replicas, dedup window).
    pub async fn connect(settings: &ClusterSettings) -> Result<Self, ClusterError> {
        let urls = settings.urls.join(",");
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("warden-{}", settings.node()))
            .ping_interval(PING_INTERVAL)
            .connection_timeout(settings.publish_timeout)
            .request_timeout(Some(settings.publish_timeout));
        if let Some(path) = &settings.credentials_file {
            options = options.credentials_file(path).await.map_err(|source| {
                ClusterError::Credentials {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        let client = options
            .connect(settings.urls.as_slice())
            .await
            .map_err(|e| ClusterError::Connect {
                urls: urls.clone(),
                reason: e.to_string(),
            })?;
        let js = jetstream::ContextBuilder::new()
            // Bounds every API call and how long an append's ack is awaited.
            .timeout(settings.publish_timeout)
            .build(client);
        let subject = format!("warden.{}.rows", settings.stream);
        let config = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.dedup_window,
            ..Default::default()
        };
        js.create_or_update_stream(config)
            .await
            .map_err(|e| ClusterError::Stream {
                stream: settings.stream.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            js,
            stream: settings.stream.clone(),
            subject,
            node: settings.node().to_owned(),
            replicas: settings.replicas,
            read_timeout: settings.publish_timeout,
        })
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.stream
    }

    /// The JetStream context, for the lease bucket.
    pub(super) fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// How many copies of the stream (and of the lease bucket) the servers keep.
    pub(super) fn replicas(&self) -> usize {
        self.replicas
    }

    /// This node's id, the prefix of every message id it publishes.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Appends `rows` (message id, payload) in order and answers with the
    /// seq the stream gave each, once the stream has stored all of them.
    ///
    /// All are sent before any acknowledgement is awaited, so a batch costs
    /// one round trip, not one per row. On an error nothing is known about
    /// the rows after the first failure: the caller retries the whole batch
    /// with the same ids, and the stream answers a row it already holds
    /// with its original seq (`duplicate`), so none is stored twice.
    pub async fn publish(&self, rows: &[(String, Bytes)]) -> Result<Vec<u64>, ClusterError> {
        let mut acks = Vec::with_capacity(rows.len());
        for (id, payload) in rows {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(id);
            let ack = self
                .js
                .send_publish(self.subject.clone(), message)
                .await
                .map_err(|e| self.publish_error(e))?;
            acks.push(ack);
        }
        let mut seqs = Vec::with_capacity(acks.len());
        for ack in acks {
            let ack = ack.await.map_err(|e| self.publish_error(e))?;
            seqs.push(ack.sequence);
        }
        Ok(seqs)
    }

    fn publish_error(&self, error: impl std::fmt::Display) -> ClusterError {
        ClusterError::Publish {
            stream: self.stream.clone(),
            reason: error.to_string(),
        }
    }

    /// The stream's last seq (0 when it is empty).
    pub async fn last_seq(&self) -> Result<u64, ClusterError> {
        let mut stream = self.get_stream().await?;
        let info = stream.info().await.map_err(|e| ClusterError::Stream {
            stream: self.stream.clone(),
            reason: e.to_string(),
        })?;
        Ok(info.state.last_sequence)
    }

    async fn get_stream(&self) -> Result<stream::Stream, ClusterError> {
        self.js
            .get_stream(&self.stream)
            .await
            .map_err(|e| ClusterError::Stream {
                stream: self.stream.clone(),
                reason: e.to_string(),
            })
    }

    /// Reads the stream in order from `from` (inclusive), through an
    /// ordered consumer: one that the client recreates from the last seq it
    /// delivered whenever it sees a gap or loses its server.
    pub async fn reader(&self, from: u64) -> Result<StreamReader, ClusterError> {
        let read_error = |reason: String| ClusterError::Read {
            stream: self.stream.clone(),
            from,
            reason,
        };
        let stream = self.get_stream().await?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| read_error(e.to_string()))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| read_error(e.to_string()))?;
        Ok(StreamReader {
            messages,
            stream: self.stream.clone(),
            next: from.max(1),
            timeout: self.read_timeout,
        })
    }
}

/// The stream read in order; see [`StreamLog::reader`].
pub struct StreamReader {
    messages: consumer::pull::Ordered,
    stream: String,
    next: u64,
    timeout: Duration,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("stream", &self.stream)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// The next row as (seq, payload), waiting at most `wait` for one to
    /// arrive (`None`: nothing new yet).
    pub async fn next_within(
        &mut self,
        wait: Duration,
    ) -> Result<Option<(u64, Bytes)>, ClusterError> {
        let message = match tokio::time::timeout(wait, self.messages.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Err(self.error("the ordered consumer ended".to_owned())),
            Ok(Some(Err(error))) => return Err(self.error(error.to_string())),
            Ok(Some(Ok(message))) => message,
        };
        let seq = message
            .info()
            .map_err(|e| self.error(format!("a message without stream metadata: {e}")))?
            .stream_sequence;
        self.next = seq + 1;
        Ok(Some((seq, message.message.payload)))
    }

    /// The next row, waiting at most the configured read timeout; an error
    /// if none arrives (the caller knows one is due).
    pub async fn next_due(&mut self) -> Result<(u64, Bytes), ClusterError> {
        match self.next_within(self.timeout).await? {
            Some(row) => Ok(row),
            None => Err(self.error(format!("no row within {:?}", self.timeout))),
        }
    }

    /// The seq after the last row read.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    fn error(&self, reason: String) -> ClusterError {
        ClusterError::Read {
            stream: self.stream.clone(),
            from: self.next,
            reason,
        }
    }
}
