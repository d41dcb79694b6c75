//! Which RPC a request path names, and what each RPC may do: the role it
//! needs, whether it counts against the concurrency limit, its default
//! timeout. Every layer in front of the services asks here, so one table
//! decides how a path is treated.

use crate::auth::Role;

/// One RPC the server knows, or `Other` for any other path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// `Fulfillment/CheckStock`
    CheckStock,
    /// `Fulfillment/Quote`
    Quote,
    /// `Fulfillment/Reserve`
    Reserve,
    /// `Fulfillment/Commit`
    Commit,
    /// `Fulfillment/Release`
    Release,
    /// `Fulfillment/GetReservation`
    GetReservation,
    /// `Fulfillment/Allocate`
    Allocate,
    /// `Catalog/IngestFeed`
    IngestFeed,
    /// `Catalog/GetOffers`
    GetOffers,
    /// `Catalog/RateShipment`
    RateShipment,
    /// `grpc.health.v1.Health/*`: probes, always open.
    Health,
    /// `grpc.reflection.*`: the public schema, open like the proto file itself.
    Reflection,
    /// Any other path; the router answers UNIMPLEMENTED.
    Other,
}

impl Rpc {
    /// Classifies a request path (`/package.Service/Method`).
    pub fn of_path(path: &str) -> Rpc {
        if let Some(method) = path.strip_prefix("/stockroute.v1.Fulfillment/") {
            return match method {
                "CheckStock" => Rpc::CheckStock,
                "Quote" => Rpc::Quote,
                "Reserve" => Rpc::Reserve,
                "Commit" => Rpc::Commit,
                "Release" => Rpc::Release,
                "GetReservation" => Rpc::GetReservation,
                "Allocate" => Rpc::Allocate,
                _ => Rpc::Other,
            };
        }
        if let Some(method) = path.strip_prefix("/stockroute.v1.Catalog/") {
            return match method {
                "IngestFeed" => Rpc::IngestFeed,
                "GetOffers" => Rpc::GetOffers,
                "RateShipment" => Rpc::RateShipment,
                _ => Rpc::Other,
            };
        }
        if path.starts_with("/grpc.health.v1.Health/") {
            return Rpc::Health;
        }
        if path.starts_with("/grpc.reflection.v1.ServerReflection/")
            || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
        {
            return Rpc::Reflection;
        }
        Rpc::Other
    }

    /// Whether a caller needs no key at all: health (probes and load
    /// balancers carry none) and reflection (the schema is public).
    pub fn is_open(self) -> bool {
        matches!(self, Rpc::Health | Rpc::Reflection)
    }

    /// Whether a caller holding `role` may call this RPC. Ownership of a
    /// reservation is checked by the service, not here.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Rpc::CheckStock | Rpc::Quote | Rpc::Reserve | Rpc::Release | Rpc::GetReservation => {
                matches!(role, Role::Cart | Role::Orders)
            }
            Rpc::Commit | Rpc::Allocate => role == Role::Orders,
            Rpc::IngestFeed | Rpc::GetOffers | Rpc::RateShipment => role == Role::Feeds,
            Rpc::Health | Rpc::Reflection => true,
            // Unknown paths reach the router only with a valid key of any role,
            // and it answers UNIMPLEMENTED.
            Rpc::Other => true,
        }
    }

    /// Whether the call takes a slot of the concurrency limit. Probes never
    /// do: an overloaded server must still answer its health checks.
    pub fn is_limited(self) -> bool {
        !matches!(self, Rpc::Health | Rpc::Reflection)
    }

    /// Whether CPU shedding may refuse the call. Commit and Release are
    /// not shed: they are cheap, they finish what a Reserve already paid
    /// for, and refusing a Release keeps units locked; a Commit refused
    /// until its hold expires would lose the order.
    pub fn is_sheddable(self) -> bool {
        self.is_limited() && !matches!(self, Rpc::Commit | Rpc::Release)
    }

    /// Whether the call is a feed push, which streams for as long as the feed
    /// takes and so has its own timeout.
    pub fn is_feed_push(self) -> bool {
        self == Rpc::IngestFeed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_contract_is_classified() {
        assert_eq!(Rpc::of_path("/stockroute.v1.Fulfillment/Quote"), Rpc::Quote);
        assert_eq!(
            Rpc::of_path("/stockroute.v1.Catalog/IngestFeed"),
            Rpc::IngestFeed
        );
        assert_eq!(Rpc::of_path("/grpc.health.v1.Health/Check"), Rpc::Health);
        assert_eq!(
            Rpc::of_path("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            Rpc::Reflection
        );
        assert_eq!(Rpc::of_path("/stockroute.v1.Fulfillment/Nope"), Rpc::Other);
        assert_eq!(Rpc::of_path("/x"), Rpc::Other);
    }

    #[test]
    fn roles_match_the_documented_table() {
        for rpc in [Rpc::CheckStock, Rpc::Quote, Rpc::Reserve, Rpc::Release] {
            assert!(rpc.allows(Role::Cart) && rpc.allows(Role::Orders));
            assert!(!rpc.allows(Role::Feeds));
        }
        for rpc in [Rpc::Commit, Rpc::Allocate] {
            assert!(rpc.allows(Role::Orders));
            assert!(!rpc.allows(Role::Cart) && !rpc.allows(Role::Feeds));
        }
        for rpc in [Rpc::IngestFeed, Rpc::GetOffers, Rpc::RateShipment] {
            assert!(rpc.allows(Role::Feeds));
            assert!(!rpc.allows(Role::Cart) && !rpc.allows(Role::Orders));
        }
        assert!(Rpc::Health.is_open() && !Rpc::Health.is_limited());
        assert!(!Rpc::Quote.is_open() && Rpc::Quote.is_limited());
    }
}
