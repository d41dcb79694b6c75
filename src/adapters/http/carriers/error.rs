//! Errors building the carrier clients. Calls never error; they fall back.

/// Why [`super::CarrierClients::new`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// A carrier section is incomplete or inconsistent.
    #[error("carrier {carrier}: {message}")]
    Config {
        /// `FedEx` or `UPS`.
        carrier: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built (TLS initialisation).
    #[error("building the HTTP client: {0}")]
    Client(String),
}
