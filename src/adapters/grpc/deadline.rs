//! The caller's gRPC deadline (`grpc-timeout`), turned into budgets.

use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// When a call must have answered, from its metadata; `None` when the caller set no deadline.
pub fn deadline(metadata: &MetadataMap, received: Instant) -> Option<Instant> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    received.checked_add(parse_timeout(value)?)
}

/// Time left for outbound calls: up to the deadline less `reserve`, or
/// `default` when the caller set none; never more than `default`.
pub fn budget(deadline: Option<Instant>, reserve: Duration, default: Duration) -> Duration {
    match deadline {
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .saturating_sub(reserve)
            .min(default),
        None => default,
    }
}

/// Time the planner may search: `cap`, shortened to what the caller's
/// deadline leaves after `reserve`, and to half of that when live carrier
/// rates still have to be fetched after planning (they need the rest).
pub fn planning_budget(
    deadline: Option<Instant>,
    reserve: Duration,
    cap: Duration,
    live_rates_follow: bool,
) -> Duration {
    let Some(d) = deadline else {
        return cap;
    };
    let left = d
        .saturating_duration_since(Instant::now())
        .saturating_sub(reserve);
    let share = if live_rates_follow { left / 2 } else { left };
    share.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_rejects_garbage() {
        assert_eq!(parse_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_timeout("m"), None);
        assert_eq!(parse_timeout("12x"), None);
        assert_eq!(parse_timeout("123456789S"), None);
        assert_eq!(parse_timeout("-5m"), None);
    }

    #[test]
    fn budget_keeps_the_reserve_and_never_exceeds_the_default() {
        let now = Instant::now();
        let b = budget(
            Some(now + Duration::from_secs(10)),
            Duration::from_millis(20),
            Duration::from_secs(1),
        );
        assert_eq!(b, Duration::from_secs(1));
        let b = budget(Some(now), Duration::from_millis(20), Duration::from_secs(1));
        assert_eq!(b, Duration::ZERO);
        assert_eq!(
            budget(None, Duration::ZERO, Duration::from_millis(5)),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn planning_leaves_live_rates_half_of_what_the_deadline_leaves() {
        let ms = Duration::from_millis;
        assert_eq!(planning_budget(None, ms(20), ms(30), true), ms(30));
        let far = Instant::now() + Duration::from_secs(10);
        assert_eq!(planning_budget(Some(far), ms(20), ms(30), true), ms(30));
        let near = Instant::now() + ms(60);
        let b = planning_budget(Some(near), ms(20), ms(30), true);
        assert!(b <= ms(20) && b > ms(15), "{b:?}");
        let b = planning_budget(Some(near), ms(20), ms(30), false);
        assert!(b <= ms(30) && b > ms(25), "{b:?}");
        assert_eq!(
            planning_budget(Some(Instant::now()), ms(20), ms(30), false),
            ms(0)
        );
    }
}
