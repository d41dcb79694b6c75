//! The one place where errors become gRPC status codes.

use tonic::Status;

use crate::domain::feeds::FeedError;
use crate::domain::freight::FreightError;
use crate::domain::ledger::LedgerError;
use crate::domain::quoting::QuoteError;

/// All-or-nothing could not be met: FAILED_PRECONDITION naming each short line.
pub fn quote_error(e: QuoteError) -> Status {
    match e {
        QuoteError::Unfulfillable { .. } => Status::failed_precondition(e.to_string()),
    }
}

/// Freight could not price the request.
pub fn freight_error(e: FreightError) -> Status {
    match e {
        FreightError::UnknownCountry { .. }
        | FreightError::BadPostalCode { .. }
        | FreightError::EmptyShipment
        | FreightError::InvalidRequest { .. } => Status::invalid_argument(e.to_string()),
        FreightError::NoService { .. } => Status::failed_precondition(e.to_string()),
        FreightError::Table { .. } | FreightError::Io { .. } => Status::internal(e.to_string()),
    }
}

/// A feed that could not be read at all.
pub fn feed_error(e: FeedError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// A ledger outcome. A reservation of another caller answers exactly as an
/// unknown one, so that ids cannot be probed.
pub fn ledger_error(e: LedgerError) -> Status {
    match e {
        LedgerError::NotFound { id } | LedgerError::NotOwner { id } => {
            Status::not_found(format!("reservation {id} not found"))
        }
        LedgerError::Released { .. }
        | LedgerError::Expired { .. }
        | LedgerError::Committed { .. }
        | LedgerError::CommittedToOtherOrder { .. }
        | LedgerError::InsufficientStock(_) => Status::failed_precondition(e.to_string()),
        LedgerError::KeyReused { .. } | LedgerError::Invalid(_) => {
            Status::invalid_argument(e.to_string())
        }
        LedgerError::Unavailable(_) => Status::unavailable(e.to_string()),
    }
}
