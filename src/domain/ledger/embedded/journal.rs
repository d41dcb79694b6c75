//! The write-ahead journal: records appended in memory, written and
//! fsynced by one thread in batches (group commit), numbered so that callers
//! can wait until theirs is on disk.
//!
//! Appending only copies bytes into a buffer under a short lock and returns
//! the record's sequence number (LSN); the writer thread takes the whole
//! buffer, writes it, calls `fdatasync` once and publishes the new durable
//! LSN. While one fsync runs, the next batch gathers, so the fsync rate
//! bounds batches per second rather than records per second. The file order
//! is the LSN order, which is what lets the ledger reason about prefixes: a
//! record on disk implies every earlier record is.
//!
//! Files live in one directory: `journal-NNNNNNNN.log` segments and
//! `snapshot-NNNNNNNN.snap` files (a snapshot covers every segment up to its
//! number). When a segment grows past its size limit the writer starts the
//! next one and hands the closed number to the compactor.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::codec::{encode_frame, Record};
use crate::domain::ledger::LedgerError;

/// The durable position and whether the writer has failed.
#[derive(Debug, Clone, Default)]
struct Durable {
    lsn: u64,
    failed: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Pending {
    /// Frames not yet handed to the writer.
    buf: Vec<u8>,
    /// LSN the next append gets (LSNs start at 1; 0 = nothing).
    next_lsn: u64,
    /// Stop once the buffer is written.
    stop: bool,
    /// Set when the writer failed: nothing more is accepted.
    failed: Option<Arc<str>>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
    /// Batches written and synced so far (records per sync = LSN / this).
    syncs: std::sync::atomic::AtomicU64,
}

/// The journal of one ledger directory.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("journal-{seq:08}.log")
}

/// Name of the snapshot covering segments up to `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("snapshot-{seq:08}.snap")
}

/// Makes a directory entry (a new or renamed file) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Journal {
    /// Starts writing segment `seq` (created empty) in `dir`. Each time a
    /// segment passes `segment_bytes_max`, the next is started and the
    /// closed one's number is sent to `closed`.
    pub fn start(
        dir: &Path,
        seq: u64,
        segment_bytes_max: u64,
        closed: std::sync::mpsc::Sender<u64>,
    ) -> std::io::Result<Journal> {
        let file = create_segment(dir, seq)?;
        let (durable, _) = watch::channel(Durable::default());
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                next_lsn: 1,
                ..Pending::default()
            }),
            wake: Condvar::new(),
            durable,
            syncs: std::sync::atomic::AtomicU64::new(0),
        });
        let writer = Writer {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            file,
            seq,
            written: 0,
            segment_bytes_max,
            closed,
        };
        let handle = std::thread::Builder::new()
            .name("ledger-journal".into())
            .spawn(move || writer.run())?;
        Ok(Journal {
            shared,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Queues `record`; returns its LSN. Fails once the journal has failed or
    /// stopped.
    pub fn append(&self, record: &Record) -> Result<u64, LedgerError> {
        let mut frame = Vec::with_capacity(256);
        encode_frame(record, &mut frame);
        self.append_frame(&frame)
    }

    /// Queues an encoded frame (see `codec`); returns its LSN.
    pub fn append_frame(&self, frame: &[u8]) -> Result<u64, LedgerError> {
        let mut p = self.shared.pending.lock();
        if let Some(why) = &p.failed {
            return Err(LedgerError::Unavailable(why.to_string()));
        }
        if p.stop {
            return Err(LedgerError::Unavailable(
                "the ledger is shutting down".into(),
            ));
        }
        let lsn = p.next_lsn;
        p.next_lsn += 1;
        let was_empty = p.buf.is_empty();
        p.buf.extend_from_slice(frame);
        drop(p);
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(lsn)
    }

    /// Waits until the record `lsn` (and so every earlier one) is on disk.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), LedgerError> {
        let mut rx = self.shared.durable.subscribe();
        let d = rx
            .wait_for(|d| d.lsn >= lsn || d.failed.is_some())
            .await
            .map_err(|_| LedgerError::Unavailable("the journal writer stopped".into()))?;
        if d.lsn >= lsn {
            return Ok(());
        }
        Err(LedgerError::Unavailable(
            d.failed.as_deref().unwrap_or("journal failed").to_owned(),
        ))
    }

    /// Records made durable and the syncs that took: how well group commit
    /// batches.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.shared.durable.borrow().lsn,
            self.shared.syncs.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Why the journal stopped accepting records, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .durable
            .borrow()
            .failed
            .as_deref()
            .map(str::to_owned)
    }

    /// Writes what is queued, stops the writer and waits for it.
    pub fn close(&self) {
        {
            let mut p = self.shared.pending.lock();
            p.stop = true;
        }
        self.shared.wake.notify_one();
        if let Some(h) = self.writer.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn create_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.join(segment_name(seq)))?;
    sync_dir(dir)?;
    Ok(file)
}

struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    file: File,
    seq: u64,
    written: u64,
    segment_bytes_max: u64,
    closed: std::sync::mpsc::Sender<u64>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::new();
        loop {
            let last_lsn = {
                let mut p = self.shared.pending.lock();
                while p.buf.is_empty() && !p.stop {
                    self.shared.wake.wait(&mut p);
                }
                if p.buf.is_empty() {
                    return;
                }
                std::mem::swap(&mut p.buf, &mut batch);
                p.next_lsn - 1
            };
            let started = std::time::Instant::now();
            if let Err(e) = self.write(&batch) {
                let why: Arc<str> = format!(
                    "journal write failed in {}: {e}; restart to recover from the last durable record",
                    self.dir.display()
                )
                .into();
                tracing::error!(error = %why, "ledger journal failed");
                self.shared.pending.lock().failed = Some(Arc::clone(&why));
                self.shared.durable.send_modify(|d| d.failed = Some(why));
                return;
            }
            metrics::histogram!("stockroute_ledger_journal_sync_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("stockroute_ledger_journal_bytes_total")
                .increment(batch.len() as u64);
            self.shared
                .syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.shared.durable.send_modify(|d| d.lsn = last_lsn);
            batch.clear();
            if self.written >= self.segment_bytes_max {
                if let Err(e) = self.rotate() {
                    tracing::warn!(error = %e, "cannot start a new journal segment; continuing in the old one");
                }
            }
        }
    }

    fn write(&mut self, batch: &[u8]) -> std::io::Result<()> {
        self.file.write_all(batch)?;
        self.file.sync_data()?;
        self.written += batch.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = create_segment(&self.dir, self.seq + 1)?;
        let closed = self.seq;
        self.file = next;
        self.seq += 1;
        self.written = 0;
        // The compactor may be gone at shutdown; the segment is then folded at the next start.
        let _ = self.closed.send(closed);
        Ok(())
    }
}
