//! Feeds that arrive as byte chunks (a gRPC stream, an HTTP download) are
//! parsed as they come, on a blocking thread, with a small bounded buffer
//! between the network and the parser: memory stays flat however large the
//! feed, and a slow parser slows the sender instead of queueing bytes.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::domain::feeds::{FeedError, IngestReport};
use crate::domain::suppliers::{FeedKind, SupplierId};
use crate::domain::world::World;
use crate::limits;

/// A blocking `Read` over chunks sent from async code.
pub struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    read_bytes: u64,
    limit_bytes: u64,
}

impl ChunkReader {
    /// Reads what `rx` delivers, failing once more than `limit_bytes` arrived.
    pub fn new(rx: mpsc::Receiver<Result<Bytes, String>>, limit_bytes: u64) -> Self {
        Self {
            rx,
            current: Bytes::new(),
            read_bytes: 0,
            limit_bytes,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.read_bytes += chunk.len() as u64;
                    if self.read_bytes > self.limit_bytes {
                        return Err(io::Error::other(format!(
                            "feed exceeds the limit of {} bytes",
                            self.limit_bytes
                        )));
                    }
                    self.current = chunk;
                }
                // A failed or cancelled upload must never look like a short,
                // complete feed: that would apply a truncated full snapshot.
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Parses and applies a feed from a stream of chunks.
///
/// An `Err` item in the stream aborts the feed: nothing of it is applied.
pub async fn ingest_chunks<S>(
    world: Arc<World>,
    supplier: SupplierId,
    kind: FeedKind,
    limit_bytes: u64,
    mut chunks: S,
) -> Result<IngestReport, FeedError>
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    let (tx, rx) = mpsc::channel(limits::FEED_CHUNKS_BUFFERED);
    let parser = tokio::task::spawn_blocking(move || {
        world.ingest(supplier, kind, ChunkReader::new(rx, limit_bytes))
    });
    while let Some(chunk) = chunks.next().await {
        let failed = chunk.is_err();
        // A send error means the parser already stopped (a bad header, the
        // size limit); its outcome says why.
        if tx.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    parser
        .await
        .map_err(|e| FeedError::Unreadable(format!("feed parser stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_chunks_and_reports_errors_and_limits() {
        let (tx, rx) = mpsc::channel(8);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"cd"))).unwrap();
        drop(tx);
        let mut s = String::new();
        ChunkReader::new(rx, 10).read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcd");

        let (tx, rx) = mpsc::channel(8);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Err("client went away".into())).unwrap();
        let err = ChunkReader::new(rx, 10)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("went away"));

        let (tx, rx) = mpsc::channel(8);
        tx.try_send(Ok(Bytes::from_static(b"abcdef"))).unwrap();
        let err = ChunkReader::new(rx, 4)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("limit"));
    }
}
