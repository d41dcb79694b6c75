//! Every bound the service enforces, named in one place (units last).
//!
//! Config keys can lower or raise the ones a deployment tunes; the rest are
//! fixed because something downstream (memory layout, wire format) depends on them.

/// Largest gRPC message decoded, in bytes (config `server.max_message_bytes`).
pub const GRPC_MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest block of request headers (API key and metadata included), in bytes
/// (config `server.max_header_list_bytes`).
pub const HEADER_LIST_BYTES_MAX: u32 = 16 * 1024;
/// Most lines in one basket (config `quote.basket_lines_max`).
pub const BASKET_LINES_MAX: usize = 200;
/// Most units of one basket line (config `quote.line_quantity_max`).
pub const LINE_QUANTITY_MAX: u32 = 100_000;
/// Longest SKU or supplier SKU accepted, in bytes.
pub const SKU_BYTES_MAX: usize = 64;
/// Longest postal code accepted, in bytes.
pub const POSTAL_CODE_BYTES_MAX: usize = 16;
/// Largest feed accepted, in bytes (config `feeds.feed_bytes_max`).
pub const FEED_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Chunks of an `IngestFeed` stream buffered ahead of the parser; bounds its memory.
pub const FEED_CHUNKS_BUFFERED: usize = 4;
/// Most suppliers in a registry: supplier ids are 16-bit inside the index.
pub const SUPPLIERS_MAX: usize = u16::MAX as usize;
/// Largest unit cost the index holds, in ten-thousandths of the currency unit.
pub const UNIT_COST_UNITS_MAX: u64 = u32::MAX as u64;
/// Decimal places of a unit cost kept exactly inside the index.
pub const UNIT_COST_SCALE: u32 = 4;
/// Time the planner may search for one quote's plans, in milliseconds (config
/// `quote.planning_budget_ms`); the caller's deadline can only shorten it.
pub const PLANNING_BUDGET_MS: u64 = 20;
/// Most excluded suppliers named in one request.
pub const EXCLUDED_SUPPLIERS_MAX: usize = 256;
/// Longest free-text field of a request (order references, release reasons), in bytes.
pub const TEXT_BYTES_MAX: usize = 256;
/// Longest identifier of a request (supplier ids, reservation ids, idempotency keys), in bytes.
pub const ID_BYTES_MAX: usize = 128;
/// Longest API key accepted in an `authorization` header, in bytes.
pub const API_KEY_BYTES_MAX: usize = 256;
/// Longest caller id (`[[auth.keys]] id`), in bytes.
pub const CALLER_ID_BYTES_MAX: usize = 64;
/// Clients whose rate-limit buckets are kept; past this, idle buckets are dropped.
pub const RATE_CLIENTS_TRACKED_MAX: usize = 65_536;
/// Bytes of a client's value echoed in an error message; the rest is cut.
pub const ECHO_BYTES_MAX: usize = 64;

/// Why a text field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Longer than its bound.
    #[error("is {len} bytes, longer than {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Holds a control character (newlines, NUL, escapes): such text breaks
    /// logs, CSV exports and terminals downstream, and no SKU or id needs one.
    #[error("holds a control character (U+{0:04X})")]
    Control(u32),
}

/// Checks a client-supplied text field: at most `max_bytes`, no control characters.
/// The length is checked first, so a huge value costs nothing more.
pub fn check_text(value: &str, max_bytes: usize) -> Result<(), TextError> {
    if value.len() > max_bytes {
        return Err(TextError::TooLong {
            len: value.len(),
            max: max_bytes,
        });
    }
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(TextError::Control(c as u32)),
        None => Ok(()),
    }
}

/// A client's value made safe to echo in an error or a log: at most
/// `ECHO_BYTES_MAX` bytes (cut at a character boundary), control characters
/// escaped.
pub fn truncate_for_message(value: &str) -> String {
    let mut end = value.len().min(ECHO_BYTES_MAX);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 1);
    for c in value[..end].chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if end < value.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_checks_length_then_control_characters() {
        assert_eq!(check_text("SR-000001", 64), Ok(()));
        assert_eq!(check_text("café", 64), Ok(()));
        assert_eq!(
            check_text(&"x".repeat(65), 64),
            Err(TextError::TooLong { len: 65, max: 64 })
        );
        assert_eq!(check_text("a\0b", 64), Err(TextError::Control(0)));
        assert_eq!(check_text("a\u{1b}[2J", 64), Err(TextError::Control(0x1b)));
        assert_eq!(check_text("a\u{85}", 64), Err(TextError::Control(0x85)));
    }

    #[test]
    fn echoes_are_short_and_escaped() {
        assert_eq!(truncate_for_message("ab\ncd"), "ab\\ncd");
        let long = "é".repeat(100);
        let echo = truncate_for_message(&long);
        assert!(echo.ends_with('…'));
        assert_eq!(
            echo.chars().filter(|&c| c == 'é').count(),
            ECHO_BYTES_MAX / 2
        );
    }
}
