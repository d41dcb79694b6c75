//! One attempt at each ledger call, as a transaction. The caller
//! ([`super::Inner::run`]) repeats an attempt after conflicts and lost
//! connections; an attempt therefore never half-succeeds: it commits
//! everything or rolls back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::error::Fail;
use super::holds_cache::Count;
use super::sql;
use super::Inner;
use crate::domain::address::Address;
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::ledger::{
    CommitRequest, Delivery, DeliveryOutcome, HeldLine, IdempotencyKey, LedgerError, OutboundOrder,
    PurchaseOrder, ReleaseRequest, RequestFingerprint, Reservation, ReservationId, ReserveRequest,
    State, StockKey, StockShortage, IDEMPOTENCY_KEY_TTL_MS, RELEASE_REASON_BYTES_MAX,
};

/// The key a stored name resolves to when this process does not know it:
/// it matches nothing in the index, so it counts against nothing.
const UNRESOLVED: StockKey = StockKey {
    supplier: u16::MAX,
    product: u32::MAX,
};

/// Expired holds replenished per transaction by the sweeper.
const EXPIRE_BATCH: i64 = 256;
/// Idempotency keys deleted per statement once past their lifetime.
const PURGE_BATCH: i64 = 1_000;
/// How often the sweeper also deletes old idempotency keys.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Stock rows updated per pipelined batch when a full feed arrives.
const REFRESH_BATCH: usize = 256;

type Param<'a> = &'a (dyn ToSql + Sync);

/// A pooled connection that is thrown away, not returned, if it is dropped
/// inside a transaction, so that no one else ever gets a connection with a
/// half-done transaction on it.
struct Session {
    obj: Option<Object>,
    open: bool,
}

impl Session {
    async fn new(pool: &Pool) -> Result<Self, Fail> {
        Ok(Self {
            obj: Some(pool.get().await?),
            open: false,
        })
    }

    fn client(&self) -> &tokio_postgres::Client {
        // `obj` is only taken in `drop`.
        self.obj
            .as_deref()
            .map(|c| &**c)
            .expect("session has a connection")
    }

    async fn prepare(&self, sql: &str) -> Result<Statement, Fail> {
        let obj = self.obj.as_ref().expect("session has a connection");
        Ok(obj.prepare_cached(sql).await?)
    }

    /// Marks the transaction open; the BEGIN itself is pipelined by the caller.
    fn opening(&mut self) -> &tokio_postgres::Client {
        self.open = true;
        self.client()
    }

    async fn commit(&mut self) -> Result<(), Fail> {
        self.client().batch_execute("COMMIT").await?;
        self.open = false;
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), Fail> {
        self.client().batch_execute("ROLLBACK").await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.open {
            if let Some(obj) = self.obj.take() {
                // Closing the connection makes the server roll back.
                drop(Object::take(obj));
            }
        }
    }
}

/// Checks what only the ledger checks on a reserve.
pub fn validate_reserve(req: &ReserveRequest) -> Result<(), LedgerError> {
    if req.lines.is_empty() {
        return Err(LedgerError::Invalid(
            "a reservation needs at least one line".into(),
        ));
    }
    if req.hold_ms <= 0 {
        return Err(LedgerError::Invalid(format!(
            "hold time must be positive, not {} ms",
            req.hold_ms
        )));
    }
    Ok(())
}

/// The idempotency scope of an owner: `''` for none, `'=' || owner` otherwise.
fn scope(owner: Option<&str>) -> String {
    owner.map_or_else(String::new, |o| format!("={o}"))
}

/// Units wanted of one (supplier, SKU), summed over a request's lines.
#[derive(Debug, Clone)]
struct Wanted {
    supplier_id: String,
    sku: String,
    units: u32,
    supply: u32,
    as_of_ms: i64,
}

/// Sums a request's lines per (supplier, SKU), in first-appearance order;
/// the smallest supply named for a key wins (with its as-of).
fn merge(req: &ReserveRequest) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::with_capacity(req.lines.len());
    for l in &req.lines {
        let (sid, sku) = (&l.line.supplier_id, &l.line.sku);
        match out
            .iter_mut()
            .find(|w| &w.supplier_id == sid && &w.sku == sku)
        {
            Some(w) => {
                w.units = w.units.saturating_add(l.line.qty);
                if l.supply < w.supply || (l.supply == w.supply && l.supply_as_of_ms > w.as_of_ms) {
                    w.supply = l.supply;
                    w.as_of_ms = l.supply_as_of_ms;
                }
            }
            None => out.push(Wanted {
                supplier_id: sid.clone(),
                sku: sku.clone(),
                units: l.line.qty,
                supply: l.supply,
                as_of_ms: l.supply_as_of_ms,
            }),
        }
    }
    out
}

fn count_of(row: &Row) -> Count {
    Count {
        supplier_id: row.get(0),
        sku: row.get(1),
        counted: row.get(2),
        version: row.get(3),
    }
}

/// Holds (or, with `order_ref`, allocates) a request's lines: one pipelined
/// transaction that binds the key, takes the stock and writes the
/// reservation, then COMMIT or ROLLBACK.
pub(crate) async fn hold(
    inner: &Inner,
    req: &ReserveRequest,
    order_ref: Option<&str>,
) -> Result<Reservation, Fail> {
    let wanted = merge(req);
    let mut swept = false;
    loop {
        match try_hold(inner, req, order_ref, &wanted).await? {
            Held::Done(r) => return Ok(*r),
            Held::KeyBound => return bound_answer(inner, req).await,
            Held::Short => {
                // Holds past their time may still be counted until swept:
                // sweep once and try again, so expiry is exact for
                // availability too.
                if !swept && any_due_hold(inner).await? {
                    swept = true;
                    expire_due(inner).await?;
                    continue;
                }
                let shortages = shortages(inner, &wanted).await?;
                if shortages.is_empty() {
                    // Stock was freed between the attempt and the look.
                    return Err(Fail::Conflict("stock changed during the reserve".into()));
                }
                return Err(LedgerError::InsufficientStock(shortages).into());
            }
        }
    }
}

enum Held {
    Done(Box<Reservation>),
    KeyBound,
    Short,
}

async fn try_hold(
    inner: &Inner,
    req: &ReserveRequest,
    order_ref: Option<&str>,
    wanted: &[Wanted],
) -> Result<Held, Fail> {
    // A line asking for more than its whole supply cannot fit, and a new
    // stock row with it would break the table's CHECK.
    if wanted.iter().any(|w| w.units > w.supply) {
        // Unless the key already answers for a reservation.
        let s = Session::new(&inner.pool).await?;
        let st = s.prepare(sql::KEY_BINDING).await?;
        let scope = scope(req.owner.as_deref());
        let bound = s
            .client()
            .query_opt(&st, &[&scope, &req.key.as_str()])
            .await?;
        return Ok(if bound.is_some() {
            Held::KeyBound
        } else {
            Held::Short
        });
    }
    let id = ReservationId::generate(SystemClock.now_ms());
    let allocate = order_ref.is_some();
    let mut sorted: Vec<&Wanted> = wanted.iter().collect();
    sorted.sort_by(|a, b| (&a.supplier_id, &a.sku).cmp(&(&b.supplier_id, &b.sku)));
    let k_sid: Vec<&str> = sorted.iter().map(|w| w.supplier_id.as_str()).collect();
    let k_sku: Vec<&str> = sorted.iter().map(|w| w.sku.as_str()).collect();
    let k_supply: Vec<i64> = sorted.iter().map(|w| i64::from(w.supply)).collect();
    let k_as_of: Vec<i64> = sorted.iter().map(|w| w.as_of_ms).collect();
    let units = |on: bool| -> Vec<i64> {
        sorted
            .iter()
            .map(|w| if on { i64::from(w.units) } else { 0 })
            .collect()
    };
    let (k_held, k_allocated) = (units(!allocate), units(allocate));
    let l_sid: Vec<&str> = req
        .lines
        .iter()
        .map(|l| l.line.supplier_id.as_str())
        .collect();
    let l_sku: Vec<&str> = req.lines.iter().map(|l| l.line.sku.as_str()).collect();
    let l_ssku: Vec<&str> = req
        .lines
        .iter()
        .map(|l| l.line.supplier_sku.as_str())
        .collect();
    let l_qty: Vec<i64> = req.lines.iter().map(|l| i64::from(l.line.qty)).collect();
    let l_cost: Vec<Decimal> = req.lines.iter().map(|l| l.line.unit_cost).collect();
    let orders = allocate.then(|| planned_orders(&id, &req.lines));
    let (o_po, o_sid): (Vec<String>, Vec<String>) = orders
        .iter()
        .flatten()
        .map(|(po, sid)| (po.clone(), sid.clone()))
        .unzip();

    let off = inner.clock();
    let scope = scope(req.owner.as_deref());
    let fingerprint = req.fingerprint.0.to_be_bytes();
    let (state, counts, hold_ms) = if allocate {
        ("committed", "allocated", 0i64)
    } else {
        ("held", "held", req.hold_ms)
    };
    let id_str = id.as_str();

    let mut s = Session::new(&inner.pool).await?;
    let (st_bind, st_take, st_res, st_lines, st_orders) = futures::try_join!(
        s.prepare(sql::BIND_KEY),
        s.prepare(sql::TAKE_STOCK),
        s.prepare(sql::INSERT_RESERVATION),
        s.prepare(sql::INSERT_LINES),
        s.prepare(sql::INSERT_ORDERS),
    )?;
    let c = s.opening();
    let bind_params: [Param; 5] = [
        &off,
        &scope,
        &req.key.as_str(),
        &fingerprint.as_slice(),
        &id_str,
    ];
    let take_params: [Param; 6] = [&k_sid, &k_sku, &k_supply, &k_as_of, &k_held, &k_allocated];
    let res_params: [Param; 10] = [
        &off,
        &id_str,
        &req.owner,
        &state,
        &req.plan,
        &req.ship_to.country_code,
        &req.ship_to.postal_code,
        &req.ship_to.residential,
        &hold_ms,
        &order_ref,
    ];
    let line_params: [Param; 8] = [
        &off, &id_str, &l_sid, &l_sku, &l_ssku, &l_qty, &l_cost, &counts,
    ];
    let order_params: [Param; 4] = [&off, &id_str, &o_po, &o_sid];
    // The stock rows are taken last, so their locks are held only from
    // there to COMMIT: other baskets on a hot SKU wait as little as can be.
    let (begun, bound, created, lines, ordered, taken) = futures::join!(
        c.batch_execute("BEGIN"),
        c.query(&st_bind, &bind_params),
        c.query_one(&st_res, &res_params),
        c.execute(&st_lines, &line_params),
        async {
            if allocate {
                c.execute(&st_orders, &order_params).await.map(drop)
            } else {
                Ok(())
            }
        },
        c.query(&st_take, &take_params),
    );
    let outcome = (|| {
        begun?;
        let bound = bound?;
        let taken = taken?;
        let created = created?;
        lines?;
        ordered?;
        Ok::<_, tokio_postgres::Error>((bound, taken, created))
    })();
    let (bound, taken, created) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let fail = Fail::from(e);
            // The connection may be gone; rolling back on it is best effort,
            // and a session left open is discarded on drop.
            let _ = s.rollback().await;
            return Err(fail);
        }
    };
    if bound.is_empty() {
        s.rollback().await?;
        return Ok(Held::KeyBound);
    }
    if taken.len() < sorted.len() {
        s.rollback().await?;
        return Ok(Held::Short);
    }
    s.commit().await?;
    inner.publish(taken.iter().map(count_of).collect());

    let created_at_ms: i64 = created.get(0);
    let expires_at_ms: i64 = created.get(1);
    let committed_at_ms: Option<i64> = created.get(2);
    let lines: Vec<HeldLine> = req.lines.iter().map(|l| l.line.clone()).collect();
    let orders = orders
        .unwrap_or_default()
        .into_iter()
        .map(|(po_number, supplier_id)| PurchaseOrder {
            supplier: lines
                .iter()
                .find(|l| l.supplier_id == supplier_id)
                .map_or(UNRESOLVED.supplier, |l| l.key.supplier),
            lines: lines
                .iter()
                .filter(|l| l.supplier_id == supplier_id)
                .cloned()
                .collect(),
            po_number,
            supplier_id,
            delivery: Delivery::Pending {
                attempts: 0,
                last_error: None,
                next_attempt_at_ms: created_at_ms,
            },
        })
        .collect();
    Ok(Held::Done(Box::new(Reservation {
        id,
        state: if allocate {
            State::Committed
        } else {
            State::Held
        },
        lines,
        plan: req.plan.clone(),
        ship_to: req.ship_to.clone(),
        created_at_ms,
        expires_at_ms,
        order_ref: order_ref.map(str::to_owned),
        committed_at_ms,
        release_reason: None,
        orders,
        owner: req.owner.clone(),
    })))
}

/// (po_number, supplier_id) per supplier of the lines, in supplier id order.
fn planned_orders(
    id: &ReservationId,
    lines: &[crate::domain::ledger::ReserveLine],
) -> Vec<(String, String)> {
    let mut suppliers: Vec<&str> = lines.iter().map(|l| l.line.supplier_id.as_str()).collect();
    suppliers.sort_unstable();
    suppliers.dedup();
    suppliers
        .into_iter()
        .enumerate()
        .map(|(i, s)| (PurchaseOrder::number_for(id, i), s.to_owned()))
        .collect()
}

/// The answer to a reserve whose key is already bound.
async fn bound_answer(inner: &Inner, req: &ReserveRequest) -> Result<Reservation, Fail> {
    let s = Session::new(&inner.pool).await?;
    let st = s.prepare(sql::KEY_BINDING).await?;
    let scope = scope(req.owner.as_deref());
    let row = s
        .client()
        .query_opt(&st, &[&scope, &req.key.as_str()])
        .await?;
    let Some(row) = row else {
        // Deleted since (past its lifetime): the next attempt binds it anew.
        return Err(Fail::Conflict("idempotency key vanished".into()));
    };
    let fingerprint: Vec<u8> = row.get(0);
    let existing = ReservationId::new(row.get::<_, String>(1));
    if fingerprint != req.fingerprint.0.to_be_bytes() {
        return Err(LedgerError::KeyReused {
            key: req.key.clone(),
            existing,
        }
        .into());
    }
    match load(inner, &s, existing.as_str()).await? {
        Some(loaded) => Ok(loaded.reservation),
        None => Err(Fail::Ledger(LedgerError::Unavailable(format!(
            "idempotency key bound to reservation {existing}, which is missing"
        )))),
    }
}

/// The reservation a key is bound to, if any, without doing anything. A
/// reserve with the key still in flight is waited for: one pipelined round
/// trip tries to bind the key (which waits behind an uncommitted binding),
/// reads the binding as committed by then, and rolls back.
pub(crate) async fn find(
    inner: &Inner,
    owner: Option<&str>,
    key: &IdempotencyKey,
    fingerprint: RequestFingerprint,
) -> Result<Option<Reservation>, Fail> {
    let mut s = Session::new(&inner.pool).await?;
    let (st_bind, st_read) =
        futures::try_join!(s.prepare(sql::BIND_KEY), s.prepare(sql::KEY_BINDING))?;
    let (off, scope, fp) = (inner.clock(), scope(owner), fingerprint.0.to_be_bytes());
    let bind_params: [Param; 5] = [&off, &scope, &key.as_str(), &fp.as_slice(), &""];
    let read_params: [Param; 2] = [&scope, &key.as_str()];
    let c = s.opening();
    let (begun, _, read, ended) = futures::join!(
        c.batch_execute("BEGIN"),
        c.query(&st_bind, &bind_params),
        c.query_opt(&st_read, &read_params),
        c.batch_execute("ROLLBACK"),
    );
    begun?;
    let row = read?;
    ended?;
    s.open = false;
    let Some(row) = row else {
        return Ok(None);
    };
    let bound: Vec<u8> = row.get(0);
    let existing = ReservationId::new(row.get::<_, String>(1));
    if bound != fp {
        return Err(LedgerError::KeyReused {
            key: key.clone(),
            existing,
        }
        .into());
    }
    Ok(load(inner, &s, existing.as_str())
        .await?
        .map(|loaded| loaded.reservation))
}

async fn any_due_hold(inner: &Inner) -> Result<bool, Fail> {
    let s = Session::new(&inner.pool).await?;
    let st = s.prepare(sql::ANY_DUE_HOLD).await?;
    let row = s.client().query_one(&st, &[&inner.clock()]).await?;
    Ok(row.get(0))
}

/// Why a reserve did not fit, key by key, from the stored counts.
async fn shortages(inner: &Inner, wanted: &[Wanted]) -> Result<Vec<StockShortage>, Fail> {
    let s = Session::new(&inner.pool).await?;
    let st = s.prepare(sql::STOCK_OF).await?;
    let sid: Vec<&str> = wanted.iter().map(|w| w.supplier_id.as_str()).collect();
    let sku: Vec<&str> = wanted.iter().map(|w| w.sku.as_str()).collect();
    let rows = s.client().query(&st, &[&sid, &sku]).await?;
    let stored: HashMap<(String, String), (i64, i64, i64)> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4))))
        .collect();
    Ok(wanted
        .iter()
        .filter_map(|w| {
            let (limit, counted) = match stored.get(&(w.supplier_id.clone(), w.sku.clone())) {
                Some(&(_, as_of, counted)) if w.as_of_ms >= as_of => (i64::from(w.supply), counted),
                Some(&(supply, _, counted)) => (supply.min(i64::from(w.supply)), counted),
                None => (i64::from(w.supply), 0),
            };
            let available = u32::try_from((limit - counted).max(0)).unwrap_or(u32::MAX);
            (w.units > available).then(|| StockShortage {
                supplier_id: w.supplier_id.clone(),
                sku: w.sku.clone(),
                requested: w.units,
                available,
            })
        })
        .collect())
}

/// A reservation as stored, with the clock it was read at.
struct Loaded {
    /// State as of the clock (a HELD past its time reads EXPIRED).
    reservation: Reservation,
    /// The state column itself.
    stored: State,
}

fn parse_state(s: &str) -> Result<State, Fail> {
    Ok(match s {
        "held" => State::Held,
        "committed" => State::Committed,
        "released" => State::Released,
        "expired" => State::Expired,
        other => {
            return Err(Fail::Ledger(LedgerError::Unavailable(format!(
                "reservation state {other:?} in the database is unknown to this version"
            ))))
        }
    })
}

/// Reads a reservation, its lines and its orders in one round trip.
async fn load(inner: &Inner, s: &Session, id: &str) -> Result<Option<Loaded>, Fail> {
    let (st_res, st_lines, st_orders) = futures::try_join!(
        s.prepare(sql::GET_RESERVATION),
        s.prepare(sql::GET_LINES),
        s.prepare(sql::GET_ORDERS),
    )?;
    let c = s.client();
    let off = inner.clock();
    let (res_params, id_param): ([Param; 2], [Param; 1]) = ([&off, &id], [&id]);
    let (res, lines, orders) = futures::join!(
        c.query_opt(&st_res, &res_params),
        c.query(&st_lines, &id_param),
        c.query(&st_orders, &id_param),
    );
    let Some(r) = res? else {
        return Ok(None);
    };
    let (lines, orders) = (lines?, orders?);
    let stored = parse_state(r.get::<_, &str>(2))?;
    let expires_at_ms: i64 = r.get(8);
    let now_ms: i64 = r.get(12);
    let state = if stored == State::Held && expires_at_ms <= now_ms {
        State::Expired
    } else {
        stored
    };
    let lines: Vec<HeldLine> = lines
        .iter()
        .map(|l| {
            let supplier_id: String = l.get(0);
            let sku: String = l.get(1);
            HeldLine {
                key: inner.cache.key(&supplier_id, &sku).unwrap_or(UNRESOLVED),
                supplier_id,
                sku,
                supplier_sku: l.get(2),
                qty: u32::try_from(l.get::<_, i64>(3)).unwrap_or(u32::MAX),
                unit_cost: l.get(4),
            }
        })
        .collect();
    let orders = orders
        .iter()
        .map(|o| order_from_row(inner, o, &lines, 1))
        .collect::<Vec<_>>();
    Ok(Some(Loaded {
        reservation: Reservation {
            id: ReservationId::new(r.get::<_, String>(0)),
            state,
            lines,
            plan: r.get(3),
            ship_to: Address {
                country_code: r.get(4),
                postal_code: r.get(5),
                residential: r.get(6),
            },
            created_at_ms: r.get(7),
            expires_at_ms,
            order_ref: r.get(9),
            committed_at_ms: r.get(10),
            release_reason: r.get(11),
            orders,
            owner: r.get(1),
        },
        stored,
    }))
}

/// A purchase order from a row whose columns, from `at`, are supplier_id,
/// status, attempts, last_error, next_attempt_at_ms, acknowledged_at_ms
/// (with po_number at 0).
fn order_from_row(inner: &Inner, o: &Row, lines: &[HeldLine], at: usize) -> PurchaseOrder {
    let supplier_id: String = o.get(at);
    let attempts = u32::try_from(o.get::<_, i64>(at + 2)).unwrap_or(u32::MAX);
    let delivery = match o.get::<_, &str>(at + 1) {
        "acknowledged" => Delivery::Acknowledged {
            attempts,
            at_ms: o.get::<_, Option<i64>>(at + 5).unwrap_or_default(),
        },
        "cancelled" => Delivery::Cancelled,
        _ => Delivery::Pending {
            attempts,
            last_error: o.get(at + 3),
            next_attempt_at_ms: o.get(at + 4),
        },
    };
    PurchaseOrder {
        po_number: o.get(0),
        supplier: inner
            .cache
            .supplier(&supplier_id)
            .unwrap_or(UNRESOLVED.supplier),
        lines: lines
            .iter()
            .filter(|l| l.supplier_id == supplier_id)
            .cloned()
            .collect(),
        supplier_id,
        delivery,
    }
}

fn check_owner(r: &Reservation, caller: Option<&str>) -> Result<(), Fail> {
    match (r.owner.as_deref(), caller) {
        (Some(mine), Some(theirs)) if mine != theirs => {
            Err(LedgerError::NotOwner { id: r.id.clone() }.into())
        }
        _ => Ok(()),
    }
}

/// Reads a reservation for a caller.
pub(crate) async fn get(
    inner: &Inner,
    id: &ReservationId,
    owner: Option<&str>,
) -> Result<Reservation, Fail> {
    let s = Session::new(&inner.pool).await?;
    let Some(loaded) = load(inner, &s, id.as_str()).await? else {
        return Err(LedgerError::NotFound { id: id.clone() }.into());
    };
    check_owner(&loaded.reservation, owner)?;
    Ok(loaded.reservation)
}

/// Counter changes per (supplier_id, SKU): (held, allocated).
type Deltas = BTreeMap<(String, String), (i64, i64)>;

/// Applies counter changes one statement per key, in key order (the same
/// order every transaction locks stock rows in), pipelined.
async fn move_stock(s: &Session, deltas: &Deltas) -> Result<Vec<Count>, Fail> {
    if deltas.is_empty() {
        return Ok(Vec::new());
    }
    let st = s.prepare(sql::MOVE_STOCK).await?;
    let c = s.client();
    let rows = futures::future::join_all(deltas.iter().map(|((sid, sku), (dh, da))| {
        let st = &st;
        async move { c.query_opt(st, &[sid, sku, dh, da]).await }
    }))
    .await;
    let mut counts = Vec::with_capacity(deltas.len());
    for (((sid, sku), _), row) in deltas.iter().zip(rows) {
        if let Some(row) = row? {
            counts.push(Count {
                supplier_id: sid.clone(),
                sku: sku.clone(),
                counted: row.get(0),
                version: row.get(1),
            });
        }
    }
    Ok(counts)
}

/// Stops lines counting: held lines give back `held`, allocated ones `allocated`.
async fn uncount(s: &Session, ids: &[String]) -> Result<Vec<Count>, Fail> {
    let st = s.prepare(sql::UNCOUNT_LINES).await?;
    let rows = s.client().query(&st, &[&ids]).await?;
    let mut deltas = Deltas::new();
    for r in &rows {
        let qty: i64 = r.get(2);
        let was_allocated: bool = r.get(3);
        let d = deltas.entry((r.get(0), r.get(1))).or_default();
        if was_allocated {
            d.1 -= qty;
        } else {
            d.0 -= qty;
        }
    }
    move_stock(s, &deltas).await
}

/// HELD -> COMMITTED with purchase orders.
pub(crate) async fn commit(inner: &Inner, req: &CommitRequest) -> Result<Reservation, Fail> {
    let off = inner.clock();
    let id = req.id.as_str();
    let mut s = Session::new(&inner.pool).await?;
    let (st_commit, st_allocate, st_orders) = futures::try_join!(
        s.prepare(sql::COMMIT),
        s.prepare(sql::ALLOCATE_LINES),
        s.prepare(sql::INSERT_ORDERS),
    )?;
    let c = s.opening();
    let commit_params: [Param; 4] = [&off, &id, &req.order_ref, &req.owner];
    let allocate_params: [Param; 2] = [&off, &id];
    let (begun, committed, allocated) = futures::join!(
        c.batch_execute("BEGIN"),
        c.query(&st_commit, &commit_params),
        c.query(&st_allocate, &allocate_params),
    );
    let step = (|| Ok::<_, tokio_postgres::Error>((begun?, committed?, allocated?)))();
    let (_, committed, allocated) = match step {
        Ok(v) => v,
        Err(e) => {
            let fail = Fail::from(e);
            let _ = s.rollback().await;
            return Err(fail);
        }
    };
    if committed.is_empty() {
        // Not a live hold this caller may commit: say why, from what is stored.
        s.rollback().await?;
        drop(s);
        return commit_refused(inner, req).await;
    }
    let mut deltas = Deltas::new();
    for r in &allocated {
        let qty: i64 = r.get(2);
        let d = deltas.entry((r.get(0), r.get(1))).or_default();
        d.0 -= qty;
        d.1 += qty;
    }
    let mut suppliers: Vec<&str> = deltas.keys().map(|(sid, _)| sid.as_str()).collect();
    suppliers.dedup();
    let po: Vec<String> = (0..suppliers.len())
        .map(|i| PurchaseOrder::number_for(&req.id, i))
        .collect();
    let order_params: [Param; 4] = [&off, &id, &po, &suppliers];
    let (counts, ordered) = futures::join!(
        move_stock(&s, &deltas),
        s.client().execute(&st_orders, &order_params),
    );
    let (counts, ordered) = (counts, ordered.map_err(Fail::from));
    let counts = match (counts, ordered) {
        (Ok(c), Ok(_)) => c,
        (Err(e), _) | (_, Err(e)) => {
            let _ = s.rollback().await;
            return Err(e);
        }
    };
    let loaded = load(inner, &s, id).await;
    let loaded = match loaded {
        Ok(Some(l)) => l,
        Ok(None) => {
            let _ = s.rollback().await;
            return Err(Fail::Conflict("reservation vanished during commit".into()));
        }
        Err(e) => {
            let _ = s.rollback().await;
            return Err(e);
        }
    };
    s.commit().await?;
    inner.publish(counts);
    Ok(loaded.reservation)
}

async fn commit_refused(inner: &Inner, req: &CommitRequest) -> Result<Reservation, Fail> {
    let loaded = {
        let s = Session::new(&inner.pool).await?;
        load(inner, &s, req.id.as_str()).await?
    };
    let Some(loaded) = loaded else {
        return Err(LedgerError::NotFound { id: req.id.clone() }.into());
    };
    let r = loaded.reservation;
    check_owner(&r, req.owner.as_deref())?;
    match r.state {
        State::Committed if r.order_ref.as_deref() == Some(req.order_ref.as_str()) => Ok(r),
        State::Committed => Err(LedgerError::CommittedToOtherOrder {
            id: r.id,
            committed: r.order_ref.unwrap_or_default(),
            requested: req.order_ref.clone(),
        }
        .into()),
        State::Released => Err(LedgerError::Released { id: r.id }.into()),
        State::Expired => {
            if loaded.stored == State::Held {
                // Past its time but not swept: replenish it now.
                expire(inner, &[r.id.as_str().to_owned()]).await?;
            }
            Err(LedgerError::Expired {
                id: r.id,
                expired_at_ms: r.expires_at_ms,
            }
            .into())
        }
        // Live and ours, yet not committed: a concurrent change; look again.
        State::Held => Err(Fail::Conflict("reservation changed during commit".into())),
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// HELD (or COMMITTED with cancel_allocation) -> RELEASED.
pub(crate) async fn release(inner: &Inner, req: &ReleaseRequest) -> Result<Reservation, Fail> {
    let off = inner.clock();
    let id = req.id.as_str();
    let reason = cut(&req.reason, RELEASE_REASON_BYTES_MAX);
    let mut s = Session::new(&inner.pool).await?;
    let (st_release, st_cancel) =
        futures::try_join!(s.prepare(sql::RELEASE), s.prepare(sql::CANCEL_ORDERS))?;
    let c = s.opening();
    let params: [Param; 5] = [&off, &id, &reason, &req.cancel_allocation, &req.owner];
    let (begun, released) = futures::join!(c.batch_execute("BEGIN"), c.query(&st_release, &params));
    let released = match begun.and(released) {
        Ok(r) => r,
        Err(e) => {
            let fail = Fail::from(e);
            let _ = s.rollback().await;
            return Err(fail);
        }
    };
    if released.is_empty() {
        s.rollback().await?;
        drop(s);
        return release_refused(inner, req).await;
    }
    let ids = [id.to_owned()];
    let (counts, cancelled) = futures::join!(uncount(&s, &ids), async {
        if req.cancel_allocation {
            s.client()
                .execute(&st_cancel, &[&id])
                .await
                .map(drop)
                .map_err(Fail::from)
        } else {
            Ok(())
        }
    });
    let counts = match counts.and_then(|c| cancelled.map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            let _ = s.rollback().await;
            return Err(e);
        }
    };
    let loaded = match load(inner, &s, id).await {
        Ok(Some(l)) => l,
        other => {
            let _ = s.rollback().await;
            return Err(other
                .err()
                .unwrap_or_else(|| Fail::Conflict("reservation vanished".into())));
        }
    };
    s.commit().await?;
    inner.publish(counts);
    Ok(loaded.reservation)
}

async fn release_refused(inner: &Inner, req: &ReleaseRequest) -> Result<Reservation, Fail> {
    let loaded = {
        let s = Session::new(&inner.pool).await?;
        load(inner, &s, req.id.as_str()).await?
    };
    let Some(loaded) = loaded else {
        return Err(LedgerError::NotFound { id: req.id.clone() }.into());
    };
    check_owner(&loaded.reservation, req.owner.as_deref())?;
    let r = loaded.reservation;
    match (loaded.stored, r.state) {
        (State::Committed, _) => Err(LedgerError::Committed {
            id: r.id,
            order_ref: r.order_ref.unwrap_or_default(),
        }
        .into()),
        (State::Held, State::Expired) => {
            // Past its time but not swept: replenish it now and answer EXPIRED.
            expire(inner, &[r.id.as_str().to_owned()]).await?;
            get(inner, &r.id, None).await
        }
        (State::Held, _) => Err(Fail::Conflict("reservation changed during release".into())),
        _ => Ok(r),
    }
}

/// Expires those of `ids` that are still HELD past their time; returns how many.
async fn expire(inner: &Inner, ids: &[String]) -> Result<usize, Fail> {
    let off = inner.clock();
    let mut s = Session::new(&inner.pool).await?;
    let st = s.prepare(sql::EXPIRE).await?;
    let c = s.opening();
    let params: [Param; 2] = [&off, &ids];
    let (begun, expired) = futures::join!(c.batch_execute("BEGIN"), c.query(&st, &params));
    let expired = match begun.and(expired) {
        Ok(r) => r,
        Err(e) => {
            let fail = Fail::from(e);
            let _ = s.rollback().await;
            return Err(fail);
        }
    };
    if expired.is_empty() {
        s.rollback().await?;
        return Ok(0);
    }
    let expired: Vec<String> = expired.iter().map(|r| r.get(0)).collect();
    let counts = match uncount(&s, &expired).await {
        Ok(c) => c,
        Err(e) => {
            let _ = s.rollback().await;
            return Err(e);
        }
    };
    s.commit().await?;
    inner.publish(counts);
    metrics::counter!("stockroute_ledger_expired_total").increment(expired.len() as u64);
    Ok(expired.len())
}

/// Replenishes every hold past its time, a batch per transaction, and now
/// and then deletes idempotency keys past their lifetime.
pub(crate) async fn expire_due(inner: &Inner) -> Result<usize, Fail> {
    let mut total = 0;
    loop {
        let ids: Vec<String> = {
            let s = Session::new(&inner.pool).await?;
            let st = s.prepare(sql::DUE_HOLDS).await?;
            s.client()
                .query(&st, &[&inner.clock(), &EXPIRE_BATCH])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        if ids.is_empty() {
            break;
        }
        let n = ids.len();
        total += expire(inner, &ids).await?;
        if (n as i64) < EXPIRE_BATCH {
            break;
        }
    }
    purge_keys(inner).await?;
    Ok(total)
}

async fn purge_keys(inner: &Inner) -> Result<(), Fail> {
    {
        let mut last = inner.last_purge.lock();
        if last.is_some_and(|t| t.elapsed() < PURGE_EVERY) {
            return Ok(());
        }
        *last = Some(tokio::time::Instant::now());
    }
    let s = Session::new(&inner.pool).await?;
    let st = s.prepare(sql::PURGE_KEYS).await?;
    loop {
        let n = s
            .client()
            .execute(
                &st,
                &[&inner.clock(), &IDEMPOTENCY_KEY_TTL_MS, &PURGE_BATCH],
            )
            .await?;
        if (n as i64) < PURGE_BATCH {
            return Ok(());
        }
    }
}

/// A full feed from `supplier_id` as of `as_of_ms`: its allocations from
/// before stop counting, and its stock rows take this replica's new figures,
/// so that a replica still quoting from an older feed cannot raise them.
pub(crate) async fn supply_refreshed(
    inner: &Inner,
    supplier_id: &str,
    as_of_ms: i64,
) -> Result<(), Fail> {
    let mut s = Session::new(&inner.pool).await?;
    let (st_retire, st_rows, st_refresh) = futures::try_join!(
        s.prepare(sql::RETIRE_ALLOCATIONS),
        s.prepare(sql::STOCK_OF_SUPPLIER),
        s.prepare(sql::REFRESH_STOCK),
    )?;
    let c = s.opening();
    let (retire_params, rows_params): ([Param; 2], [Param; 1]) =
        ([&supplier_id, &as_of_ms], [&supplier_id]);
    let (begun, retired, rows) = futures::join!(
        c.batch_execute("BEGIN"),
        c.query(&st_retire, &retire_params),
        c.query(&st_rows, &rows_params),
    );
    let (retired, rows) = match (|| Ok::<_, tokio_postgres::Error>((begun?, retired?, rows?)))() {
        Ok((_, r, w)) => (r, w),
        Err(e) => {
            let fail = Fail::from(e);
            let _ = s.rollback().await;
            return Err(fail);
        }
    };
    let mut changes: BTreeMap<String, i64> = rows.iter().map(|r| (r.get(0), 0)).collect();
    for r in &retired {
        *changes.entry(r.get(0)).or_default() -= r.get::<_, i64>(1);
    }
    let mut counts = Vec::new();
    let updates: Vec<(String, i64, i64, i64)> = changes
        .into_iter()
        .map(|(sku, d_allocated)| {
            let supply = inner.supply.supply(supplier_id, &sku);
            let (qty, at) = match supply {
                Some(x) => (i64::from(x.qty), x.as_of_ms),
                // Not in the supplier's full feed any more: none left.
                None => (0, as_of_ms),
            };
            (sku, d_allocated, qty, at)
        })
        .collect();
    for chunk in updates.chunks(REFRESH_BATCH) {
        let c = s.client();
        let rows = futures::future::join_all(chunk.iter().map(|(sku, da, qty, at)| {
            let st = &st_refresh;
            async move { c.query_opt(st, &[&supplier_id, sku, da, qty, at]).await }
        }))
        .await;
        for ((sku, ..), row) in chunk.iter().zip(rows) {
            match row {
                Ok(Some(row)) => counts.push(Count {
                    supplier_id: supplier_id.to_owned(),
                    sku: sku.clone(),
                    counted: row.get(0),
                    version: row.get(1),
                }),
                Ok(None) => {}
                Err(e) => {
                    let fail = Fail::from(e);
                    let _ = s.rollback().await;
                    return Err(fail);
                }
            }
        }
    }
    s.commit().await?;
    inner.publish(counts);
    Ok(())
}

/// Leases due purchase orders and reads what sending them needs.
pub(crate) async fn due_orders(
    inner: &Inner,
    limit: usize,
    lease_ms: i64,
) -> Result<Vec<OutboundOrder>, Fail> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let s = Session::new(&inner.pool).await?;
    let st = s.prepare(sql::LEASE_ORDERS).await?;
    let leased = s
        .client()
        .query(&st, &[&inner.clock(), &limit, &lease_ms])
        .await?;
    let mut ids: Vec<String> = leased.iter().map(|r| r.get(1)).collect();
    ids.sort_unstable();
    ids.dedup();
    let loaded = futures::future::join_all(ids.iter().map(|id| load(inner, &s, id))).await;
    let mut reservations = HashMap::new();
    for (id, l) in ids.iter().zip(loaded) {
        if let Some(l) = l? {
            reservations.insert(id.clone(), l.reservation);
        }
    }
    let mut out = Vec::with_capacity(leased.len());
    for row in &leased {
        let rid: String = row.get(1);
        let Some(r) = reservations.get(&rid) else {
            continue;
        };
        let supplier_id: String = row.get(2);
        let order = r
            .orders
            .iter()
            .find(|o| o.po_number == row.get::<_, &str>(0))
            .cloned()
            .unwrap_or_else(|| PurchaseOrder {
                po_number: row.get(0),
                supplier: UNRESOLVED.supplier,
                lines: r
                    .lines
                    .iter()
                    .filter(|l| l.supplier_id == supplier_id)
                    .cloned()
                    .collect(),
                supplier_id: supplier_id.clone(),
                delivery: Delivery::Pending {
                    attempts: u32::try_from(row.get::<_, i64>(3)).unwrap_or(u32::MAX),
                    last_error: row.get(4),
                    next_attempt_at_ms: row.get(5),
                },
            });
        out.push(OutboundOrder {
            order,
            order_ref: r.order_ref.clone().unwrap_or_default(),
            ship_to: r.ship_to.clone(),
            reservation: r.id.clone(),
        });
    }
    Ok(out)
}

/// Records one send of a purchase order; late news about orders already
/// acknowledged or cancelled changes nothing.
pub(crate) async fn record_delivery(
    inner: &Inner,
    po_number: &str,
    outcome: &DeliveryOutcome,
) -> Result<(), Fail> {
    let s = Session::new(&inner.pool).await?;
    match outcome {
        DeliveryOutcome::Acknowledged => {
            let st = s.prepare(sql::ACKNOWLEDGE).await?;
            s.client()
                .execute(&st, &[&inner.clock(), &po_number])
                .await?;
        }
        DeliveryOutcome::Failed { error, retry_at_ms } => {
            let st = s.prepare(sql::SEND_FAILED).await?;
            let error = cut(error, RELEASE_REASON_BYTES_MAX * 4);
            s.client()
                .execute(&st, &[&po_number, &error, retry_at_ms])
                .await?;
        }
    }
    Ok(())
}

/// Reads every non-zero count into the holds cache, then asks by name for
/// the keys the cache counts but the read did not return.
pub(crate) async fn refresh(inner: &Inner) -> Result<(), Fail> {
    let generation = inner.cache.begin_refresh();
    let s = Session::new(&inner.pool).await?;
    let (st_all, st_some) =
        futures::try_join!(s.prepare(sql::COUNTED), s.prepare(sql::COUNTED_OF))?;
    let rows = s.client().query(&st_all, &[]).await?;
    let mut returned = HashSet::with_capacity(rows.len());
    for row in &rows {
        let count = count_of(row);
        if let Some(key) = inner.cache.key(&count.supplier_id, &count.sku) {
            returned.insert(key);
        }
        inner.cache.apply(&count);
    }
    let missing = inner.cache.missing_from(generation, &returned);
    if !missing.is_empty() {
        let (sid, sku): (Vec<String>, Vec<String>) = missing.into_iter().unzip();
        for row in s.client().query(&st_some, &[&sid, &sku]).await? {
            inner.cache.apply(&count_of(&row));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{IdempotencyKey, RequestFingerprint, ReserveLine};

    fn line(sid: &str, sku: &str, qty: u32, supply: u32, as_of: i64) -> ReserveLine {
        ReserveLine {
            line: HeldLine {
                key: StockKey {
                    supplier: 0,
                    product: 0,
                },
                supplier_id: sid.into(),
                sku: sku.into(),
                supplier_sku: format!("{sid}-{sku}"),
                qty,
                unit_cost: Decimal::ONE,
            },
            supply,
            supply_as_of_ms: as_of,
        }
    }

    fn request(lines: Vec<ReserveLine>) -> ReserveRequest {
        ReserveRequest {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint: RequestFingerprint(1),
            lines,
            hold_ms: 1000,
            plan: Vec::new(),
            ship_to: Address {
                country_code: "US".into(),
                postal_code: "10001".into(),
                residential: false,
            },
            owner: None,
        }
    }

    #[test]
    fn repeated_keys_are_summed_with_the_smallest_supply() {
        let req = request(vec![
            line("B", "x", 2, 9, 5),
            line("A", "y", 1, 4, 5),
            line("B", "x", 3, 7, 3),
        ]);
        let merged = merge(&req);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            (
                merged[0].sku.as_str(),
                merged[0].units,
                merged[0].supply,
                merged[0].as_of_ms
            ),
            ("x", 5, 7, 3)
        );
        assert_eq!(merged[1].sku, "y", "first-appearance order is kept");
    }

    #[test]
    fn scopes_never_collide() {
        assert_eq!(scope(None), "");
        assert_ne!(scope(Some("")), scope(None));
        assert_eq!(scope(Some("shop")), "=shop");
    }

    #[test]
    fn reasons_are_cut_on_character_boundaries() {
        assert_eq!(cut("ab", 5), "ab");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("aéb", 3), "aé");
    }

    #[test]
    fn orders_follow_supplier_id_order() {
        let id = ReservationId::new("R-X");
        let lines = vec![
            line("S2", "a", 1, 1, 0),
            line("S1", "b", 1, 1, 0),
            line("S2", "c", 1, 1, 0),
        ];
        assert_eq!(
            planned_orders(&id, &lines),
            vec![
                ("PO-X-1".to_string(), "S1".to_string()),
                ("PO-X-2".to_string(), "S2".to_string())
            ]
        );
    }
}
