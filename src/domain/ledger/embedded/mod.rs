//! The embedded ledger: in-process, sharded, durable through a write-ahead
//! journal with group commit.
//!
//! Stock is counted in a [`HoldsTable`] sharded by (supplier, product); a
//! reserve is one all-or-nothing conditional add over the shards it touches,
//! which is what makes two racing reserves for the last unit give it to
//! exactly one. Reservations live in shards by id, each with its own expiry
//! queue. Every change is journaled before it is acknowledged.
//!
//! Two orderings keep the journal honest (see docs/reservations.md):
//! - A change that *frees* stock (release, expiry, a feed retiring
//!   allocations) is appended to the journal before the units are freed;
//!   one that *takes* stock is appended after. So whatever prefix of the
//!   journal survives a crash never holds more than memory ever did.
//! - Any answer waits until every record it observed is durable, so no
//!   caller is told of something a crash could undo.
//!
//! A call's future may be dropped at any await. Mutations run to completion
//! under a lock with no await inside, and the only await afterwards is for
//! durability. Reserve and Allocate also settle their idempotency key before
//! that await (bound to the reservation, which answers nobody until it is
//! durable, or freed), so the key is always settled without a task of its own.

pub mod codec;
pub mod journal;
pub mod recovery;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHasher};
use smallvec::SmallVec;
use tokio::sync::watch;

use self::codec::{Made, Record, Whole, UNRESOLVED};
use self::journal::Journal;
pub use self::recovery::OpenError;
use self::recovery::{commit_whole, fresh, prunable, release_whole};
use super::holds::Short;
use super::{
    AllocateRequest, CommitRequest, Delivery, DeliveryOutcome, HoldsTable, HoldsView,
    IdempotencyKey, KeyResolver, Ledger, LedgerError, LedgerHealth, OutboundOrder, ReleaseRequest,
    RequestFingerprint, Reservation, ReservationId, ReserveRequest, State, StockKey, StockShortage,
    RELEASE_REASON_BYTES_MAX,
};
use crate::domain::clock::Clock;

/// Reservation shards: enough that unrelated reservations rarely share a lock.
const SHARDS: usize = 64;
// `shard_index` takes the top six bits of a 64-bit mix.
const _: () = assert!(SHARDS <= 64);
/// How often terminal reservations past retention are dropped from memory.
const PRUNE_INTERVAL_MS: i64 = 60_000;
/// Name of the file whose lock marks the directory as in use.
const LOCK_FILE: &str = "LOCK";

/// How an embedded ledger is set up.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Journal directory; `None` keeps everything in memory only (nothing
    /// survives a restart).
    pub dir: Option<PathBuf>,
    /// A journal segment past this size is closed and folded into a snapshot.
    pub segment_bytes_max: u64,
    /// Finished reservations (and their idempotency keys) are kept this long
    /// after their last change; at least 24 h.
    pub retention_ms: i64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            dir: None,
            segment_bytes_max: 64 * 1024 * 1024,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// The embedded ledger. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct EmbeddedLedger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLedger")
            .field("durable", &self.inner.journal.is_some())
            .field("counted_units", &self.inner.holds.total())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct KeyScope {
    owner: Option<String>,
    key: IdempotencyKey,
}

type Outcome = Option<Result<ReservationId, LedgerError>>;

enum KeySlot {
    /// The key belongs to a reservation.
    Bound {
        id: ReservationId,
        fingerprint: RequestFingerprint,
    },
    /// A call with this key is making its reservation (no await until the
    /// key is settled); others wait for its outcome.
    InFlight {
        fingerprint: RequestFingerprint,
        /// Made by the first caller that has to wait: most keys never meet
        /// a second call, and they then cost no channel.
        done: Option<watch::Sender<Outcome>>,
    },
}

/// A receiver for the outcome of the call holding an in-flight key.
fn outcome_of(done: &mut Option<watch::Sender<Outcome>>) -> watch::Receiver<Outcome> {
    match done {
        Some(tx) => tx.subscribe(),
        None => {
            let (tx, rx) = watch::channel(None);
            *done = Some(tx);
            rx
        }
    }
}

/// The key of a call that is making its reservation. Settled by
/// [`Running::settle`]; dropped unsettled (only if making it panicked), it
/// frees the key and tells any waiter the call stopped, so no key is left in
/// flight forever.
struct Running<'a> {
    keys: &'a Mutex<FxHashMap<KeyScope, KeySlot>>,
    scope: Option<KeyScope>,
}

impl Running<'_> {
    /// Binds the key to the reservation made, or frees it when the call
    /// failed, and tells whoever waited for it.
    fn settle(
        mut self,
        fingerprint: RequestFingerprint,
        made: Result<&ReservationId, &LedgerError>,
    ) {
        let Some(scope) = self.scope.take() else {
            return;
        };
        let done = {
            let mut keys = self.keys.lock();
            let slot = match made {
                Ok(id) => keys.get_mut(&scope).map(|slot| {
                    std::mem::replace(
                        slot,
                        KeySlot::Bound {
                            id: id.clone(),
                            fingerprint,
                        },
                    )
                }),
                Err(_) => keys.remove(&scope),
            };
            match slot {
                Some(KeySlot::InFlight { done, .. }) => done,
                _ => None,
            }
        };
        if let Some(tx) = done {
            let _ = tx.send(Some(made.cloned().map_err(Clone::clone)));
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let Some(scope) = self.scope.take() else {
            return;
        };
        let slot = self.keys.lock().remove(&scope);
        if let Some(KeySlot::InFlight { done: Some(tx), .. }) = slot {
            let _ = tx.send(Some(Err(LedgerError::Unavailable(
                "the call holding this key stopped".into(),
            ))));
        }
    }
}

struct Entry {
    whole: Whole,
    /// Last journal record that changed it: answers wait for it.
    lsn: u64,
    /// Its key in the shard's expiry queue while it is held.
    due: Option<(i64, u64)>,
}

#[derive(Default)]
struct Shard {
    entries: FxHashMap<ReservationId, Entry>,
    /// Held reservations by (expiry, sequence): the sequence keeps keys
    /// unique and cheap to compare (ids made in one millisecond share most
    /// of their bytes).
    expiry: BTreeMap<(i64, u64), ReservationId>,
}

/// Allocations still counted, per supplier.
#[derive(Default)]
struct SupplierAllocs {
    /// Newest full-feed data time; allocations committed before it are reflected.
    watermark: Option<i64>,
    /// By (committed_at, reservation): the units still counted.
    counted: BTreeMap<(i64, ReservationId), Vec<(StockKey, u32)>>,
}

/// Purchase orders not yet acknowledged.
#[derive(Default)]
struct Outbox {
    /// (not before, po_number).
    due: BTreeSet<(i64, String)>,
    /// po_number -> (reservation, not before).
    by_po: FxHashMap<String, (ReservationId, i64)>,
}

impl Outbox {
    fn put(&mut self, id: &ReservationId, po: &str, at_ms: i64) {
        self.remove(po);
        self.due.insert((at_ms, po.to_owned()));
        self.by_po.insert(po.to_owned(), (id.clone(), at_ms));
    }

    fn remove(&mut self, po: &str) {
        if let Some((_, at)) = self.by_po.remove(po) {
            self.due.remove(&(at, po.to_owned()));
        }
    }
}

struct Inner {
    clock: Arc<dyn Clock>,
    holds: Arc<HoldsTable>,
    shards: Box<[Mutex<Shard>]>,
    keys: Box<[Mutex<FxHashMap<KeyScope, KeySlot>>]>,
    allocs: Mutex<FxHashMap<String, SupplierAllocs>>,
    outbox: Mutex<Outbox>,
    journal: Option<Journal>,
    compactor: Mutex<Option<std::thread::JoinHandle<()>>>,
    retention_ms: i64,
    last_prune_ms: AtomicI64,
    /// Tie-breaker for expiry queue keys.
    expiry_seq: std::sync::atomic::AtomicU64,
    /// Set once the ledger stops taking calls (also tells the compactor that
    /// nobody waits on the disk any more, so it need not pace its writes).
    closed: Arc<AtomicBool>,
    /// Held open: its lock marks the directory as ours.
    _lock: Option<File>,
}

impl Drop for Inner {
    /// A ledger dropped without `flush` still stops its writer
    /// and waits for the compactor: a compaction left running would write
    /// its snapshot into a directory whose lock is already released, where
    /// another process (or a test's clean-up) may be at work.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Some(j) = &self.journal {
            j.close();
        }
        if let Some(compactor) = self.compactor.get_mut().take() {
            let _ = compactor.join();
        }
    }
}

fn shard_index<T: Hash + ?Sized>(v: &T) -> usize {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    // The shard's own map hashes the same value with the same hasher and
    // places it by the low bits; picking the shard from a few of those bits
    // would leave every key of a shard with them equal, crowding its table
    // into 1/64 of the buckets (long probes, string compares). Mixing first
    // makes the shard depend on all the bits and leaves the low ones free.
    (h.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHARDS
}

fn view(w: &Whole, now_ms: i64) -> Reservation {
    let state = if w.state == State::Held && now_ms >= w.made.expires_at_ms {
        State::Expired
    } else {
        w.state
    };
    Reservation {
        id: w.made.id.clone(),
        state,
        lines: w.made.lines.clone(),
        plan: w.made.plan.clone(),
        ship_to: w.made.ship_to.clone(),
        created_at_ms: w.made.created_at_ms,
        expires_at_ms: w.made.expires_at_ms,
        order_ref: w.order_ref.clone(),
        committed_at_ms: w.committed_at_ms,
        release_reason: w.release_reason.clone(),
        orders: w.orders.clone(),
        owner: w.made.owner.clone(),
    }
}

fn check_owner(w: &Whole, owner: Option<&str>) -> Result<(), LedgerError> {
    match (w.made.owner.as_deref(), owner) {
        (Some(mine), Some(theirs)) if mine != theirs => Err(LedgerError::NotOwner {
            id: w.made.id.clone(),
        }),
        _ => Ok(()),
    }
}

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl EmbeddedLedger {
    /// Opens the ledger: recovers what `options.dir` holds (creating it when
    /// missing) and starts the journal. Blocking: call off the async threads.
    /// `resolver` maps stored names to this process's ids.
    pub fn open(
        options: &EmbeddedOptions,
        clock: Arc<dyn Clock>,
        resolver: &dyn KeyResolver,
    ) -> Result<EmbeddedLedger, OpenError> {
        let Some(dir) = &options.dir else {
            return Ok(Self::in_memory(clock));
        };
        let closed = Arc::new(AtomicBool::new(false));
        let (replayed, journal, compactor, lock) = open_dir(dir, options, &clock, &closed)?;
        let mut inner = Inner::new(clock, options.retention_ms);
        inner.closed = closed;
        inner.journal = Some(journal);
        inner.compactor = Mutex::new(Some(compactor));
        inner._lock = Some(lock);
        let records = replayed.records_replayed;
        let count = replayed.reservations.len();
        inner.restore(replayed, resolver);
        tracing::info!(
            dir = %dir.display(),
            reservations = count,
            records_replayed = records,
            counted_units = inner.holds.total(),
            "ledger recovered"
        );
        Ok(EmbeddedLedger {
            inner: Arc::new(inner),
        })
    }

    /// An in-memory ledger (nothing survives a restart), for tests and benchmarks.
    pub fn in_memory(clock: Arc<dyn Clock>) -> EmbeddedLedger {
        let retention_ms = EmbeddedOptions::default().retention_ms;
        EmbeddedLedger {
            inner: Arc::new(Inner::new(clock, retention_ms)),
        }
    }

    /// Records journaled and the syncs that made them durable (0, 0 in
    /// memory): records per sync is the group-commit batch size.
    pub fn journal_progress(&self) -> (u64, u64) {
        self.inner
            .journal
            .as_ref()
            .map_or((0, 0), Journal::progress)
    }

    /// The table behind [`Ledger::holds`], for checks that need its entries.
    pub fn holds_table(&self) -> &HoldsTable {
        &self.inner.holds
    }
}

type Opened = (
    recovery::Replayed,
    Journal,
    std::thread::JoinHandle<()>,
    File,
);

fn open_dir(
    dir: &Path,
    options: &EmbeddedOptions,
    clock: &Arc<dyn Clock>,
    closed: &Arc<AtomicBool>,
) -> Result<Opened, OpenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OpenError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir.into())),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
    }
    // A compaction cut short leaves a temporary snapshot; it never counted.
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let replayed = recovery::load(dir)?;
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let compactor = {
        let (owned, clock, retention_ms) =
            (dir.to_path_buf(), Arc::clone(clock), options.retention_ms);
        let closed = Arc::clone(closed);
        std::thread::Builder::new()
            .name("ledger-compact".into())
            .spawn(move || {
                lower_priority();
                for upto in rx {
                    if let Err(e) = recovery::compact(&owned, upto, clock.now_ms(), retention_ms, &closed) {
                        tracing::error!(error = %e, "ledger compaction failed; the journal is kept whole");
                    }
                }
            })
            .map_err(io(dir))?
    };
    let journal = Journal::start(
        dir,
        replayed.last_segment + 1,
        options.segment_bytes_max,
        tx.clone(),
    )
    .map_err(io(dir))?;
    if replayed.last_segment > 0 {
        // Fold what this start replayed, so the next start reads one snapshot.
        let _ = tx.send(replayed.last_segment);
    }
    Ok((replayed, journal, compactor, lock))
}

/// Makes the calling thread (on Linux, `setpriority` on the process's own
/// id applies to the calling thread only) yield the CPU to everything of
/// normal priority. Compaction folds a whole segment (a second of CPU for
/// 64 MiB) and only bounds restart time; on a small machine it otherwise
/// takes a core from the threads answering calls. A refusal (no permission,
/// another OS) leaves it at normal priority, which is only slower for calls.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        tracing::debug!(error = %e, "ledger compactor keeps its priority");
    }
}

impl Inner {
    fn new(clock: Arc<dyn Clock>, retention_ms: i64) -> Inner {
        Inner {
            clock,
            holds: Arc::new(HoldsTable::new()),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            keys: (0..SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
            allocs: Mutex::new(FxHashMap::default()),
            outbox: Mutex::new(Outbox::default()),
            journal: None,
            compactor: Mutex::new(None),
            retention_ms,
            last_prune_ms: AtomicI64::new(0),
            expiry_seq: std::sync::atomic::AtomicU64::new(0),
            closed: Arc::new(AtomicBool::new(false)),
            _lock: None,
        }
    }

    /// Builds live state from what the directory held.
    fn restore(&self, replayed: recovery::Replayed, resolver: &dyn KeyResolver) {
        let now = self.clock.now_ms();
        {
            let mut allocs = self.allocs.lock();
            for (supplier_id, as_of) in &replayed.watermarks {
                allocs.entry(supplier_id.clone()).or_default().watermark = Some(*as_of);
            }
        }
        for (_, mut w) in replayed.reservations {
            for l in &mut w.made.lines {
                l.key = resolver.key(&l.supplier_id, &l.sku).unwrap_or(UNRESOLVED);
            }
            for o in &mut w.orders {
                o.supplier = resolver
                    .supplier(&o.supplier_id)
                    .unwrap_or(UNRESOLVED.supplier);
                for l in &mut o.lines {
                    l.key = resolver.key(&l.supplier_id, &l.sku).unwrap_or(UNRESOLVED);
                }
            }
            let id = w.made.id.clone();
            let mut shard = self.shards[shard_index(&id)].lock();
            let mut due = None;
            match w.state {
                State::Held if w.made.expires_at_ms <= now => {
                    // Ran out while the service was down: nothing to free.
                    w.state = State::Expired;
                    w.changed_at_ms = w.made.expires_at_ms;
                }
                State::Held => {
                    for l in &w.made.lines {
                        self.holds.add(l.key, l.qty);
                    }
                    let key = (w.made.expires_at_ms, self.next_seq());
                    shard.expiry.insert(key, id.clone());
                    due = Some(key);
                }
                State::Committed => {
                    for l in &w.made.lines {
                        self.holds.add(l.key, l.qty);
                    }
                    self.track(&w);
                    let mut outbox = self.outbox.lock();
                    for o in &w.orders {
                        if let Delivery::Pending {
                            next_attempt_at_ms, ..
                        } = o.delivery
                        {
                            outbox.put(&id, &o.po_number, next_attempt_at_ms);
                        }
                    }
                }
                State::Released | State::Expired => {}
            }
            let scope = KeyScope {
                owner: w.made.owner.clone(),
                key: w.made.key.clone(),
            };
            self.keys[shard_index(&scope)].lock().insert(
                scope,
                KeySlot::Bound {
                    id: id.clone(),
                    fingerprint: w.made.fingerprint,
                },
            );
            shard.entries.insert(
                id,
                Entry {
                    whole: w,
                    lsn: 0,
                    due,
                },
            );
        }
    }

    fn next_seq(&self) -> u64 {
        self.expiry_seq.fetch_add(1, Ordering::Relaxed)
    }

    fn up(&self) -> Result<(), LedgerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LedgerError::Unavailable("the ledger is shut down".into()));
        }
        match self.journal.as_ref().and_then(Journal::failure) {
            Some(why) => Err(LedgerError::Unavailable(why)),
            None => Ok(()),
        }
    }

    fn append(&self, record: &Record) -> Result<u64, LedgerError> {
        match &self.journal {
            Some(j) => j.append(record),
            None => Ok(0),
        }
    }

    fn append_frame(&self, frame: &[u8]) -> Result<u64, LedgerError> {
        match &self.journal {
            Some(j) => j.append_frame(frame),
            None => Ok(0),
        }
    }

    async fn durable(&self, lsn: u64) -> Result<(), LedgerError> {
        match &self.journal {
            Some(j) if lsn > 0 => j.wait_durable(lsn).await,
            _ => Ok(()),
        }
    }

    /// Starts counting a committed reservation's units as allocations (or
    /// not, for suppliers whose newer feed already reflects them).
    fn track(&self, w: &Whole) {
        let Some(at) = w.committed_at_ms else { return };
        let mut allocs = self.allocs.lock();
        let mut by_supplier: BTreeMap<&str, Vec<(StockKey, u32)>> = BTreeMap::new();
        for l in &w.made.lines {
            by_supplier
                .entry(l.supplier_id.as_str())
                .or_default()
                .push((l.key, l.qty));
        }
        for (supplier_id, units) in by_supplier {
            let sa = allocs.entry(supplier_id.to_owned()).or_default();
            if sa.watermark.is_some_and(|wm| at < wm) {
                for (k, q) in units {
                    self.holds.sub(k, q);
                }
            } else {
                sa.counted.insert((at, w.made.id.clone()), units);
            }
        }
    }

    /// Stops counting a committed reservation's allocations.
    fn untrack(&self, w: &Whole) {
        let Some(at) = w.committed_at_ms else { return };
        let mut allocs = self.allocs.lock();
        let mut suppliers: Vec<&str> = w
            .made
            .lines
            .iter()
            .map(|l| l.supplier_id.as_str())
            .collect();
        suppliers.sort_unstable();
        suppliers.dedup();
        for s in suppliers {
            if let Some(units) = allocs
                .get_mut(s)
                .and_then(|sa| sa.counted.remove(&(at, w.made.id.clone())))
            {
                for (k, q) in units {
                    self.holds.sub(k, q);
                }
            }
        }
    }

    /// Expires `id` if it is a hold past its time; returns the LSN of the
    /// record that did it (0 when nothing changed).
    fn expire_locked(
        &self,
        shard: &mut Shard,
        id: &ReservationId,
        now: i64,
    ) -> Result<u64, LedgerError> {
        let Some(e) = shard.entries.get_mut(id) else {
            return Ok(0);
        };
        if e.whole.state != State::Held || now < e.whole.made.expires_at_ms {
            return Ok(0);
        }
        let lsn = self.append(&Record::Expire {
            id: id.clone(),
            at_ms: now,
        })?;
        e.whole.state = State::Expired;
        e.whole.changed_at_ms = now;
        e.lsn = lsn;
        if let Some(key) = e.due.take() {
            shard.expiry.remove(&key);
        }
        for l in &e.whole.made.lines {
            self.holds.sub(l.key, l.qty);
        }
        Ok(lsn)
    }

    /// Expires every hold that is due; returns how many.
    fn sweep(&self, now: i64) -> usize {
        let mut expired = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            while let Some((&key, id)) = shard.expiry.first_key_value() {
                if key.0 > now {
                    break;
                }
                let id = id.clone();
                match self.expire_locked(&mut shard, &id, now) {
                    Ok(_) => expired += 1,
                    Err(_) => return expired,
                }
                // A hold already gone from the map leaves a stale entry.
                shard.expiry.remove(&key);
            }
        }
        expired
    }

    /// Drops finished reservations past retention, with their keys.
    fn prune(&self, now: i64) {
        let watermarks: HashMap<String, i64> = self
            .allocs
            .lock()
            .iter()
            .filter_map(|(s, a)| a.watermark.map(|w| (s.clone(), w)))
            .collect();
        let mut dropped = 0usize;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let gone: Vec<ReservationId> = shard
                .entries
                .iter()
                .filter(|(_, e)| prunable(&e.whole, &watermarks, now, self.retention_ms))
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                if let Some(e) = shard.entries.remove(&id) {
                    let scope = KeyScope {
                        owner: e.whole.made.owner.clone(),
                        key: e.whole.made.key.clone(),
                    };
                    let mut keys = self.keys[shard_index(&scope)].lock();
                    if matches!(keys.get(&scope), Some(KeySlot::Bound { id: b, .. }) if *b == id) {
                        keys.remove(&scope);
                    }
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            tracing::debug!(dropped, "finished reservations past retention dropped");
        }
    }

    /// Holds (and for an allocate, commits) a new reservation.
    fn make(
        &self,
        req: ReserveRequest,
        commit: Option<&str>,
    ) -> Result<(Reservation, u64), LedgerError> {
        self.up()?;
        if req.lines.is_empty() {
            return Err(LedgerError::Invalid(
                "a reservation needs at least one line".into(),
            ));
        }
        if let Some(l) = req.lines.iter().find(|l| l.line.qty == 0) {
            return Err(LedgerError::Invalid(format!(
                "line {} from {} has quantity 0",
                l.line.sku, l.line.supplier_id
            )));
        }
        if commit.is_none() && req.hold_ms <= 0 {
            return Err(LedgerError::Invalid(
                "the hold time must be positive".into(),
            ));
        }
        let wants: SmallVec<[(StockKey, u32, u32); 8]> = req
            .lines
            .iter()
            .map(|l| (l.line.key, l.line.qty, l.supply))
            .collect();
        if self.holds.try_add(&wants).is_err() {
            // Holds past their time may not be swept yet; expiry is exact,
            // so sweep and look again before saying no. Look again even when
            // this sweep found nothing due: a concurrent Commit or Release
            // may have expired the very hold in between, and freed its units.
            self.sweep(self.clock.now_ms());
            self.holds
                .try_add(&wants)
                .map_err(|shorts| shortage(&shorts, &req))?;
        }
        let now = self.clock.now_ms();
        let id = ReservationId::generate(now);
        // The request is consumed: its strings and plan move into the
        // reservation, and only the answer copies them.
        let made = Made {
            id: id.clone(),
            owner: req.owner,
            key: req.key,
            fingerprint: req.fingerprint,
            lines: req.lines.into_iter().map(|l| l.line).collect(),
            plan: req.plan,
            ship_to: req.ship_to,
            created_at_ms: now,
            expires_at_ms: if commit.is_some() {
                now
            } else {
                now.saturating_add(req.hold_ms)
            },
        };
        // Encoded from borrowed parts, and only when there is a journal.
        let frame = self.journal.as_ref().map(|_| {
            let mut frame = Vec::with_capacity(512);
            codec::encode_reserve_frame(&made, commit.map(|r| (r, now)), &mut frame);
            frame
        });
        let mut whole = fresh(made);
        if let Some(order_ref) = commit {
            commit_whole(&mut whole, order_ref.to_owned(), now);
        }
        let mut shard = self.shards[shard_index(&id)].lock();
        let mut due = None;
        let appended = match &frame {
            Some(frame) => self.append_frame(frame),
            None => Ok(0),
        };
        let lsn = match appended {
            Ok(lsn) => lsn,
            Err(e) => {
                for (k, q, _) in wants {
                    self.holds.sub(k, q);
                }
                return Err(e);
            }
        };
        if commit.is_some() {
            self.track(&whole);
            let mut outbox = self.outbox.lock();
            for o in &whole.orders {
                outbox.put(&id, &o.po_number, now);
            }
        } else {
            let key = (whole.made.expires_at_ms, self.next_seq());
            shard.expiry.insert(key, id.clone());
            due = Some(key);
        }
        let answer = view(&whole, now);
        shard.entries.insert(id, Entry { whole, lsn, due });
        Ok((answer, lsn))
    }

    /// Reserve or allocate under the request's idempotency key.
    async fn keyed(
        &self,
        req: ReserveRequest,
        commit: Option<String>,
    ) -> Result<Reservation, LedgerError> {
        enum Next {
            Existing(ReservationId),
            Wait(watch::Receiver<Outcome>, bool),
            Run,
        }
        let scope = KeyScope {
            owner: req.owner.clone(),
            key: req.key.clone(),
        };
        let ks = shard_index(&scope);
        loop {
            let next = {
                let mut keys = self.keys[ks].lock();
                match keys.get_mut(&scope) {
                    Some(KeySlot::Bound { id, fingerprint }) => {
                        if *fingerprint != req.fingerprint {
                            return Err(LedgerError::KeyReused {
                                key: req.key.clone(),
                                existing: id.clone(),
                            });
                        }
                        Next::Existing(id.clone())
                    }
                    Some(KeySlot::InFlight { fingerprint, done }) => {
                        let same = *fingerprint == req.fingerprint;
                        Next::Wait(outcome_of(done), same)
                    }
                    None => {
                        keys.insert(
                            scope.clone(),
                            KeySlot::InFlight {
                                fingerprint: req.fingerprint,
                                done: None,
                            },
                        );
                        Next::Run
                    }
                }
            };
            match next {
                Next::Existing(id) => match self.get(&id, req.owner.as_deref()).await {
                    Err(LedgerError::NotFound { .. }) => {
                        // Pruned since: the key is free again.
                        let mut keys = self.keys[ks].lock();
                        if matches!(keys.get(&scope), Some(KeySlot::Bound { id: b, .. }) if *b == id)
                        {
                            keys.remove(&scope);
                        }
                    }
                    other => return other,
                },
                Next::Wait(mut rx, same) => {
                    let outcome = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|v| v.clone());
                    if let (true, Some(Err(e))) = (same, outcome) {
                        return Err(e);
                    }
                }
                Next::Run => {
                    // Made and settled with no await in between, so a caller
                    // that goes away cannot leave the key in flight. A bound
                    // key answers later calls through `get`, which waits for
                    // the reservation to be durable, as this call does next.
                    let running = Running {
                        keys: &self.keys[ks],
                        scope: Some(scope),
                    };
                    let fingerprint = req.fingerprint;
                    let made = self.make(req, commit.as_deref());
                    running.settle(fingerprint, made.as_ref().map(|(r, _)| &r.id));
                    let (answer, lsn) = made?;
                    self.durable(lsn).await?;
                    return Ok(answer);
                }
            }
        }
    }

    async fn find(
        &self,
        owner: Option<&str>,
        key: &IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Option<Reservation>, LedgerError> {
        let scope = KeyScope {
            owner: owner.map(str::to_owned),
            key: key.clone(),
        };
        let ks = shard_index(&scope);
        loop {
            let slot = {
                let mut keys = self.keys[ks].lock();
                match keys.get_mut(&scope) {
                    None => return Ok(None),
                    Some(KeySlot::Bound {
                        id,
                        fingerprint: fp,
                    }) => {
                        if *fp != fingerprint {
                            return Err(LedgerError::KeyReused {
                                key: key.clone(),
                                existing: id.clone(),
                            });
                        }
                        Ok(id.clone())
                    }
                    Some(KeySlot::InFlight { done, .. }) => Err(outcome_of(done)),
                }
            };
            let mut wait = match slot {
                Ok(id) => {
                    return match self.get(&id, owner).await {
                        Ok(r) => Ok(Some(r)),
                        Err(LedgerError::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
                Err(wait) => wait,
            };
            // The running call settles the key either way; then look again.
            let _ = wait.wait_for(Option::is_some).await;
        }
    }

    async fn get(
        &self,
        id: &ReservationId,
        owner: Option<&str>,
    ) -> Result<Reservation, LedgerError> {
        let (answer, lsn) = {
            let shard = self.shards[shard_index(id)].lock();
            let e = shard
                .entries
                .get(id)
                .ok_or_else(|| LedgerError::NotFound { id: id.clone() })?;
            check_owner(&e.whole, owner)?;
            (view(&e.whole, self.clock.now_ms()), e.lsn)
        };
        self.durable(lsn).await?;
        Ok(answer)
    }

    fn commit_now(&self, req: &CommitRequest) -> (Result<Reservation, LedgerError>, u64) {
        if let Err(e) = self.up() {
            return (Err(e), 0);
        }
        let now = self.clock.now_ms();
        let mut guard = self.shards[shard_index(&req.id)].lock();
        let shard = &mut *guard;
        let Some(e) = shard.entries.get_mut(&req.id) else {
            return (Err(LedgerError::NotFound { id: req.id.clone() }), 0);
        };
        if let Err(err) = check_owner(&e.whole, req.owner.as_deref()) {
            return (Err(err), e.lsn);
        }
        let expired = |w: &Whole| LedgerError::Expired {
            id: req.id.clone(),
            expired_at_ms: w.made.expires_at_ms,
        };
        match e.whole.state {
            State::Held if now >= e.whole.made.expires_at_ms => {
                let err = expired(&e.whole);
                match self.expire_locked(shard, &req.id, now) {
                    Ok(lsn) => (Err(err), lsn),
                    Err(x) => (Err(x), 0),
                }
            }
            State::Held => {
                let lsn = match self.append(&Record::Commit {
                    id: req.id.clone(),
                    order_ref: req.order_ref.clone(),
                    at_ms: now,
                }) {
                    Ok(lsn) => lsn,
                    Err(x) => return (Err(x), 0),
                };
                if let Some(key) = e.due.take() {
                    shard.expiry.remove(&key);
                }
                commit_whole(&mut e.whole, req.order_ref.clone(), now);
                e.lsn = lsn;
                self.track(&e.whole);
                let mut outbox = self.outbox.lock();
                for o in &e.whole.orders {
                    outbox.put(&req.id, &o.po_number, now);
                }
                (Ok(view(&e.whole, now)), lsn)
            }
            State::Committed => {
                let committed = e.whole.order_ref.clone().unwrap_or_default();
                if committed == req.order_ref {
                    (Ok(view(&e.whole, now)), e.lsn)
                } else {
                    (
                        Err(LedgerError::CommittedToOtherOrder {
                            id: req.id.clone(),
                            committed,
                            requested: req.order_ref.clone(),
                        }),
                        e.lsn,
                    )
                }
            }
            State::Released => (Err(LedgerError::Released { id: req.id.clone() }), e.lsn),
            State::Expired => (Err(expired(&e.whole)), e.lsn),
        }
    }

    fn release_now(&self, req: &ReleaseRequest) -> (Result<Reservation, LedgerError>, u64) {
        if let Err(e) = self.up() {
            return (Err(e), 0);
        }
        let now = self.clock.now_ms();
        let mut guard = self.shards[shard_index(&req.id)].lock();
        let shard = &mut *guard;
        let Some(e) = shard.entries.get(&req.id) else {
            return (Err(LedgerError::NotFound { id: req.id.clone() }), 0);
        };
        if let Err(err) = check_owner(&e.whole, req.owner.as_deref()) {
            return (Err(err), e.lsn);
        }
        let state = e.whole.state;
        let expires_at = e.whole.made.expires_at_ms;
        if state == State::Held && now >= expires_at {
            return match self.expire_locked(shard, &req.id, now) {
                Ok(lsn) => match shard.entries.get(&req.id) {
                    Some(e) => (Ok(view(&e.whole, now)), lsn.max(e.lsn)),
                    None => (Err(LedgerError::NotFound { id: req.id.clone() }), 0),
                },
                Err(x) => (Err(x), 0),
            };
        }
        if state == State::Committed && !req.cancel_allocation {
            return (
                Err(LedgerError::Committed {
                    id: req.id.clone(),
                    order_ref: e.whole.order_ref.clone().unwrap_or_default(),
                }),
                e.lsn,
            );
        }
        if matches!(state, State::Released | State::Expired) {
            return (Ok(view(&e.whole, now)), e.lsn);
        }
        let reason = cut(&req.reason, RELEASE_REASON_BYTES_MAX);
        let lsn = match self.append(&Record::Release {
            id: req.id.clone(),
            reason: reason.clone(),
            at_ms: now,
        }) {
            Ok(lsn) => lsn,
            Err(x) => return (Err(x), 0),
        };
        let Some(e) = shard.entries.get_mut(&req.id) else {
            return (Err(LedgerError::NotFound { id: req.id.clone() }), 0);
        };
        if let Some(key) = e.due.take() {
            shard.expiry.remove(&key);
        }
        if state == State::Held {
            for l in &e.whole.made.lines {
                self.holds.sub(l.key, l.qty);
            }
        } else {
            self.untrack(&e.whole);
            let mut outbox = self.outbox.lock();
            for o in &e.whole.orders {
                outbox.remove(&o.po_number);
            }
        }
        release_whole(&mut e.whole, reason, now);
        e.lsn = lsn;
        (Ok(view(&e.whole, now)), lsn)
    }
}

fn shortage(shorts: &[Short], req: &ReserveRequest) -> LedgerError {
    LedgerError::InsufficientStock(
        shorts
            .iter()
            .map(|s| {
                let line = req.lines.iter().find(|l| l.line.key == s.key);
                StockShortage {
                    supplier_id: line.map(|l| l.line.supplier_id.clone()).unwrap_or_default(),
                    sku: line.map(|l| l.line.sku.clone()).unwrap_or_default(),
                    requested: s.requested,
                    available: s.available,
                }
            })
            .collect(),
    )
}

#[async_trait::async_trait]
impl Ledger for EmbeddedLedger {
    async fn reserve(&self, req: ReserveRequest) -> Result<Reservation, LedgerError> {
        // No task of its own: the key is settled before the first await.
        self.inner.keyed(req, None).await
    }

    async fn find(
        &self,
        owner: Option<&str>,
        key: &IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Option<Reservation>, LedgerError> {
        self.inner.find(owner, key, fingerprint).await
    }

    async fn commit(&self, req: CommitRequest) -> Result<Reservation, LedgerError> {
        super::check_order_ref(&req.order_ref)?;
        let (result, lsn) = self.inner.commit_now(&req);
        self.inner.durable(lsn).await?;
        result
    }

    async fn release(&self, req: ReleaseRequest) -> Result<Reservation, LedgerError> {
        let (result, lsn) = self.inner.release_now(&req);
        self.inner.durable(lsn).await?;
        result
    }

    async fn get(
        &self,
        id: &ReservationId,
        owner: Option<&str>,
    ) -> Result<Reservation, LedgerError> {
        self.inner.get(id, owner).await
    }

    async fn allocate(&self, req: AllocateRequest) -> Result<Reservation, LedgerError> {
        super::check_order_ref(&req.order_ref)?;
        self.inner.keyed(req.reserve, Some(req.order_ref)).await
    }

    async fn expire_due(&self) -> Result<usize, LedgerError> {
        self.inner.up()?;
        let now = self.inner.clock.now_ms();
        let n = self.inner.sweep(now);
        let last = self.inner.last_prune_ms.load(Ordering::Relaxed);
        if now - last >= PRUNE_INTERVAL_MS {
            self.inner.last_prune_ms.store(now, Ordering::Relaxed);
            self.inner.prune(now);
        }
        Ok(n)
    }

    fn next_expiry_ms(&self) -> Option<i64> {
        self.inner
            .shards
            .iter()
            .filter_map(|s| s.lock().expiry.first_key_value().map(|((at, _), _)| *at))
            .min()
    }

    async fn supply_refreshed(
        &self,
        _supplier: crate::domain::suppliers::SupplierId,
        supplier_id: &str,
        as_of_ms: i64,
    ) -> Result<(), LedgerError> {
        self.inner.up()?;
        let lsn = {
            let mut allocs = self.inner.allocs.lock();
            let sa = allocs.entry(supplier_id.to_owned()).or_default();
            if sa.watermark.is_some_and(|w| as_of_ms <= w) {
                return Ok(());
            }
            let lsn = self.inner.append(&Record::SupplyRefreshed {
                supplier_id: supplier_id.to_owned(),
                as_of_ms,
            })?;
            sa.watermark = Some(as_of_ms);
            let kept = sa.counted.split_off(&(as_of_ms, ReservationId::new("")));
            let retired = std::mem::replace(&mut sa.counted, kept);
            for units in retired.into_values() {
                for (k, q) in units {
                    self.inner.holds.sub(k, q);
                }
            }
            lsn
        };
        self.inner.durable(lsn).await
    }

    async fn due_orders(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<OutboundOrder>, LedgerError> {
        self.inner.up()?;
        let now = self.inner.clock.now_ms();
        let picked: Vec<(String, ReservationId)> = {
            let mut outbox = self.inner.outbox.lock();
            let due: Vec<(i64, String)> = outbox
                .due
                .iter()
                .take_while(|(at, _)| *at <= now)
                .take(limit)
                .cloned()
                .collect();
            due.into_iter()
                .filter_map(|(_, po)| {
                    let id = outbox.by_po.get(&po)?.0.clone();
                    outbox.put(&id, &po, now.saturating_add(lease_ms));
                    Some((po, id))
                })
                .collect()
        };
        let mut out = Vec::with_capacity(picked.len());
        for (po, id) in picked {
            let shard = self.inner.shards[shard_index(&id)].lock();
            let Some(e) = shard.entries.get(&id) else {
                continue;
            };
            if let Some(o) = e
                .whole
                .orders
                .iter()
                .find(|o| o.po_number == po && matches!(o.delivery, Delivery::Pending { .. }))
            {
                out.push(OutboundOrder {
                    order: o.clone(),
                    order_ref: e.whole.order_ref.clone().unwrap_or_default(),
                    ship_to: e.whole.made.ship_to.clone(),
                    reservation: id.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn record_delivery(
        &self,
        po_number: &str,
        outcome: DeliveryOutcome,
    ) -> Result<(), LedgerError> {
        self.inner.up()?;
        let Some(id) = self
            .inner
            .outbox
            .lock()
            .by_po
            .get(po_number)
            .map(|(id, _)| id.clone())
        else {
            return Ok(());
        };
        let now = self.inner.clock.now_ms();
        let lsn = {
            let mut shard = self.inner.shards[shard_index(&id)].lock();
            let Some(e) = shard.entries.get_mut(&id) else {
                return Ok(());
            };
            let Some(o) = e.whole.orders.iter_mut().find(|o| o.po_number == po_number) else {
                return Ok(());
            };
            let Delivery::Pending { attempts, .. } = o.delivery else {
                return Ok(());
            };
            let attempts = attempts.saturating_add(1);
            let (delivery, next) = match outcome {
                DeliveryOutcome::Acknowledged => (
                    Delivery::Acknowledged {
                        attempts,
                        at_ms: now,
                    },
                    None,
                ),
                DeliveryOutcome::Failed { error, retry_at_ms } => (
                    Delivery::Pending {
                        attempts,
                        last_error: Some(error),
                        next_attempt_at_ms: retry_at_ms,
                    },
                    Some(retry_at_ms),
                ),
            };
            let lsn = self.inner.append(&Record::Delivery {
                id: id.clone(),
                po_number: po_number.to_owned(),
                delivery: delivery.clone(),
                at_ms: now,
            })?;
            o.delivery = delivery;
            e.whole.changed_at_ms = now;
            e.lsn = lsn;
            let mut outbox = self.inner.outbox.lock();
            match next {
                Some(at) => outbox.put(&id, po_number, at),
                None => outbox.remove(po_number),
            }
            lsn
        };
        self.inner.durable(lsn).await
    }

    fn holds(&self) -> Arc<dyn HoldsView> {
        Arc::clone(&self.inner.holds) as Arc<dyn HoldsView>
    }

    fn health(&self) -> LedgerHealth {
        match self.inner.up() {
            Ok(()) => LedgerHealth::Ready,
            Err(e) => LedgerHealth::Down(e.to_string()),
        }
    }

    async fn flush(&self) -> Result<(), LedgerError> {
        self.inner.closed.store(true, Ordering::Release);
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            if let Some(j) = &inner.journal {
                j.close();
            }
            // With the writer gone, the compactor finishes what is queued and
            // ends; waiting for it leaves the directory compact for the next
            // start (stopping it half-way would be safe too, only slower).
            if let Some(compactor) = inner.compactor.lock().take() {
                let _ = compactor.join();
            }
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("flush stopped: {e}")))?;
        match self.inner.journal.as_ref().and_then(Journal::failure) {
            Some(why) => Err(LedgerError::Unavailable(why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
