//! `stockroute.v1.Fulfillment`: stock checks and quotes for carts,
//! reservations and allocations for carts and order services.
//!
//! Quote runs the quote pipeline ([`FulfillmentService::plan_basket`]):
//! real-time stock within its budget, then planning, then live freight within
//! what is left of the deadline. Anything that plans a basket (Reserve,
//! Allocate) goes through the same function, so it sees the same data; what
//! they hold is then checked and held atomically by the ledger
//! ([`crate::domain::ledger`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use super::reservations::{self, Reservations, Who};
use super::status;
use super::{convert, deadline};
use crate::auth::Caller;
use crate::config::Config;
use crate::domain::ledger::{
    AllocateRequest, CommitRequest, IdempotencyKey, Ledger, LedgerError, ReleaseRequest,
    RequestFingerprint, Reservation, ReserveLine, ReserveRequest,
};
use crate::domain::live_rates::{price_quote, LivePricing, LiveRater};
use crate::domain::quoting::{Demand, Quote, QuoteInput};
use crate::domain::realtime::{Overlay, RealtimeStock};
use crate::domain::suppliers::SupplierId;
use crate::domain::world::World;
use crate::pb;

/// Baskets with more lines than this are planned on the blocking pool, so a
/// long search never stalls other requests on the async threads.
const INLINE_PLAN_LINES_MAX: usize = 16;

/// The Fulfillment service.
#[derive(Clone)]
pub struct FulfillmentService {
    world: Arc<World>,
    config: Arc<Config>,
    /// Carrier APIs for live freight, when configured.
    live: Option<Arc<dyn LiveRater>>,
    /// Real-time supplier stock, when any supplier answers in real time.
    realtime: Option<Arc<RealtimeStock>>,
    /// Where reservations are held.
    ledger: Arc<dyn Ledger>,
    /// Recent quotes and the reservation conversions.
    reservations: Arc<Reservations>,
}

/// What the quote pipeline produced.
#[derive(Debug)]
pub struct PlannedQuote {
    /// The plans, with freshness and sources.
    pub quote: Quote,
    /// The request as validated.
    pub input: QuoteInput,
    /// Which shipments were priced live.
    pub live: LivePricing,
    /// The real-time answers the plans were made with.
    pub fresh: Overlay,
}

impl PlannedQuote {
    /// The main plan as the API shows it.
    fn plan_pb(&self, world: &World) -> pb::Plan {
        let flags = self.live.live.first().map_or(&[][..], Vec::as_slice);
        convert::plan(
            world,
            &self.quote,
            &self.quote.plan,
            &self.input.lines,
            flags,
        )
    }
}

impl std::fmt::Debug for FulfillmentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FulfillmentService")
            .field("live", &self.live.is_some())
            .field("realtime", &self.realtime.is_some())
            .finish()
    }
}

impl FulfillmentService {
    /// A service answering from `world`, holding stock in `ledger`.
    pub fn new(
        world: Arc<World>,
        config: Arc<Config>,
        live: Option<Arc<dyn LiveRater>>,
        realtime: Option<Arc<RealtimeStock>>,
        ledger: Arc<dyn Ledger>,
    ) -> Self {
        let reservations = Arc::new(Reservations::new(Arc::clone(&world), Arc::clone(&config)));
        Self {
            world,
            config,
            live,
            realtime,
            ledger,
            reservations,
        }
    }

    /// Validates a quote request; also returns its `realtime_budget_ms`.
    pub fn quote_input(&self, req: pb::QuoteRequest) -> Result<(QuoteInput, u32), Status> {
        let pb::QuoteRequest {
            lines,
            ship_to,
            options,
        } = req;
        // Cheap checks first; `demands` looks SKUs up in the index.
        let ship_to = convert::address(&self.world, ship_to, "ship_to")?;
        let (options, excluded, realtime_budget_ms) = convert::options(&self.world, options)?;
        let lines = convert::demands(&self.world, lines, &self.config.quote)?;
        Ok((
            QuoteInput {
                lines,
                ship_to,
                options,
                excluded,
            },
            realtime_budget_ms,
        ))
    }

    /// Time for real-time answers: the request's `realtime_budget_ms` (0: the
    /// configured default), never past the caller's deadline less the
    /// planning reserve.
    fn realtime_budget(&self, deadline: Option<Instant>, requested_ms: u32) -> Duration {
        let rt = &self.config.realtime;
        let wanted_ms = match requested_ms {
            0 => rt.budget_ms,
            ms => u64::from(ms),
        };
        deadline::budget(
            deadline,
            Duration::from_millis(rt.planning_reserve_ms),
            Duration::from_millis(wanted_ms),
        )
    }

    /// What real-time suppliers say about the basket, within the budget.
    async fn fresh_stock(
        &self,
        lines: &[Demand],
        excluded: &[SupplierId],
        deadline: Option<Instant>,
        requested_ms: u32,
    ) -> Overlay {
        match &self.realtime {
            Some(rt) if self.config.realtime.enabled => {
                let budget = self.realtime_budget(deadline, requested_ms);
                rt.gather(&self.world, lines, excluded, budget).await
            }
            _ => Overlay::default(),
        }
    }

    /// The quote pipeline: real-time stock (bounded by `realtime_budget_ms`
    /// and the deadline), then the plans from the index seen through it,
    /// then live freight within what is left of the deadline. Quote answers
    /// with it; Reserve and Allocate plan through it too.
    pub async fn plan_basket(
        &self,
        input: QuoteInput,
        realtime_budget_ms: u32,
        deadline: Option<Instant>,
    ) -> Result<PlannedQuote, Status> {
        let fresh = self
            .fresh_stock(&input.lines, &input.excluded, deadline, realtime_budget_ms)
            .await;
        let large = input.lines.len() > INLINE_PLAN_LINES_MAX;
        let world = Arc::clone(&self.world);
        let valid_secs = self.config.quote.valid_secs;
        let planning = deadline::planning_budget(
            deadline,
            Duration::from_millis(self.config.quote.deadline_reserve_ms),
            Duration::from_millis(self.config.quote.planning_budget_ms),
            self.live.is_some(),
        );
        let planned_by = Instant::now() + planning;
        let (quote, input, fresh) = if large {
            tokio::task::spawn_blocking(move || {
                (
                    world.quote_by(&input, &fresh, valid_secs, planned_by),
                    input,
                    fresh,
                )
            })
            .await
            .map_err(|e| Status::internal(format!("planner stopped: {e}")))?
        } else {
            (
                world.quote_by(&input, &fresh, valid_secs, planned_by),
                input,
                fresh,
            )
        };
        let mut quote = quote.map_err(status::quote_error)?;
        let live = match &self.live {
            Some(rater) => {
                let budget = deadline::budget(
                    deadline,
                    Duration::from_millis(self.config.quote.deadline_reserve_ms),
                    Duration::from_millis(self.config.quote.live_budget_ms),
                );
                price_quote(
                    &self.world,
                    rater.as_ref(),
                    &mut quote,
                    &input.ship_to,
                    budget,
                )
                .await
            }
            None => LivePricing::default(),
        };
        Ok(PlannedQuote {
            quote,
            input,
            live,
            fresh,
        })
    }
    /// What an earlier call with this idempotency key made, if any: a retry
    /// answers it before any planning, so it answers the same even when the
    /// basket could no longer be planned.
    async fn replay(
        &self,
        who: &Who,
        key: &IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Option<Reservation>, Status> {
        self.ledger
            .find(who.owner.as_deref(), key, fingerprint)
            .await
            .map_err(status::ledger_error)
    }

    /// Settles a Reserve or Allocate that failed: when another call with the
    /// same key ran alongside, it may have taken the very stock this call
    /// planned from, after this call's first look found nothing. The key's
    /// reservation, if there is one now, is this call's answer too.
    async fn or_replay(
        &self,
        outcome: Result<Reservation, Status>,
        who: &Who,
        key: &IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Reservation, Status> {
        match outcome {
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                match self.replay(who, key, fingerprint).await {
                    Ok(Some(r)) => Ok(r),
                    _ => Err(status),
                }
            }
            outcome => outcome,
        }
    }

    /// Plans `input` and holds the plan (and commits it, for an allocate),
    /// planning again when other callers took the stock in between, up to
    /// `ledger.reserve_attempts_max` times.
    async fn hold_basket(
        &self,
        input: QuoteInput,
        realtime_budget_ms: u32,
        deadline: Option<Instant>,
        request: impl Fn(&PlannedQuote, Vec<ReserveLine>) -> ReserveRequest,
        commit_to: Option<String>,
    ) -> Result<Reservation, Status> {
        let attempts = self.config.ledger.reserve_attempts_max.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let planned = self
                .plan_basket(input.clone(), realtime_budget_ms, deadline)
                .await?;
            let held = self.reservations.planned(
                &planned.quote,
                &planned.quote.plan,
                &planned.input.lines,
            );
            if held.is_empty() {
                return Err(Status::failed_precondition(
                    "nothing in the basket can be held: every line is short",
                ));
            }
            // The plan was made from this very index; a line that vanished
            // since is stock taken away, as good as a race: plan again.
            let lines = match self
                .reservations
                .lines_to_hold(&held, false, Some(&planned.fresh))
            {
                Ok(lines) => lines,
                Err(changed) if attempt < attempts => {
                    tracing::debug!(
                        ?changed,
                        attempt,
                        "offers changed under the plan; planning again"
                    );
                    continue;
                }
                Err(changed) => {
                    return Err(Status::failed_precondition(format!(
                        "the basket's offers keep changing: {}",
                        changed.join("; ")
                    )))
                }
            };
            let reserve = request(&planned, lines);
            let outcome = match &commit_to {
                None => self.ledger.reserve(reserve).await,
                Some(order_ref) => {
                    self.ledger
                        .allocate(AllocateRequest {
                            reserve,
                            order_ref: order_ref.clone(),
                        })
                        .await
                }
            };
            match outcome {
                Err(LedgerError::InsufficientStock(_)) if attempt < attempts => {
                    metrics::counter!("stockroute_reserve_replans_total").increment(1);
                }
                other => return other.map_err(status::ledger_error),
            }
        }
    }
}

#[tonic::async_trait]
impl pb::fulfillment_server::Fulfillment for FulfillmentService {
    async fn check_stock(
        &self,
        request: Request<pb::CheckStockRequest>,
    ) -> Result<Response<pb::CheckStockResponse>, Status> {
        let deadline = deadline::deadline(request.metadata(), Instant::now());
        let pb::CheckStockRequest {
            lines,
            ship_to,
            realtime_budget_ms,
        } = request.into_inner();
        if ship_to.is_some() {
            convert::address(&self.world, ship_to, "ship_to")?;
        }
        let lines = convert::demands(&self.world, lines, &self.config.quote)?;
        let fresh = self
            .fresh_stock(&lines, &[], deadline, realtime_budget_ms)
            .await;
        let stock = self.world.check_stock(&lines, &fresh);
        let lines = stock
            .iter()
            .map(|s| pb::StockLine {
                sku: s.demand.sku.clone(),
                requested: s.demand.qty,
                available: s.available,
                offers: s
                    .offers
                    .iter()
                    .map(|o| convert::offer(&self.world, o))
                    .collect(),
                unknown_sku: s.demand.product.is_none(),
            })
            .collect();
        Ok(Response::new(pb::CheckStockResponse {
            lines,
            freshness: Some(convert::freshness(fresh.freshness())),
        }))
    }

    async fn quote(
        &self,
        request: Request<pb::QuoteRequest>,
    ) -> Result<Response<pb::QuoteResponse>, Status> {
        let deadline = deadline::deadline(request.metadata(), Instant::now());
        let caller = request.extensions().get::<Caller>().cloned();
        let (input, realtime_budget_ms) = self.quote_input(request.into_inner())?;
        let planned = self
            .plan_basket(input, realtime_budget_ms, deadline)
            .await?;
        let PlannedQuote {
            quote, input, live, ..
        } = &planned;
        let flags = |i: usize| live.live.get(i).map_or(&[][..], Vec::as_slice);
        let plan = planned.plan_pb(&self.world);
        self.reservations
            .keep_quote(caller.as_ref(), quote, &input.lines, &input.ship_to, &plan);
        let alternatives = quote
            .alternatives
            .iter()
            .enumerate()
            .map(|(i, p)| convert::plan(&self.world, quote, p, &input.lines, flags(i + 1)))
            .collect();
        Ok(Response::new(pb::QuoteResponse {
            plan: Some(plan),
            alternatives,
        }))
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let deadline = deadline::deadline(request.metadata(), Instant::now());
        let who = Who::of(request.extensions().get::<Caller>());
        let caller = request.extensions().get::<Caller>().cloned();
        let pb::ReserveRequest {
            idempotency_key,
            source,
            hold_seconds,
        } = request.into_inner();
        let key = reservations::key("idempotency_key", &idempotency_key)?;
        let hold_ms = self.reservations.hold_ms(hold_seconds)?;
        let fingerprint = reservations::fingerprint(
            "reserve",
            &pb::ReserveRequest {
                idempotency_key: String::new(),
                source: source.clone(),
                hold_seconds,
            },
        );
        if let Some(r) = self.replay(&who, &key, fingerprint).await? {
            return Ok(Response::new(self.reservations.to_pb(&r)));
        }
        let outcome = match source {
            None => return Err(convert::invalid("source", "set quote_id or basket")),
            Some(pb::reserve_request::Source::QuoteId(quote_id)) => {
                let quote_id = convert::text("quote_id", &quote_id, crate::limits::ID_BYTES_MAX)?;
                let kept = self.reservations.kept_quote(caller.as_ref(), quote_id)?;
                let changed = |what: String| {
                    Status::failed_precondition(format!(
                        "quote {quote_id} can no longer be held as planned: {what}; quote again"
                    ))
                };
                let lines = self
                    .reservations
                    .lines_to_hold(&kept.lines, true, None)
                    .map_err(|c| changed(c.join("; ")))?;
                let request = ReserveRequest {
                    key: key.clone(),
                    fingerprint,
                    lines,
                    hold_ms,
                    plan: kept.plan.clone(),
                    ship_to: kept.ship_to.clone(),
                    owner: who.owner.clone(),
                };
                self.ledger.reserve(request).await.map_err(|e| match e {
                    LedgerError::InsufficientStock(shorts) => changed(
                        shorts
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                    e => status::ledger_error(e),
                })
            }
            Some(pb::reserve_request::Source::Basket(basket)) => {
                let (input, realtime_budget_ms) = self.quote_input(basket)?;
                self.hold_basket(
                    input,
                    realtime_budget_ms,
                    deadline,
                    |planned, lines| ReserveRequest {
                        key: key.clone(),
                        fingerprint,
                        lines,
                        hold_ms,
                        plan: prost::Message::encode_to_vec(&planned.plan_pb(&self.world)),
                        ship_to: planned.input.ship_to.clone(),
                        owner: who.owner.clone(),
                    },
                    None,
                )
                .await
            }
        };
        let held = self.or_replay(outcome, &who, &key, fingerprint).await?;
        Ok(Response::new(self.reservations.to_pb(&held)))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let who = Who::of(request.extensions().get::<Caller>());
        let pb::CommitRequest {
            reservation_id,
            order_ref,
        } = request.into_inner();
        let request = CommitRequest {
            id: reservations::reservation_id(&reservation_id)?,
            order_ref: reservations::order_ref(&order_ref)?,
            owner: who.sees,
        };
        let r = self
            .ledger
            .commit(request)
            .await
            .map_err(status::ledger_error)?;
        Ok(Response::new(self.reservations.commit_response(&r)))
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let who = Who::of(request.extensions().get::<Caller>());
        let pb::ReleaseRequest {
            reservation_id,
            reason,
            cancel_allocation,
        } = request.into_inner();
        let request = ReleaseRequest {
            id: reservations::reservation_id(&reservation_id)?,
            reason: reservations::release_reason(&reason)?,
            cancel_allocation,
            owner: who.sees,
        };
        let r = self
            .ledger
            .release(request)
            .await
            .map_err(status::ledger_error)?;
        Ok(Response::new(self.reservations.to_pb(&r)))
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let who = Who::of(request.extensions().get::<Caller>());
        let pb::GetReservationRequest { reservation_id } = request.into_inner();
        let id = reservations::reservation_id(&reservation_id)?;
        let r = self
            .ledger
            .get(&id, who.sees.as_deref())
            .await
            .map_err(status::ledger_error)?;
        Ok(Response::new(self.reservations.to_pb(&r)))
    }

    async fn allocate(
        &self,
        request: Request<pb::AllocateRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let deadline = deadline::deadline(request.metadata(), Instant::now());
        let who = Who::of(request.extensions().get::<Caller>());
        let pb::AllocateRequest {
            idempotency_key,
            order_ref,
            basket,
        } = request.into_inner();
        let key = reservations::key("idempotency_key", &idempotency_key)?;
        let order_ref = reservations::order_ref(&order_ref)?;
        let fingerprint = reservations::fingerprint(
            "allocate",
            &pb::AllocateRequest {
                idempotency_key: String::new(),
                order_ref: order_ref.clone(),
                basket: basket.clone(),
            },
        );
        if let Some(r) = self.replay(&who, &key, fingerprint).await? {
            return Ok(Response::new(self.reservations.commit_response(&r)));
        }
        let Some(basket) = basket else {
            return Err(convert::invalid("basket", "is required"));
        };
        let (input, realtime_budget_ms) = self.quote_input(basket)?;
        let outcome = self
            .hold_basket(
                input,
                realtime_budget_ms,
                deadline,
                |planned, lines| ReserveRequest {
                    key: key.clone(),
                    fingerprint,
                    lines,
                    hold_ms: 0,
                    plan: prost::Message::encode_to_vec(&planned.plan_pb(&self.world)),
                    ship_to: planned.input.ship_to.clone(),
                    owner: who.owner.clone(),
                },
                Some(order_ref),
            )
            .await;
        let r = self.or_replay(outcome, &who, &key, fingerprint).await?;
        Ok(Response::new(self.reservations.commit_response(&r)))
    }
}
