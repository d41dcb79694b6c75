//! `stockroute.v1.Fulfillment`: stock checks and quotes for carts; the
//! reservation RPCs answer UNIMPLEMENTED until a ledger is configured.
//!
//! Quote runs the quote pipeline ([`FulfillmentService::plan_basket`]):
//! real-time stock within its budget, then planning, then live freight within
//! what is left of the deadline. Anything that plans a basket (Reserve,
//! Allocate) goes through the same function, so it sees the same data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use super::status;
use super::{convert, deadline};
use crate::config::Config;
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
    /// A service answering from `world`.
    pub fn new(
        world: Arc<World>,
        config: Arc<Config>,
        live: Option<Arc<dyn LiveRater>>,
        realtime: Option<Arc<RealtimeStock>>,
    ) -> Self {
        Self {
            world,
            config,
            live,
            realtime,
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
        let (quote, input) = if large {
            tokio::task::spawn_blocking(move || (world.quote(&input, &fresh, valid_secs), input))
                .await
                .map_err(|e| Status::internal(format!("planner stopped: {e}")))?
        } else {
            (world.quote(&input, &fresh, valid_secs), input)
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
        Ok(PlannedQuote { quote, input, live })
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
        let (input, realtime_budget_ms) = self.quote_input(request.into_inner())?;
        let PlannedQuote { quote, input, live } = self
            .plan_basket(input, realtime_budget_ms, deadline)
            .await?;
        let flags = |i: usize| live.live.get(i).map_or(&[][..], Vec::as_slice);
        let plan = convert::plan(&self.world, &quote, &quote.plan, &input.lines, flags(0));
        let alternatives = quote
            .alternatives
            .iter()
            .enumerate()
            .map(|(i, p)| convert::plan(&self.world, &quote, p, &input.lines, flags(i + 1)))
            .collect();
        Ok(Response::new(pb::QuoteResponse {
            plan: Some(plan),
            alternatives,
        }))
    }

    async fn reserve(
        &self,
        _: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        Err(status::not_yet("Reserve"))
    }

    async fn commit(
        &self,
        _: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        Err(status::not_yet("Commit"))
    }

    async fn release(
        &self,
        _: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        Err(status::not_yet("Release"))
    }

    async fn get_reservation(
        &self,
        _: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        Err(status::not_yet("GetReservation"))
    }

    async fn allocate(
        &self,
        _: Request<pb::AllocateRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        Err(status::not_yet("Allocate"))
    }
}
