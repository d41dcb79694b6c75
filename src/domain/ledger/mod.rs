//! The reservation ledger: the one port through which stock is held,
//! committed, released and expired, and purchase orders are queued.
//!
//! A reservation moves through four states:
//!
//! ```text
//!            commit                      release (cancel_allocation)
//!   HELD ─────────────▶ COMMITTED ─────────────────────────────▶ RELEASED
//!    │  \                                                            ▲
//!    │   └──────────────────── release ──────────────────────────────┘
//!    └── expires_at passes ──▶ EXPIRED
//! ```
//!
//! Every implementation (the embedded journal, PostgreSQL) keeps the same
//! promises, which the model test (`model.rs`, generic over `dyn Ledger`) checks:
//!
//! - **Never oversell.** A reserve is all-or-nothing over its lines and is
//!   checked and applied atomically: for every (supplier, product) it touches,
//!   units held plus units allocated-but-not-yet-reflected never exceed the
//!   supply the request names ([`ReserveLine::supply`]). Two lines of one
//!   request with the same key are summed before the check.
//! - **Idempotency.** Reserve and Allocate carry an [`IdempotencyKey`], scoped
//!   to the caller ([`ReserveRequest::owner`]). A key bound to a reservation
//!   answers every later call with that reservation (as it now stands); the
//!   same key with a different request ([`RequestFingerprint`]) is
//!   [`LedgerError::KeyReused`]. Concurrent calls with one key execute once.
//!   A call that fails binds nothing, so a retry after "insufficient stock"
//!   may succeed. Keys live at least [`IDEMPOTENCY_KEY_TTL_MS`].
//! - **Ownership.** When both the reservation and the call name an owner and
//!   they differ, the call is [`LedgerError::NotOwner`]; a call without an
//!   owner (authentication off) sees everything.
//! - **Exact expiry.** The ledger's own clock decides. A hold whose
//!   `expires_at_ms` has passed reads as [`State::Expired`] and never commits,
//!   whether or not the sweeper ([`Ledger::expire_due`]) has replenished it yet.
//! - **Durability.** An operation that returned `Ok` survives a crash; one
//!   that did not return may or may not have happened, but never in part.
//! - **Cancellation safety.** Callers' futures may be dropped at any await
//!   (tonic does so when a client goes away). Implementations must either
//!   finish a mutation that has started or leave no trace of it.
//!
//! Availability as callers see it is `supply − counted`, where `counted`
//! comes from [`HoldsView`], a synchronous in-memory view every
//! implementation keeps (see `holds.rs`).
//!
//! The ledger knows products and suppliers by their external names (SKU,
//! supplier id), which are what it stores, and by this process's dense ids
//! ([`StockKey`]), which are what the quote path uses; [`KeyResolver`] maps
//! one to the other when stored data is read back.

pub mod embedded;
pub mod holds;
pub mod model;

use std::fmt;

use rust_decimal::Decimal;

use super::address::Address;
use super::catalog::ProductId;
use super::suppliers::SupplierId;

pub use holds::{HoldsTable, HoldsView, NoHolds};

/// How long an idempotency key stays bound to its reservation, at least.
pub const IDEMPOTENCY_KEY_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Longest order reference accepted, in bytes.
pub const ORDER_REF_BYTES_MAX: usize = 128;
/// Longest release reason kept, in bytes (longer ones are cut).
pub const RELEASE_REASON_BYTES_MAX: usize = 256;

/// One (supplier, product) pair in this process's dense ids: the unit of
/// stock the ledger counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StockKey {
    /// Who supplies it.
    pub supplier: SupplierId,
    /// What.
    pub product: ProductId,
}

/// Maps stored external names back to this process's ids.
///
/// Ids are dense indexes assigned when the catalog and supplier registry
/// load, so they may differ between runs and between replicas; what a ledger
/// stores is the names, and this resolves them on recovery or when another
/// replica's holds arrive.
pub trait KeyResolver: Send + Sync {
    /// The product with this SKU, if the catalog has it.
    fn product(&self, sku: &str) -> Option<ProductId>;
    /// The supplier with this external id, if registered.
    fn supplier(&self, supplier_id: &str) -> Option<SupplierId>;
    /// Both, when both resolve.
    fn key(&self, supplier_id: &str, sku: &str) -> Option<StockKey> {
        Some(StockKey {
            supplier: self.supplier(supplier_id)?,
            product: self.product(sku)?,
        })
    }
}

impl KeyResolver for super::world::World {
    fn product(&self, sku: &str) -> Option<ProductId> {
        self.catalog.by_sku(sku.as_bytes())
    }

    fn supplier(&self, supplier_id: &str) -> Option<SupplierId> {
        self.suppliers.id_of(supplier_id)
    }
}

/// Told of a full feed: supplier (dense id, external id) and its data time
/// (Unix ms).
pub type FullFeedHook = Box<dyn Fn(SupplierId, &str, i64) + Send + Sync>;

/// What the rest of the world needs from the ledger: its counts, so that
/// availability is supply minus them, and an ear for full feeds, which
/// retire allocations. Installed into the world once the ledger is open.
pub struct LedgerLink {
    /// Units counted per (supplier, product).
    pub holds: std::sync::Arc<dyn HoldsView>,
    /// Called after a full feed of a supplier (dense id, external id) with
    /// data as of the given Unix ms was applied. Must not block.
    pub on_full_feed: FullFeedHook,
}

impl fmt::Debug for LedgerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerLink").finish_non_exhaustive()
    }
}

/// A reservation's identity: opaque, unique across restarts and replicas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReservationId(String);

impl ReservationId {
    /// Wraps an id as a ledger generated it, or as a caller sent it (an id
    /// that no ledger issued is simply not found).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh id: `R-` and 26 base-32 characters (the time in ms, then 80
    /// random bits), so ids sort roughly by creation and never collide in
    /// practice across replicas.
    pub fn generate(now_ms: i64) -> Self {
        let random: u128 = rand::random::<u128>() >> 48;
        let v = ((now_ms.max(0) as u128) << 80) | random;
        // Written in place: one allocation per id, no formatting machinery
        // (an id is made on every reserve).
        let mut id = String::with_capacity(2 + ID_DIGITS);
        id.push_str("R-");
        push_base32(&mut id, v, ID_DIGITS);
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Base-32 digits of a generated id: 130 bits, room for all 128 of the value.
const ID_DIGITS: usize = 26;

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Appends `v` in Crockford base 32, most significant digit first, `digits`
/// long (higher digits are dropped).
fn push_base32(out: &mut String, v: u128, digits: usize) {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for i in (0..digits).rev() {
        let d = (v >> (5 * i)) & 31;
        out.push(char::from(ALPHABET[d as usize]));
    }
}

/// A caller's idempotency key: 1 to [`IDEMPOTENCY_KEY_BYTES_MAX`] bytes of
/// printable ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key; the error says what is wrong with it.
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.is_empty() {
            return Err("idempotency_key is required".into());
        }
        if key.len() > IDEMPOTENCY_KEY_BYTES_MAX {
            return Err(format!(
                "idempotency_key is {} bytes, more than the {IDEMPOTENCY_KEY_BYTES_MAX} allowed",
                key.len()
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("idempotency_key must be printable ASCII without spaces".into());
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A digest of everything a request asked for, so that "same key, different
/// request" is recognised. Stable across processes and versions (FNV-1a, 128
/// bits) because it is stored; not a defence against a caller forging
/// collisions with its own keys, which would only confuse itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestFingerprint(pub u128);

impl RequestFingerprint {
    /// Digests `parts` in order; each part's length is mixed in, so
    /// `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn of(parts: &[&[u8]]) -> Self {
        const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
        const PRIME: u128 = 0x0000000001000000000000000000013B;
        let mut h = OFFSET;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u128::from(b);
                h = h.wrapping_mul(PRIME);
            }
        };
        for part in parts {
            eat(&(part.len() as u64).to_le_bytes());
            eat(part);
        }
        Self(h)
    }
}

/// Checks an order reference as every ledger does: present, at most
/// [`ORDER_REF_BYTES_MAX`] bytes.
pub fn check_order_ref(order_ref: &str) -> Result<(), LedgerError> {
    if order_ref.is_empty() {
        return Err(LedgerError::Invalid("order_ref is required".into()));
    }
    if order_ref.len() > ORDER_REF_BYTES_MAX {
        return Err(LedgerError::Invalid(format!(
            "order_ref is {} bytes, more than the {ORDER_REF_BYTES_MAX} allowed",
            order_ref.len()
        )));
    }
    Ok(())
}

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Units are held until `expires_at_ms`.
    Held,
    /// Turned into an allocation; purchase orders exist.
    Committed,
    /// Cancelled by the caller; units replenished.
    Released,
    /// The hold ran out before a commit; units replenished.
    Expired,
}

impl State {
    /// Lower-case name, for messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            State::Held => "held",
            State::Committed => "committed",
            State::Released => "released",
            State::Expired => "expired",
        }
    }
}

/// Units of one product from one supplier in a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLine {
    /// Dense ids in this process (re-resolved from the names on recovery).
    pub key: StockKey,
    /// The supplier's external id.
    pub supplier_id: String,
    /// The merchant's SKU.
    pub sku: String,
    /// The supplier's own code, as it goes on the purchase order.
    pub supplier_sku: String,
    /// Units.
    pub qty: u32,
    /// Unit cost in the merchant's currency, exact.
    pub unit_cost: Decimal,
}

/// A line to hold, with the supply it is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveLine {
    /// What to hold.
    pub line: HeldLine,
    /// Units the supplier has according to the data the plan was made from
    /// (its feed, or a real-time answer), before any holds. The ledger holds
    /// only while `counted + qty <= supply` for this key.
    pub supply: u32,
    /// When the data `supply` comes from was true (Unix ms): the feed's
    /// `as_of`, or a real-time answer's. A ledger shared by several replicas
    /// (PostgreSQL) keeps the newest supply it has seen per key, so that a
    /// replica whose feed is older can never raise it back.
    pub supply_as_of_ms: i64,
}

/// Ask to hold a plan.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// The caller's key; scoped to `owner`.
    pub key: IdempotencyKey,
    /// What the caller asked, digested: a retry with the same key must match.
    pub fingerprint: RequestFingerprint,
    /// The planned lines. Non-empty; one key may appear on several lines.
    pub lines: Vec<ReserveLine>,
    /// How long to hold, from the ledger's clock when the hold is made.
    pub hold_ms: i64,
    /// The plan as the caller will want it back (opaque to the ledger: the
    /// gRPC edge stores its encoded `Plan`). Kept with the reservation.
    pub plan: Vec<u8>,
    /// Where the goods go; printed on the purchase orders.
    pub ship_to: Address,
    /// The authenticated caller, when there is one; a reservation is then
    /// visible and changeable only by the same owner.
    pub owner: Option<String>,
}

/// Ask to turn a hold into an allocation.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Which reservation.
    pub id: ReservationId,
    /// The caller's order; goes on every purchase order. Committing again
    /// with the same order_ref answers as the first commit did.
    pub order_ref: String,
    /// The authenticated caller, when there is one.
    pub owner: Option<String>,
}

/// Ask to cancel a reservation.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    /// Which reservation.
    pub id: ReservationId,
    /// Why, for the record.
    pub reason: String,
    /// Also cancel a committed reservation's allocation. Purchase orders not
    /// yet acknowledged are then never sent; ones already acknowledged stay
    /// with the supplier (the supplier protocol has no cancellation). Without
    /// it, releasing a committed reservation is [`LedgerError::Committed`].
    pub cancel_allocation: bool,
    /// The authenticated caller, when there is one.
    pub owner: Option<String>,
}

/// Ask to reserve and commit in one step (no caller ever sees the hold).
#[derive(Debug, Clone)]
pub struct AllocateRequest {
    /// The reserve part; its `hold_ms` is ignored.
    pub reserve: ReserveRequest,
    /// The caller's order.
    pub order_ref: String,
}

/// Where a purchase order is on its way to the supplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Queued; not acknowledged yet.
    Pending {
        /// Sends tried so far.
        attempts: u32,
        /// Why the last one failed, if one did.
        last_error: Option<String>,
        /// Not sent again before this (Unix ms).
        next_attempt_at_ms: i64,
    },
    /// The supplier accepted it.
    Acknowledged {
        /// Sends it took.
        attempts: u32,
        /// When (Unix ms, the ledger's clock).
        at_ms: i64,
    },
    /// The allocation was released before the supplier acknowledged it; it
    /// will never be sent.
    Cancelled,
}

/// One supplier's part of a committed reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOrder {
    /// Stable and unique: the same commit always yields the same numbers, and
    /// the supplier deduplicates by it.
    pub po_number: String,
    /// Who.
    pub supplier: SupplierId,
    /// Their external id.
    pub supplier_id: String,
    /// That supplier's lines, in the reservation's order.
    pub lines: Vec<HeldLine>,
    /// Progress of sending it.
    pub delivery: Delivery,
}

impl PurchaseOrder {
    /// Sum of qty × unit cost, exact.
    pub fn goods_total(&self) -> Decimal {
        self.lines
            .iter()
            .map(|l| l.unit_cost * Decimal::from(l.qty))
            .sum()
    }

    /// The number for the `index`-th supplier (by supplier id order) of a
    /// reservation: unique because reservation ids are.
    pub fn number_for(id: &ReservationId, index: usize) -> String {
        let tail = id.as_str().strip_prefix("R-").unwrap_or(id.as_str());
        format!("PO-{tail}-{}", index + 1)
    }
}

/// The purchase orders of committing `lines` under reservation `id` at
/// `now_ms`: one per supplier, in ascending external supplier id order,
/// numbered by [`PurchaseOrder::number_for`], each with that supplier's lines
/// in reservation order, pending and due at once. Every ledger makes them
/// this way, so the numbers are the same whichever ledger committed.
pub fn purchase_orders(id: &ReservationId, lines: &[HeldLine], now_ms: i64) -> Vec<PurchaseOrder> {
    let mut suppliers: Vec<&str> = lines.iter().map(|l| l.supplier_id.as_str()).collect();
    suppliers.sort_unstable();
    suppliers.dedup();
    suppliers
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let mine: Vec<HeldLine> = lines
                .iter()
                .filter(|l| l.supplier_id == s)
                .cloned()
                .collect();
            PurchaseOrder {
                po_number: PurchaseOrder::number_for(id, i),
                supplier: mine.first().map_or(u16::MAX, |l| l.key.supplier),
                supplier_id: s.to_owned(),
                lines: mine,
                delivery: Delivery::Pending {
                    attempts: 0,
                    last_error: None,
                    next_attempt_at_ms: now_ms,
                },
            }
        })
        .collect()
}

/// A reservation as it now stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Identity.
    pub id: ReservationId,
    /// State as of the ledger's clock: a hold past its expiry reads
    /// `Expired` even before the sweeper has run.
    pub state: State,
    /// What it holds (or held), in plan order.
    pub lines: Vec<HeldLine>,
    /// The plan as the reserving caller supplied it.
    pub plan: Vec<u8>,
    /// Where the goods go.
    pub ship_to: Address,
    /// When it was made (Unix ms, ledger clock).
    pub created_at_ms: i64,
    /// When the hold runs out or ran out (Unix ms, ledger clock).
    pub expires_at_ms: i64,
    /// The order it was committed to.
    pub order_ref: Option<String>,
    /// When it was committed (Unix ms); its allocation counts against each
    /// supplier's stock until a full feed with a later `as_of` arrives.
    pub committed_at_ms: Option<i64>,
    /// Why it was released, when it was.
    pub release_reason: Option<String>,
    /// One per supplier once committed, by supplier id.
    pub orders: Vec<PurchaseOrder>,
    /// The caller that made it.
    pub owner: Option<String>,
}

/// A purchase order due to be sent, with what the request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundOrder {
    /// The order itself.
    pub order: PurchaseOrder,
    /// The caller's order reference.
    pub order_ref: String,
    /// Where the goods go.
    pub ship_to: Address,
    /// Its reservation.
    pub reservation: ReservationId,
}

/// How one send of a purchase order went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The supplier accepted it (or already had it: sends are idempotent).
    Acknowledged,
    /// Not accepted; try again no earlier than `retry_at_ms`.
    Failed {
        /// What went wrong, for GetReservation and logs.
        error: String,
        /// Next attempt (Unix ms, ledger clock).
        retry_at_ms: i64,
    },
}

/// A (supplier, product) without enough units for a reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockShortage {
    /// The supplier's external id.
    pub supplier_id: String,
    /// The merchant's SKU.
    pub sku: String,
    /// Units the request asked for (all its lines with this key).
    pub requested: u32,
    /// Units that were available to it: supply − counted, at least 0.
    pub available: u32,
}

impl fmt::Display for StockShortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} from supplier {}: {} requested, {} available",
            self.sku, self.supplier_id, self.requested, self.available
        )
    }
}

/// What a ledger call can answer besides success; each variant is an
/// outcome the caller can act on, and maps to one gRPC status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No reservation has this id (or it belongs to someone else and the
    /// ledger does not say so).
    #[error("reservation {id} not found")]
    NotFound {
        /// The id asked for.
        id: ReservationId,
    },
    /// The reservation belongs to another caller.
    #[error("reservation {id} belongs to another caller")]
    NotOwner {
        /// The id asked for.
        id: ReservationId,
    },
    /// Commit after release.
    #[error("reservation {id} was released and cannot be committed; reserve again")]
    Released {
        /// The reservation.
        id: ReservationId,
    },
    /// Commit after the hold ran out.
    #[error(
        "reservation {id} expired at {expired_at_ms} ms and cannot be committed; reserve again"
    )]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// When the hold ran out (Unix ms).
        expired_at_ms: i64,
    },
    /// Release of a committed reservation without `cancel_allocation`.
    #[error(
        "reservation {id} is committed to order {order_ref} and its purchase orders are queued or \
         sent; release it with cancel_allocation to cancel the allocation"
    )]
    Committed {
        /// The reservation.
        id: ReservationId,
        /// The order it was committed to.
        order_ref: String,
    },
    /// Commit again with a different order reference.
    #[error("reservation {id} is already committed to order {committed}, not {requested}")]
    CommittedToOtherOrder {
        /// The reservation.
        id: ReservationId,
        /// The order it is committed to.
        committed: String,
        /// The order this call named.
        requested: String,
    },
    /// The idempotency key was used before for a different request.
    #[error(
        "idempotency_key {key} was already used for a different request (reservation {existing}); \
         use a new key for a new request"
    )]
    KeyReused {
        /// The key.
        key: IdempotencyKey,
        /// The reservation it is bound to.
        existing: ReservationId,
    },
    /// Not enough units for every line; nothing was held.
    #[error("not enough stock: {}", describe_shortages(.0))]
    InsufficientStock(Vec<StockShortage>),
    /// The request is malformed in a way only the ledger checks.
    #[error("{0}")]
    Invalid(String),
    /// The ledger cannot be reached or cannot make the operation durable;
    /// the operation did not happen and may be retried.
    #[error("reservation ledger unavailable: {0}")]
    Unavailable(String),
}

fn describe_shortages(s: &[StockShortage]) -> String {
    let parts: Vec<String> = s.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// The health of a ledger, for readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerHealth {
    /// Serving.
    Ready,
    /// Not serving; reserve, commit and release answer `Unavailable`.
    Down(String),
}

/// The reservation ledger port.
///
/// Object-safe (`Arc<dyn Ledger>`); every method may be called concurrently.
/// Futures may be dropped at any await; see the module doc for what that
/// must never leave behind.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync + fmt::Debug {
    /// Holds every line or nothing. With a key already bound to a
    /// reservation of the same fingerprint, answers that reservation (in its
    /// current state) and holds nothing more.
    async fn reserve(&self, req: ReserveRequest) -> Result<Reservation, LedgerError>;

    /// The reservation `key` (of `owner`) is bound to, if any: what a
    /// Reserve or Allocate with that key would answer without doing
    /// anything. Callers look here before planning, so that a retry answers
    /// the first call's reservation even when the basket could no longer be
    /// planned. A key bound to a different fingerprint is
    /// [`LedgerError::KeyReused`]; a call with the key still running is
    /// waited for.
    async fn find(
        &self,
        owner: Option<&str>,
        key: &IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Option<Reservation>, LedgerError>;

    /// Turns a live hold into an allocation with one purchase order per
    /// supplier, queued for sending. Committing a committed reservation with
    /// the same order_ref answers as before.
    async fn commit(&self, req: CommitRequest) -> Result<Reservation, LedgerError>;

    /// Cancels a hold (or, with `cancel_allocation`, an allocation) and
    /// replenishes. Releasing a released or expired reservation answers it
    /// as it stands.
    async fn release(&self, req: ReleaseRequest) -> Result<Reservation, LedgerError>;

    /// Reads a reservation.
    async fn get(
        &self,
        id: &ReservationId,
        owner: Option<&str>,
    ) -> Result<Reservation, LedgerError>;

    /// Reserves and commits atomically, under the reserve's idempotency key.
    async fn allocate(&self, req: AllocateRequest) -> Result<Reservation, LedgerError>;

    /// Replenishes every hold whose expiry has passed (by the ledger's
    /// clock); returns how many expired. Run periodically by a sweeper;
    /// correctness never depends on it having run.
    async fn expire_due(&self) -> Result<usize, LedgerError>;

    /// When the next hold runs out (Unix ms, ledger clock), if the ledger
    /// knows; the sweeper sleeps until then (or polls when `None`).
    fn next_expiry_ms(&self) -> Option<i64>;

    /// A full feed from `supplier` with data as of `as_of_ms` was applied:
    /// allocations of that supplier committed before `as_of_ms` are now in
    /// the supplier's numbers and stop being counted.
    async fn supply_refreshed(
        &self,
        supplier: SupplierId,
        supplier_id: &str,
        as_of_ms: i64,
    ) -> Result<(), LedgerError>;

    /// Up to `limit` purchase orders due for sending, leased to this caller
    /// for `lease_ms` so that concurrent senders (other replicas) skip them.
    async fn due_orders(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<OutboundOrder>, LedgerError>;

    /// Records how a send went. Late outcomes for an order that is already
    /// acknowledged or cancelled are ignored.
    async fn record_delivery(
        &self,
        po_number: &str,
        outcome: DeliveryOutcome,
    ) -> Result<(), LedgerError>;

    /// Units counted against supply per (supplier, product): held plus
    /// allocated-not-yet-reflected. Synchronous and in memory, for the
    /// quote path.
    fn holds(&self) -> std::sync::Arc<dyn HoldsView>;

    /// Whether the ledger can serve now.
    fn health(&self) -> LedgerHealth;

    /// Makes everything acknowledged durable and stops background work;
    /// called on shutdown.
    async fn flush(&self) -> Result<(), LedgerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_parts_and_are_stable() {
        let a = RequestFingerprint::of(&[b"ab", b"c"]);
        let b = RequestFingerprint::of(&[b"a", b"bc"]);
        assert_ne!(a, b);
        // Stored fingerprints must match across builds: pin the algorithm.
        assert_eq!(
            format!("{:032x}", RequestFingerprint::of(&[]).0),
            "6c62272e07bb014262b821756295c58d"
        );
    }

    #[test]
    fn ids_are_unique_and_shaped() {
        let a = ReservationId::generate(1_700_000_000_000);
        let b = ReservationId::generate(1_700_000_000_000);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("R-"));
        assert_eq!(a.as_str().len(), 28);
        let later = ReservationId::generate(1_700_000_000_001);
        assert!(later > a && later > b, "ids sort by creation time");
        assert_eq!(
            PurchaseOrder::number_for(&ReservationId::new("R-ABC"), 0),
            "PO-ABC-1"
        );
        // The time part is the leading digits: pin the encoding.
        let mut time = String::new();
        push_base32(&mut time, 1_700_000_000_000u128 << 80, ID_DIGITS);
        assert_eq!(&time[..10], "01HF7YAT00");
        assert_eq!(&a.as_str()[2..12], "01HF7YAT00");
        let mut s = String::new();
        push_base32(&mut s, (1 << 125) | 31, ID_DIGITS);
        assert_eq!(s, "1000000000000000000000000Z");
    }

    #[test]
    fn keys_are_validated() {
        assert!(IdempotencyKey::parse("order-42/attempt").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }
}
