//! The carrier API clients behind the domain's `LiveRater` port.

use std::time::Duration;

use futures::future::BoxFuture;

use super::carriers::{CarrierClients, LiveAddress, LiveOutcome, LiveParcel, LiveRateRequest};
use crate::domain::address::Address;
use crate::domain::live_rates::{CarrierAnswer, LiveCharge, LiveRater, LiveShipment};

fn address(a: &Address) -> LiveAddress {
    LiveAddress {
        country_code: a.country_code.clone(),
        postal_code: a.postal_code.clone(),
        residential: a.residential,
    }
}

impl LiveRater for CarrierClients {
    fn rates<'a>(
        &'a self,
        shipment: &'a LiveShipment,
        budget: Duration,
    ) -> BoxFuture<'a, Vec<CarrierAnswer>> {
        Box::pin(async move {
            let request = LiveRateRequest {
                origin: address(&shipment.origin),
                destination: address(&shipment.destination),
                parcels: shipment
                    .parcels
                    .iter()
                    .map(|p| LiveParcel {
                        weight_g: p.weight_g,
                        length_mm: p.length_mm,
                        width_mm: p.width_mm,
                        height_mm: p.height_mm,
                    })
                    .collect(),
            };
            CarrierClients::rates(self, &request, budget)
                .await
                .into_iter()
                .map(|(carrier, outcome)| {
                    let note = match &outcome {
                        LiveOutcome::Answered(_) => "answered".to_owned(),
                        LiveOutcome::Cached(_) => "cached".to_owned(),
                        LiveOutcome::Fallback(reason) => reason.to_string(),
                    };
                    let charges = outcome.quotes().map(|quotes| {
                        quotes
                            .iter()
                            .map(|q| LiveCharge {
                                service_code: q.service_code.clone(),
                                charge: q.charge,
                                transit_days: q.transit_days,
                            })
                            .collect()
                    });
                    CarrierAnswer {
                        carrier,
                        charges,
                        note,
                    }
                })
                .collect()
        })
    }
}
