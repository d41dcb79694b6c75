//! What must hold after a run, whatever the load: the error budget, and for
//! scenarios that hold stock, the ledger's promises — every reservation the
//! server acknowledged is still known in the state the generator last saw
//! acknowledged, and no unit was sold twice (for the products sampled before
//! the run, what the server now says is available equals what it said before
//! less what the run holds and committed, and never went below zero).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use stockroute::pb;
use tonic::transport::Channel;

/// Most acknowledged reservations read back after a run.
pub const ACKS_CHECKED_MAX: usize = 5_000;

/// The state the generator was last told a reservation has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AckState {
    /// Reserve answered.
    Held,
    /// Commit or Allocate answered.
    Committed,
    /// Release answered.
    Released,
}

/// An acknowledged reservation.
#[derive(Debug, Clone)]
pub struct Ack {
    /// Last acknowledged state.
    pub state: AckState,
    /// Units per (supplier id, sku) in its plan.
    pub units: Vec<((String, String), u32)>,
}

/// A Reserve or Allocate whose outcome the generator never learned (no
/// answer before the deadline, a lost connection, an internal error): the
/// server may have held stock for it. After the run it is sent again with
/// its idempotency key, as a client would, so that the answer accounts for
/// whatever the first call did.
#[derive(Debug, Clone)]
pub enum Unsettled {
    /// A Reserve.
    Reserve(pb::ReserveRequest),
    /// An Allocate.
    Allocate(pb::AllocateRequest),
}

/// Reservations the server acknowledged during a run.
#[derive(Debug, Default)]
pub struct Acks {
    by_id: HashMap<String, Ack>,
    unsettled: Vec<Unsettled>,
}

/// Whether a failed Reserve or Allocate with this outcome may still have
/// held stock. Refusals before any work (admission's RESOURCE_EXHAUSTED,
/// auth, validation), a definite "not enough stock" and arrivals never
/// sent cannot have; anything else is unknown.
pub fn outcome_unknown(code: &str) -> bool {
    !matches!(
        code,
        "OK" | "RESOURCE_EXHAUSTED"
            | "FAILED_PRECONDITION"
            | "INVALID_ARGUMENT"
            | "NOT_FOUND"
            | "ALREADY_EXISTS"
            | "PERMISSION_DENIED"
            | "UNAUTHENTICATED"
            | "OUT_OF_RANGE"
            | "UNIMPLEMENTED"
            | crate::stats::GENERATOR_BACKLOG
    )
}

fn units_of(r: &pb::Reservation) -> Vec<((String, String), u32)> {
    let mut out = Vec::new();
    for s in r.plan.iter().flat_map(|p| &p.shipments) {
        for l in &s.lines {
            out.push(((s.supplier_id.clone(), l.sku.clone()), l.quantity));
        }
    }
    out
}

impl Acks {
    fn set(&mut self, r: &pb::Reservation, state: AckState) {
        let units = units_of(r);
        let entry = self
            .by_id
            .entry(r.reservation_id.clone())
            .or_insert_with(|| Ack {
                state,
                units: units.clone(),
            });
        entry.state = state;
        if entry.units.is_empty() {
            entry.units = units;
        }
    }

    /// Reserve answered with `r`.
    pub fn held(&mut self, r: &pb::Reservation) {
        self.set(r, AckState::Held);
    }

    /// Commit or Allocate answered with `r`.
    pub fn committed(&mut self, r: &pb::Reservation) {
        self.set(r, AckState::Committed);
    }

    /// Release answered with `r`.
    pub fn released(&mut self, r: &pb::Reservation) {
        self.set(r, AckState::Released);
    }

    /// A call whose outcome is unknown (see [`outcome_unknown`]).
    pub fn unsettled(&mut self, call: Unsettled) {
        self.unsettled.push(call);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// None acknowledged and none unsettled.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.unsettled.is_empty()
    }
}

/// Attempts at one unsettled call before it counts as unanswered.
const SETTLE_ATTEMPTS: u32 = 20;

/// Sends every unsettled call again with its idempotency key until it is
/// answered, and records what the answers acknowledge. The verdict fails
/// when a call still gets no answer: its stock cannot be accounted for.
pub async fn settle(channel: Channel, acks: &mut Acks) -> Check {
    let calls = std::mem::take(&mut acks.unsettled);
    let mut client = pb::fulfillment_client::FulfillmentClient::new(channel);
    let (mut acknowledged, mut refused, mut unanswered) = (0usize, 0usize, Vec::new());
    for call in &calls {
        let mut last = String::new();
        let mut settled = false;
        for attempt in 0..SETTLE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            let answer = match call {
                Unsettled::Reserve(r) => client.reserve(r.clone()).await.map(|a| {
                    let a = a.into_inner();
                    acks.held(&a);
                }),
                Unsettled::Allocate(r) => client.allocate(r.clone()).await.map(|a| {
                    if let Some(res) = &a.into_inner().reservation {
                        acks.committed(res);
                    }
                }),
            };
            match answer {
                Ok(()) => {
                    acknowledged += 1;
                    settled = true;
                }
                Err(s)
                    if !outcome_unknown(crate::stats::code_name(s.code()))
                        && s.code() != tonic::Code::ResourceExhausted =>
                {
                    refused += 1;
                    settled = true;
                }
                Err(s) => last = format!("{:?}: {}", s.code(), s.message()),
            }
            if settled {
                break;
            }
        }
        if !settled {
            unanswered.push(last);
        }
    }
    let detail = format!(
        "{} calls without an answer sent again with their keys: {acknowledged} acknowledged, \
         {refused} refused, {} unanswered{}",
        calls.len(),
        unanswered.len(),
        unanswered
            .first()
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default()
    );
    Check::new("unknown outcomes settled", unanswered.is_empty(), detail)
}

/// One invariant's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// The figures, or what broke.
    pub detail: String,
}

impl Check {
    /// A verdict.
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

/// Available units per (supplier id, sku) for `skus`, as GetOffers says.
pub async fn availability(
    channel: Channel,
    skus: &[String],
) -> Result<BTreeMap<(String, String), u32>, tonic::Status> {
    let mut client = pb::catalog_client::CatalogClient::new(channel);
    let mut out = BTreeMap::new();
    for sku in skus {
        let offers = client
            .get_offers(pb::GetOffersRequest { sku: sku.clone() })
            .await?
            .into_inner()
            .offers;
        for o in offers {
            out.insert((o.supplier_id, sku.clone()), o.available);
        }
    }
    Ok(out)
}

fn state_name(s: i32) -> &'static str {
    match pb::reservation::State::try_from(s) {
        Ok(pb::reservation::State::Held) => "HELD",
        Ok(pb::reservation::State::Committed) => "COMMITTED",
        Ok(pb::reservation::State::Released) => "RELEASED",
        Ok(pb::reservation::State::Expired) => "EXPIRED",
        _ => "UNSPECIFIED",
    }
}

/// Reads every acknowledged reservation back (up to [`ACKS_CHECKED_MAX`])
/// and checks the ledger: states as acknowledged, and for the sampled
/// products `before`, availability now = before - held - committed >= 0.
pub async fn check_ledger(
    channel: Channel,
    acks: &Acks,
    before: &BTreeMap<(String, String), u32>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut client = pb::fulfillment_client::FulfillmentClient::new(channel.clone());
    let mut lost = Vec::new();
    let mut wrong = Vec::new();
    // Units the server says are still taken, per (supplier, sku).
    let mut taken: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut read = 0usize;
    for (id, ack) in acks.by_id.iter().take(ACKS_CHECKED_MAX) {
        read += 1;
        let answer = client
            .get_reservation(pb::GetReservationRequest {
                reservation_id: id.clone(),
            })
            .await;
        let state = match answer {
            Ok(r) => r.into_inner().state,
            Err(s) => {
                lost.push(format!("{id}: {}", s.message()));
                continue;
            }
        };
        let name = state_name(state);
        let fits = match ack.state {
            AckState::Held => matches!(name, "HELD" | "EXPIRED" | "COMMITTED" | "RELEASED"),
            AckState::Committed => name == "COMMITTED",
            AckState::Released => name == "RELEASED",
        };
        if !fits {
            wrong.push(format!(
                "{id}: acknowledged {:?}, server says {name}",
                ack.state
            ));
        }
        if matches!(name, "HELD" | "COMMITTED") {
            for (key, qty) in &ack.units {
                *taken.entry(key.clone()).or_default() += u64::from(*qty);
            }
        }
    }
    let sample = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    checks.push(Check::new(
        "acknowledged reservations are known",
        lost.is_empty(),
        if lost.is_empty() {
            format!("{read} of {} read back", acks.len())
        } else {
            format!("{} of {read} missing: {}", lost.len(), sample(&lost))
        },
    ));
    checks.push(Check::new(
        "acknowledged states hold",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!("{read} as acknowledged")
        } else {
            format!("{} of {read} differ: {}", wrong.len(), sample(&wrong))
        },
    ));
    if before.is_empty() || read < acks.len() {
        checks.push(Check::new(
            "no oversell",
            true,
            "not checked: no products sampled, or more reservations than are read back",
        ));
        return checks;
    }
    let skus: Vec<String> = {
        let mut v: Vec<String> = before.keys().map(|(_, s)| s.clone()).collect();
        v.dedup();
        v
    };
    match availability(channel, &skus).await {
        Err(s) => checks.push(Check::new(
            "no oversell",
            false,
            format!("GetOffers failed: {}", s.message()),
        )),
        Ok(after) => {
            let mut broken = Vec::new();
            for (key, &was) in before {
                let used = taken.get(key).copied().unwrap_or(0);
                let now = after.get(key).copied().unwrap_or(0);
                if used > u64::from(was) {
                    broken.push(format!("{key:?}: {used} taken of {was}"));
                } else if u64::from(now) != u64::from(was) - used {
                    broken.push(format!(
                        "{key:?}: {was} before, {used} taken, {now} available now"
                    ));
                }
            }
            checks.push(Check::new(
                "no oversell",
                broken.is_empty(),
                if broken.is_empty() {
                    format!("{} supplier offers balance", before.len())
                } else {
                    format!(
                        "{} offers do not balance: {}",
                        broken.len(),
                        sample(&broken)
                    )
                },
            ));
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(id: &str, lines: &[(&str, &str, u32)]) -> pb::Reservation {
        pb::Reservation {
            reservation_id: id.into(),
            plan: Some(pb::Plan {
                shipments: lines
                    .iter()
                    .map(|(supplier, sku, qty)| pb::Shipment {
                        supplier_id: (*supplier).into(),
                        lines: vec![pb::PlanLine {
                            sku: (*sku).into(),
                            quantity: *qty,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn acknowledgements_keep_the_latest_state_and_the_plan() {
        let mut acks = Acks::default();
        let r = reservation("r1", &[("s1", "A", 2), ("s2", "B", 1)]);
        acks.held(&r);
        // A Commit answer may carry the reservation without its plan.
        acks.committed(&pb::Reservation {
            reservation_id: "r1".into(),
            ..Default::default()
        });
        let a = &acks.by_id["r1"];
        assert_eq!(a.state, AckState::Committed);
        assert_eq!(a.units.len(), 2);
        acks.released(&reservation("r2", &[]));
        assert_eq!(acks.len(), 2);
    }
}
