//! Errors of the freight module: one variant per outcome a caller can act on.

use thiserror::Error;

/// Why freight could not be loaded, validated or rated.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FreightError {
    /// The country code is not in the loaded country table.
    #[error("unknown country code {country_code:?}")]
    UnknownCountry {
        /// The code as given by the caller.
        country_code: String,
    },
    /// The postal code does not match any pattern configured for its country.
    #[error("postal code {postal_code:?} is not valid for {country_code}: {reason}")]
    BadPostalCode {
        /// Country the code was checked against.
        country_code: String,
        /// The code as given by the caller.
        postal_code: String,
        /// What was expected.
        reason: String,
    },
    /// No loaded carrier service can carry the shipment.
    #[error("no carrier service can ship this: {reason}")]
    NoService {
        /// Why the last candidates were ruled out.
        reason: String,
    },
    /// The request contains no units to ship.
    #[error("the shipment has no items")]
    EmptyShipment,
    /// The request is malformed (zero-sized item, too many units, negative fee, overflow).
    #[error("invalid rate request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// A data file is missing or malformed.
    #[error("{file}: {line_or_key}: {message}")]
    Table {
        /// Relative path of the file, as in the table layout.
        file: String,
        /// `line N` for syntax errors, or the key path of the bad value.
        line_or_key: String,
        /// What is wrong.
        message: String,
    },
    /// A data file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// Path that failed.
        path: String,
        /// The OS error text.
        message: String,
    },
}
