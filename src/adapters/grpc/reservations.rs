//! The reservation side of `Fulfillment`: requests into ledger calls, ledger
//! answers into messages, and the recent quotes that Reserve can hold.
//!
//! Planning is not done here: the service plans a basket with the same
//! pipeline as Quote and hands the plan over. What happens here is turning a
//! plan into lines to hold, checked against the index as it is now (a quote
//! must still be offered at its cost), and keeping the transport out of the
//! ledger: the plan a reservation shows is stored as the encoded `Plan`.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tonic::Status;

use super::convert::{self, invalid, money, timestamp_ms};
use crate::auth::Caller;
use crate::config::Config;
use crate::domain::address::Address;
use crate::domain::ledger::{
    Delivery, HeldLine, IdempotencyKey, PurchaseOrder, RequestFingerprint, Reservation,
    ReservationId, ReserveLine, State, StockKey, ORDER_REF_BYTES_MAX, RELEASE_REASON_BYTES_MAX,
};
use crate::domain::money::{cost_to_decimal, round_cents, CostUnits};
use crate::domain::planner::PlanOutcome;
use crate::domain::quoting::{Demand, Quote};
use crate::domain::realtime::Overlay;
use crate::domain::world::World;
use crate::limits;
use crate::pb;

/// One planned line, with what holding it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Dense ids.
    pub key: StockKey,
    /// The supplier's external id.
    pub supplier_id: String,
    /// The merchant's SKU.
    pub sku: String,
    /// The supplier's code.
    pub supplier_sku: String,
    /// Units.
    pub qty: u32,
    /// Unit cost as planned.
    pub cost: CostUnits,
}

/// A quote kept for Reserve-from-quote.
#[derive(Debug)]
pub struct KeptQuote {
    /// Who asked for it; only they may reserve it.
    pub owner: Option<Arc<str>>,
    /// The plan as Quote answered it, encoded: Reserve stores it so in the
    /// ledger, and a kept quote takes less than half the memory it would
    /// as a message of many small strings (up to `quote_cache_capacity` are
    /// kept).
    pub plan: Vec<u8>,
    /// Its lines.
    pub lines: Vec<Planned>,
    /// Destination.
    pub ship_to: Address,
    /// Until when it may be reserved (Unix ms).
    pub valid_until_ms: i64,
}

/// Who is calling: the owner of what they make, and the filter on what they see.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// Owner of reservations and idempotency keys this call makes.
    pub owner: Option<String>,
    /// `Some(id)`: only reservations of `id` are visible; `None`: all.
    pub sees: Option<String>,
}

impl Who {
    /// From the authenticated caller, if any (none when auth is off).
    pub fn of(caller: Option<&Caller>) -> Who {
        match caller {
            None => Who::default(),
            // Always the caller's id as owner, so that a cart never reaches
            // what an order service made; seeing others' is a matter of role.
            Some(c) => Who {
                owner: Some(c.id.to_string()),
                sees: (!c.sees_all_reservations()).then(|| c.id.to_string()),
            },
        }
    }
}

/// Everything the reservation RPCs share.
pub struct Reservations {
    world: Arc<World>,
    config: Arc<Config>,
    quotes: moka::sync::Cache<String, Arc<KeptQuote>>,
}

impl std::fmt::Debug for Reservations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservations")
            .field("quotes", &self.quotes.entry_count())
            .finish()
    }
}

/// The digest of a request, without its idempotency key: what "the same
/// request" means for a retry.
pub fn fingerprint(kind: &str, message_without_key: &impl Message) -> RequestFingerprint {
    RequestFingerprint::of(&[kind.as_bytes(), &message_without_key.encode_to_vec()])
}

/// A validated idempotency key.
pub fn key(field: &str, value: &str) -> Result<IdempotencyKey, Status> {
    IdempotencyKey::parse(value.trim()).map_err(|e| invalid(field, e))
}

/// A validated reservation id.
pub fn reservation_id(value: &str) -> Result<ReservationId, Status> {
    let id = convert::text("reservation_id", value, limits::ID_BYTES_MAX)?;
    if id.is_empty() {
        return Err(invalid("reservation_id", "is required"));
    }
    Ok(ReservationId::new(id))
}

/// A validated order reference.
pub fn order_ref(value: &str) -> Result<String, Status> {
    let r = convert::text("order_ref", value, ORDER_REF_BYTES_MAX)?;
    if r.is_empty() {
        return Err(invalid("order_ref", "is required"));
    }
    Ok(r.to_owned())
}

/// A validated release reason (may be empty).
pub fn release_reason(value: &str) -> Result<String, Status> {
    Ok(convert::text("reason", value, RELEASE_REASON_BYTES_MAX)?.to_owned())
}

impl Reservations {
    /// Shared state for the reservation RPCs.
    pub fn new(world: Arc<World>, config: Arc<Config>) -> Self {
        let quotes = moka::sync::Cache::builder()
            .max_capacity(config.ledger.quote_cache_capacity)
            .time_to_live(Duration::from_secs(config.quote.valid_secs.max(1)))
            .build();
        Self {
            world,
            config,
            quotes,
        }
    }

    /// The lines of `plan`, as holding them needs.
    pub fn planned(&self, quote: &Quote, plan: &PlanOutcome, lines: &[Demand]) -> Vec<Planned> {
        let mut out = Vec::new();
        for s in &plan.shipments {
            let supplier_id = self
                .world
                .suppliers
                .get(s.supplier)
                .map(|x| x.id.clone())
                .unwrap_or_default();
            for a in &s.allocations {
                out.push(Planned {
                    key: StockKey {
                        supplier: s.supplier,
                        product: a.product,
                    },
                    supplier_id: supplier_id.clone(),
                    sku: lines.get(a.line).map(|d| d.sku.clone()).unwrap_or_default(),
                    supplier_sku: quote
                        .supplier_skus
                        .get(&(s.supplier, a.product))
                        .cloned()
                        .unwrap_or_default(),
                    qty: a.qty,
                    cost: a.cost,
                });
            }
        }
        out
    }

    /// Keeps a quote's main plan so that Reserve can hold exactly it.
    pub fn keep_quote(
        &self,
        caller: Option<&Caller>,
        quote: &Quote,
        lines: &[Demand],
        ship_to: &Address,
        plan: &pb::Plan,
    ) {
        let kept = KeptQuote {
            owner: caller.map(|c| Arc::clone(&c.id)),
            plan: prost::Message::encode_to_vec(plan),
            lines: self.planned(quote, &quote.plan, lines),
            ship_to: ship_to.clone(),
            valid_until_ms: quote.valid_until_ms,
        };
        self.quotes.insert(quote.quote_id.clone(), Arc::new(kept));
    }

    /// A kept quote the caller may reserve, or FAILED_PRECONDITION saying why not.
    pub fn kept_quote(
        &self,
        caller: Option<&Caller>,
        quote_id: &str,
    ) -> Result<Arc<KeptQuote>, Status> {
        let gone = || {
            Status::failed_precondition(format!(
                "quote {} is unknown or no longer kept (quotes are kept for {} s); quote again or reserve the basket",
                limits::truncate_for_message(quote_id),
                self.config.quote.valid_secs
            ))
        };
        let kept = self.quotes.get(quote_id).ok_or_else(gone)?;
        // Another caller's quote looks exactly like an unknown one.
        if let (Some(owner), Some(c)) = (&kept.owner, caller) {
            if **owner != *c.id {
                return Err(gone());
            }
        }
        let now = self.world.clock.now_ms();
        if now > kept.valid_until_ms {
            return Err(Status::failed_precondition(format!(
                "quote {quote_id} expired {} s ago; quote again or reserve the basket",
                (now - kept.valid_until_ms) / 1000
            )));
        }
        Ok(kept)
    }

    /// The hold time asked for, in ms: 0 is the default, more than the
    /// maximum is refused.
    pub fn hold_ms(&self, hold_seconds: u32) -> Result<i64, Status> {
        let l = &self.config.ledger;
        let secs = match hold_seconds {
            0 => l.hold_secs_default,
            s if s > l.hold_secs_max => {
                return Err(invalid(
                    "hold_seconds",
                    format!("{s} is more than the {} allowed", l.hold_secs_max),
                ))
            }
            s => s,
        };
        Ok(i64::from(secs) * 1000)
    }

    /// Lines to hold for `planned`, with each supplier's quantity as the
    /// index holds it now, seen through `fresh` (the real-time answers the
    /// plan was made with) when given. With `exact` (a quote), every line
    /// must still be offered at its planned cost; the error lists what
    /// changed.
    pub fn lines_to_hold(
        &self,
        planned: &[Planned],
        exact: bool,
        fresh: Option<&Overlay>,
    ) -> Result<Vec<ReserveLine>, Vec<String>> {
        let view = self.world.index.view();
        let index_only = Overlay::default();
        let mut changed = Vec::new();
        let mut out = Vec::with_capacity(planned.len());
        for p in planned {
            let Some(offer) = view.offer(p.key.supplier, p.key.product) else {
                changed.push(format!(
                    "{} is no longer offered by {}",
                    p.sku, p.supplier_id
                ));
                continue;
            };
            if exact && offer.cost != p.cost {
                changed.push(format!(
                    "unit cost of {} from {} changed from {} to {}",
                    p.sku,
                    p.supplier_id,
                    cost_to_decimal(p.cost),
                    cost_to_decimal(offer.cost)
                ));
                continue;
            }
            // The supplier's quantity as planned: a real-time answer from
            // this request beats the index.
            let seen = fresh.unwrap_or(&index_only).see(&offer);
            out.push(ReserveLine {
                line: HeldLine {
                    key: p.key,
                    supplier_id: p.supplier_id.clone(),
                    sku: p.sku.clone(),
                    supplier_sku: p.supplier_sku.clone(),
                    qty: p.qty,
                    unit_cost: cost_to_decimal(p.cost),
                },
                supply: seen.available,
                supply_as_of_ms: i64::from(seen.as_of_s) * 1000,
            });
        }
        if changed.is_empty() {
            Ok(out)
        } else {
            Err(changed)
        }
    }

    /// A reservation as the API shows it.
    pub fn to_pb(&self, r: &Reservation) -> pb::Reservation {
        let plan = match pb::Plan::decode(r.plan.as_slice()) {
            Ok(p) => Some(p),
            Err(e) => {
                // Written by this service; unreadable only if damaged.
                tracing::error!(reservation = %r.id, error = %e, "stored plan unreadable");
                None
            }
        };
        let purchase_orders = r
            .orders
            .iter()
            .map(|o| self.purchase_order(o, plan.as_ref()))
            .collect();
        pb::Reservation {
            reservation_id: r.id.to_string(),
            state: state(r.state) as i32,
            plan,
            expires_at: Some(timestamp_ms(r.expires_at_ms)),
            order_ref: r.order_ref.clone().unwrap_or_default(),
            purchase_orders,
            created_at: Some(timestamp_ms(r.created_at_ms)),
            release_reason: r.release_reason.clone().unwrap_or_default(),
        }
    }

    /// Commit's and Allocate's answer.
    pub fn commit_response(&self, r: &Reservation) -> pb::CommitResponse {
        let reservation = self.to_pb(r);
        pb::CommitResponse {
            purchase_orders: reservation.purchase_orders.clone(),
            reservation: Some(reservation),
        }
    }

    fn purchase_order(&self, o: &PurchaseOrder, plan: Option<&pb::Plan>) -> pb::PurchaseOrder {
        let currency = &self.world.currency;
        // Source and data time of each line come from the plan it was held from.
        let planned = |sku: &str| {
            plan.into_iter()
                .flat_map(|p| &p.shipments)
                .filter(|s| s.supplier_id == o.supplier_id)
                .flat_map(|s| &s.lines)
                .find(|l| l.sku == sku)
        };
        let lines = o
            .lines
            .iter()
            .map(|l| {
                let from = planned(&l.sku);
                pb::PlanLine {
                    sku: l.sku.clone(),
                    supplier_sku: l.supplier_sku.clone(),
                    quantity: l.qty,
                    unit_cost: Some(money(l.unit_cost, currency)),
                    source: from.map_or(pb::StockSource::Unspecified as i32, |p| p.source),
                    as_of: from.and_then(|p| p.as_of),
                }
            })
            .collect();
        let (status, attempts, last_error, acknowledged_at) = match &o.delivery {
            Delivery::Pending {
                attempts,
                last_error,
                ..
            } => (
                pb::purchase_order::Status::Pending,
                *attempts,
                last_error.clone().unwrap_or_default(),
                None,
            ),
            Delivery::Acknowledged { attempts, at_ms } => (
                pb::purchase_order::Status::Acknowledged,
                *attempts,
                String::new(),
                Some(timestamp_ms(*at_ms)),
            ),
            Delivery::Cancelled => (
                pb::purchase_order::Status::Cancelled,
                0,
                String::new(),
                None,
            ),
        };
        pb::PurchaseOrder {
            po_number: o.po_number.clone(),
            supplier_id: o.supplier_id.clone(),
            lines,
            goods_total: Some(money(round_cents(o.goods_total()), currency)),
            status: status as i32,
            attempts,
            last_error,
            acknowledged_at,
        }
    }
}

fn state(s: State) -> pb::reservation::State {
    match s {
        State::Held => pb::reservation::State::Held,
        State::Committed => pb::reservation::State::Committed,
        State::Released => pb::reservation::State::Released,
        State::Expired => pb::reservation::State::Expired,
    }
}
