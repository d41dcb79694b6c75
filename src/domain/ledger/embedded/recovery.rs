//! Reading a ledger directory back: the newest snapshot, then every later
//! segment in order; and compaction, which folds closed segments into a new
//! snapshot so that restart time depends on the live reservations, not on
//! how long the service has run.
//!
//! This works on names only (SKUs, supplier ids); turning the result into
//! live state with this process's ids is the ledger's job.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::codec::{decode_frame, encode_frame, Frame, Made, Record, Whole};
use super::journal::{segment_name, snapshot_name, sync_dir};
use crate::domain::ledger::{purchase_orders, Delivery, State};

/// Why a ledger directory cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file could not be read, written or created.
    #[error("ledger directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process has the directory open.
    #[error("ledger directory {0} is in use by another stockroute process")]
    Locked(PathBuf),
    /// A file holds something that is not a valid journal.
    #[error("ledger file {path} is damaged at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything a directory says, by name.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Every reservation.
    pub reservations: HashMap<String, Whole>,
    /// Newest full-feed `as_of` per supplier id.
    pub watermarks: HashMap<String, i64>,
    /// Highest segment number found (0 = none).
    pub last_segment: u64,
    /// Records read from segments (not counting the snapshot).
    pub records_replayed: u64,
}

/// Applies one record. Records about reservations the state does not have
/// (pruned long ago) are skipped: they cannot change anything that counts.
pub fn apply(state: &mut Replayed, record: Record) {
    match record {
        Record::Reserve { made, commit } => {
            let changed_at_ms = commit.as_ref().map_or(made.created_at_ms, |c| c.1);
            let mut whole = fresh(made);
            whole.changed_at_ms = changed_at_ms;
            if let Some((order_ref, at_ms)) = commit {
                commit_whole(&mut whole, order_ref, at_ms);
            }
            state
                .reservations
                .insert(whole.made.id.as_str().to_owned(), whole);
        }
        Record::Commit {
            id,
            order_ref,
            at_ms,
        } => {
            if let Some(w) = state.reservations.get_mut(id.as_str()) {
                commit_whole(w, order_ref, at_ms);
            }
        }
        Record::Release { id, reason, at_ms } => {
            if let Some(w) = state.reservations.get_mut(id.as_str()) {
                release_whole(w, reason, at_ms);
            }
        }
        Record::Expire { id, at_ms } => {
            if let Some(w) = state.reservations.get_mut(id.as_str()) {
                if w.state == State::Held {
                    w.state = State::Expired;
                    w.changed_at_ms = at_ms;
                }
            }
        }
        Record::Delivery {
            id,
            po_number,
            delivery,
            at_ms,
        } => {
            if let Some(w) = state.reservations.get_mut(id.as_str()) {
                if let Some(o) = w.orders.iter_mut().find(|o| o.po_number == po_number) {
                    o.delivery = delivery;
                    w.changed_at_ms = w.changed_at_ms.max(at_ms);
                }
            }
        }
        Record::SupplyRefreshed {
            supplier_id,
            as_of_ms,
        } => {
            let w = state.watermarks.entry(supplier_id).or_insert(i64::MIN);
            *w = (*w).max(as_of_ms);
        }
        Record::Whole(whole) => {
            state
                .reservations
                .insert(whole.made.id.as_str().to_owned(), *whole);
        }
    }
}

/// A reservation as just made: held.
pub fn fresh(made: Made) -> Whole {
    Whole {
        changed_at_ms: made.created_at_ms,
        made,
        state: State::Held,
        order_ref: None,
        committed_at_ms: None,
        release_reason: None,
        orders: Vec::new(),
    }
}

/// Turns `w` into an allocation with its purchase orders.
pub fn commit_whole(w: &mut Whole, order_ref: String, at_ms: i64) {
    w.orders = purchase_orders(&w.made.id, &w.made.lines, at_ms);
    w.state = State::Committed;
    w.order_ref = Some(order_ref);
    w.committed_at_ms = Some(at_ms);
    w.changed_at_ms = at_ms;
}

/// Releases `w`; orders not yet acknowledged are cancelled.
pub fn release_whole(w: &mut Whole, reason: String, at_ms: i64) {
    w.state = State::Released;
    w.release_reason = Some(reason);
    w.changed_at_ms = at_ms;
    for o in &mut w.orders {
        if matches!(o.delivery, Delivery::Pending { .. }) {
            o.delivery = Delivery::Cancelled;
        }
    }
}

/// Whether `w` can be forgotten at `now_ms`: finished with (released,
/// expired, or committed with every order settled and every line reflected
/// in a newer feed) and unchanged for `retention_ms`.
pub fn prunable(
    w: &Whole,
    watermarks: &HashMap<String, i64>,
    now_ms: i64,
    retention_ms: i64,
) -> bool {
    let settled_at = match w.state {
        State::Released | State::Expired => w.changed_at_ms,
        State::Held if w.made.expires_at_ms <= now_ms => w.made.expires_at_ms,
        State::Held => return false,
        State::Committed => {
            let committed = w.committed_at_ms.unwrap_or(i64::MAX);
            let orders_done = w
                .orders
                .iter()
                .all(|o| !matches!(o.delivery, Delivery::Pending { .. }));
            let reflected = w.made.lines.iter().all(|l| {
                watermarks
                    .get(&l.supplier_id)
                    .is_some_and(|&wm| committed < wm)
            });
            if !(orders_done && reflected) {
                return false;
            }
            w.changed_at_ms
        }
    };
    now_ms.saturating_sub(settled_at) > retention_ms
}

/// Segment and snapshot numbers present in `dir`, each sorted.
fn listing(dir: &Path) -> Result<(Vec<u64>, Vec<u64>), OpenError> {
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let num = |prefix: &str, suffix: &str| {
            name.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(n) = num("journal-", ".log") {
            segments.push(n);
        } else if let Some(n) = num("snapshot-", ".snap") {
            snapshots.push(n);
        }
    }
    segments.sort_unstable();
    snapshots.sort_unstable();
    Ok((segments, snapshots))
}

/// Reads every frame of `path` into `state`. With `tolerate_torn_tail`, a
/// torn last frame ends the file (and is cut off); otherwise it is damage.
fn read_file(
    path: &Path,
    state: &mut Replayed,
    tolerate_torn_tail: bool,
) -> Result<u64, OpenError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    let mut at = 0usize;
    let mut records = 0u64;
    while at < bytes.len() {
        match decode_frame(&bytes[at..]) {
            Frame::Record(rec, n) => {
                apply(state, *rec);
                at += n;
                records += 1;
            }
            Frame::Torn if tolerate_torn_tail => {
                // Zeros to the end are the segment's reserved space, never
                // written: where the writer stopped, not a torn write.
                if bytes[at..].iter().all(|&b| b == 0) {
                    tracing::debug!(file = %path.display(), offset = at, "ledger journal ends in reserved space");
                } else {
                    tracing::warn!(
                        file = %path.display(), offset = at, dropped_bytes = bytes.len() - at,
                        "ledger journal ends in a torn write; cutting it off"
                    );
                }
                cut_at(path, at)?;
                break;
            }
            Frame::Torn => {
                return Err(OpenError::Corrupt {
                    path: path.to_path_buf(),
                    offset: at as u64,
                    reason: "a frame is cut short or fails its checksum".into(),
                })
            }
            Frame::Invalid(reason) => {
                return Err(OpenError::Corrupt {
                    path: path.to_path_buf(),
                    offset: at as u64,
                    reason,
                })
            }
        }
    }
    Ok(records)
}

/// Shortens `path` to its first `len` bytes, durably.
fn cut_at(path: &Path, len: usize) -> Result<(), OpenError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.set_len(len as u64).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads `dir`: the newest snapshot, then the segments after it. The newest
/// segment may end in a torn write (a crash mid-batch): that tail was never
/// acknowledged and is cut off.
pub fn load(dir: &Path) -> Result<Replayed, OpenError> {
    let (segments, snapshots) = listing(dir)?;
    let mut state = Replayed::default();
    let base = snapshots.last().copied().unwrap_or(0);
    if base > 0 {
        read_file(&dir.join(snapshot_name(base)), &mut state, false)?;
    }
    let newest = segments.last().copied().unwrap_or(0);
    for &seq in segments.iter().filter(|&&s| s > base) {
        state.records_replayed +=
            read_file(&dir.join(segment_name(seq)), &mut state, seq == newest)?;
    }
    state.last_segment = newest.max(base);
    Ok(state)
}

/// A snapshot is written and synced in pieces of this size ...
const SNAPSHOT_PIECE_BYTES: usize = 1 << 20;
/// ... at no more than this rate (half a 64 MiB segment's worth a second).
const SNAPSHOT_BYTES_PER_SEC: u64 = 32 << 20;

/// Writes `buf` to `f` and makes it durable, a piece at a time and no faster
/// than `SNAPSHOT_BYTES_PER_SEC` until `hurry` is set. The journal shares the
/// disk: a snapshot of tens of MiB written and synced at full speed fills the
/// device's queue, and the journal's fsyncs (which every acknowledgement
/// waits for) queue behind it for tens to hundreds of milliseconds. Small
/// synced pieces with pauses keep that queue short; a snapshot only has to
/// be done well before the next segment closes. Once the ledger has stopped
/// taking calls nobody waits on the journal, and shutdown should not.
fn write_paced(f: &mut File, buf: &[u8], hurry: &AtomicBool) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let mut written = 0u64;
    for piece in buf.chunks(SNAPSHOT_PIECE_BYTES) {
        f.write_all(piece)?;
        f.sync_data()?;
        written += piece.len() as u64;
        let due =
            std::time::Duration::from_secs_f64(written as f64 / SNAPSHOT_BYTES_PER_SEC as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            if !hurry.load(Ordering::Acquire) {
                std::thread::sleep(ahead);
            }
        }
    }
    f.sync_all()
}

/// Folds the newest snapshot and every segment up to `upto` into snapshot
/// `upto`, dropping what [`prunable`] allows, then deletes the files it
/// replaces. Safe to crash at any point: the new snapshot only counts once
/// renamed into place, and files are deleted only after that. The snapshot
/// is written at a gentle pace (see `write_paced`) until `hurry` is set.
///
/// Folds only once those segments hold at least as many bytes as the
/// snapshot. Each fold rewrites every kept reservation, so folding at every
/// closed segment would write the whole state once per segment: with many
/// reservations kept, far more than the journal itself. Waiting for as much
/// journal as snapshot writes at most about as much snapshot as journal,
/// and a restart still reads at most about twice the snapshot plus the
/// open segment.
pub fn compact(
    dir: &Path,
    upto: u64,
    now_ms: i64,
    retention_ms: i64,
    hurry: &AtomicBool,
) -> Result<(), OpenError> {
    let (segments, snapshots) = listing(dir)?;
    let base = snapshots.last().copied().unwrap_or(0);
    if upto <= base {
        return Ok(());
    }
    let size = |p: PathBuf| fs::metadata(&p).map(|m| m.len()).map_err(io(&p));
    let snapshot_bytes = if base > 0 {
        size(dir.join(snapshot_name(base)))?
    } else {
        0
    };
    let mut journal_bytes = 0;
    for &seq in segments.iter().filter(|&&s| s > base && s <= upto) {
        journal_bytes += size(dir.join(segment_name(seq)))?;
    }
    if journal_bytes < snapshot_bytes {
        tracing::debug!(
            upto,
            journal_bytes,
            snapshot_bytes,
            "ledger journal not compacted yet: less journal than snapshot"
        );
        return Ok(());
    }
    let mut state = Replayed::default();
    if base > 0 {
        read_file(&dir.join(snapshot_name(base)), &mut state, false)?;
    }
    for &seq in segments.iter().filter(|&&s| s > base && s <= upto) {
        read_file(&dir.join(segment_name(seq)), &mut state, false)?;
    }
    let watermarks = state.watermarks.clone();
    state
        .reservations
        .retain(|_, w| !prunable(w, &watermarks, now_ms, retention_ms));
    let mut buf = Vec::new();
    for (supplier_id, &as_of_ms) in &state.watermarks {
        encode_frame(
            &Record::SupplyRefreshed {
                supplier_id: supplier_id.clone(),
                as_of_ms,
            },
            &mut buf,
        );
    }
    let mut ids: Vec<&String> = state.reservations.keys().collect();
    ids.sort_unstable();
    for id in ids {
        encode_frame(
            &Record::Whole(Box::new(state.reservations[id].clone())),
            &mut buf,
        );
    }
    let tmp = dir.join(format!("{}.tmp", snapshot_name(upto)));
    let done = dir.join(snapshot_name(upto));
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        write_paced(&mut f, &buf, hurry).map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &done).map_err(io(&done))?;
    sync_dir(dir).map_err(io(dir))?;
    for &seq in segments.iter().filter(|&&s| s <= upto) {
        let p = dir.join(segment_name(seq));
        fs::remove_file(&p).map_err(io(&p))?;
    }
    for &seq in snapshots.iter().filter(|&&s| s < upto) {
        let p = dir.join(snapshot_name(seq));
        fs::remove_file(&p).map_err(io(&p))?;
    }
    sync_dir(dir).map_err(io(dir))?;
    tracing::info!(
        upto,
        reservations = state.reservations.len(),
        snapshot_bytes = buf.len(),
        "ledger journal compacted"
    );
    Ok(())
}
