//! One write per answer: a connection wrapper that holds a flush back for
//! one turn of the connection's task.
//!
//! HTTP/2 (h2) sends a unary gRPC answer as three frames: headers, the
//! message, and the trailers carrying `grpc-status`. A message of 256 bytes
//! or more is not copied into h2's write buffer but chained behind it, and
//! h2 flushes before it buffers the next frame, so every such answer (a
//! quote's is one to a few kilobytes) left in two writes: two system calls
//! on the server and two wake-ups of the caller. Here writes only fill a
//! buffer, and the first flush of new bytes is put off: the task is woken
//! to run again, and the next flush (later in the same turn, when h2
//! flushes the trailers, or in the task's next turn) writes everything held
//! in one call. Nothing waits longer than that one turn, and a buffer past
//! `HELD_BYTES_MAX` is written at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes held before a write goes through without waiting for a flush.
const HELD_BYTES_MAX: usize = 64 * 1024;

/// Buffer a connection keeps between answers; a larger one, grown for a
/// large answer, is given back once written, so idle connections hold
/// little.
const HELD_KEEP_BYTES: usize = 16 * 1024;

/// A connection whose writes are gathered until a flush (see the module).
#[derive(Debug)]
pub struct Coalesced<IO> {
    inner: IO,
    /// Bytes written to this wrapper and not yet to `inner`, from `sent` on.
    held: Vec<u8>,
    /// How much of `held` has reached `inner`.
    sent: usize,
    /// A flush of what is held was put off once (and the task woken).
    deferred: bool,
}

impl<IO> Coalesced<IO> {
    /// Wraps an accepted connection.
    pub fn new(inner: IO) -> Self {
        Self {
            inner,
            held: Vec::new(),
            sent: 0,
            deferred: false,
        }
    }
}

impl<IO: AsyncWrite + Unpin> Coalesced<IO> {
    /// Writes everything held to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        if self.held.capacity() > HELD_KEEP_BYTES {
            self.held = Vec::new();
        }
        self.sent = 0;
        self.deferred = false;
        Poll::Ready(Ok(()))
    }

    /// Makes room before holding `incoming` more bytes.
    fn poll_room(&mut self, cx: &mut Context<'_>, incoming: usize) -> Poll<io::Result<()>> {
        if self.held.len() + incoming > HELD_BYTES_MAX && !self.held.is_empty() {
            std::task::ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Coalesced<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Coalesced<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        std::task::ready!(this.poll_room(cx, total))?;
        this.held.reserve(total);
        for b in bufs {
            this.held.extend_from_slice(b);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        // Slices are copied into one buffer: h2 may hand over chained
        // payloads as they are.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.sent < this.held.len() {
            if !this.deferred {
                // The task runs again soon and flushes again (h2 flushes
                // whenever its connection task has nothing more to read):
                // whatever it adds by then leaves in the same write.
                this.deferred = true;
                cx.waker().wake_by_ref();
                return Poll::Ready(Ok(()));
            }
            std::task::ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for Coalesced<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures::task::ArcWake;

    use super::*;

    /// A connection that records each write it takes, takes at most `chunk`
    /// bytes a call, and says `Pending` (waking at once) on every
    /// `pending_every`-th call when that is not 0.
    #[derive(Default)]
    struct Wire {
        writes: Vec<Vec<u8>>,
        chunk: usize,
        pending_every: usize,
        calls: usize,
        shut: bool,
    }

    impl AsyncWrite for Wire {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.pending_every > 0 && self.calls.is_multiple_of(self.pending_every) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = if self.chunk == 0 {
                buf.len()
            } else {
                buf.len().min(self.chunk)
            };
            self.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl ArcWake for Wakes {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn context() -> (Arc<Wakes>, std::task::Waker) {
        let wakes = Arc::new(Wakes::default());
        let waker = futures::task::waker(Arc::clone(&wakes));
        (wakes, waker)
    }

    fn write(c: &mut Coalesced<Wire>, cx: &mut Context<'_>, bytes: &[u8]) {
        match Pin::new(c).poll_write(cx, bytes) {
            Poll::Ready(Ok(n)) => assert_eq!(n, bytes.len()),
            other => panic!("write not taken: {other:?}"),
        }
    }

    fn flush(c: &mut Coalesced<Wire>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(c).poll_flush(cx)
    }

    fn sent(c: &Coalesced<Wire>) -> Vec<u8> {
        c.inner.writes.concat()
    }

    #[test]
    fn an_answer_flushed_twice_in_one_turn_leaves_in_one_write() {
        let (wakes, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesced::new(Wire::default());
        // h2's flush before the trailers, then its flush at the end of the turn.
        write(&mut c, &mut cx, b"headers+message");
        assert!(flush(&mut c, &mut cx).is_ready());
        assert!(c.inner.writes.is_empty(), "the first flush is put off");
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "and the task woken to flush again"
        );
        write(&mut c, &mut cx, b"+trailers");
        assert!(matches!(flush(&mut c, &mut cx), Poll::Ready(Ok(()))));
        assert_eq!(c.inner.writes, vec![b"headers+message+trailers".to_vec()]);
    }

    #[test]
    fn a_flush_put_off_goes_out_at_the_next_flush() {
        let (wakes, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesced::new(Wire::default());
        write(&mut c, &mut cx, b"small answer");
        assert!(flush(&mut c, &mut cx).is_ready());
        assert!(c.inner.writes.is_empty());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // The woken task's next turn: nothing new, the held bytes go out.
        assert!(matches!(flush(&mut c, &mut cx), Poll::Ready(Ok(()))));
        assert_eq!(sent(&c), b"small answer");
        // Nothing held: a flush writes nothing and wakes no one.
        assert!(flush(&mut c, &mut cx).is_ready());
        assert_eq!(c.inner.writes.len(), 1);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // The next answer is put off once again.
        write(&mut c, &mut cx, b"next");
        assert!(flush(&mut c, &mut cx).is_ready());
        assert_eq!(c.inner.writes.len(), 1);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn vectored_writes_are_held_in_order() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesced::new(Wire::default());
        let parts = [io::IoSlice::new(b"head"), io::IoSlice::new(b"-body")];
        assert!(matches!(
            Pin::new(&mut c).poll_write_vectored(&mut cx, &parts),
            Poll::Ready(Ok(9))
        ));
        write(&mut c, &mut cx, b"-tail");
        assert!(flush(&mut c, &mut cx).is_ready());
        assert!(flush(&mut c, &mut cx).is_ready());
        assert_eq!(c.inner.writes, vec![b"head-body-tail".to_vec()]);
    }

    #[test]
    fn short_and_pending_writes_lose_nothing() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesced::new(Wire {
            chunk: 3,
            pending_every: 2,
            ..Wire::default()
        });
        let answer: Vec<u8> = (0u8..=200).collect();
        write(&mut c, &mut cx, &answer);
        assert!(flush(&mut c, &mut cx).is_ready());
        let mut turns = 0;
        while flush(&mut c, &mut cx).is_pending() {
            turns += 1;
            assert!(turns < 1_000, "the flush never finished");
        }
        assert!(turns > 0, "the wire said Pending along the way");
        assert_eq!(sent(&c), answer);
        assert!(c.inner.writes.iter().all(|w| w.len() <= 3));
    }

    #[test]
    fn more_than_the_hold_limit_is_written_without_a_flush() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesced::new(Wire::default());
        let block = vec![7u8; HELD_BYTES_MAX];
        write(&mut c, &mut cx, &block);
        assert!(c.inner.writes.is_empty());
        write(&mut c, &mut cx, b"more");
        assert_eq!(sent(&c), block, "the full buffer went out first");
        assert!(flush(&mut c, &mut cx).is_ready());
        assert!(flush(&mut c, &mut cx).is_ready());
        assert_eq!(sent(&c).len(), HELD_BYTES_MAX + 4);
        assert!(
            c.held.capacity() <= HELD_KEEP_BYTES,
            "the buffer grown for a large answer is given back"
        );
    }

    #[test]
    fn shutdown_writes_what_is_held_first() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesced::new(Wire::default());
        write(&mut c, &mut cx, b"goaway");
        assert!(flush(&mut c, &mut cx).is_ready());
        assert!(matches!(
            Pin::new(&mut c).poll_shutdown(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(sent(&c), b"goaway");
        assert!(c.inner.shut);
    }
}
