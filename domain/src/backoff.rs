//! The one exponential backoff: identity checks, payment checks and reversals, notification
//! retries and login locks all wait `base`, doubled once per earlier failure, up to a ceiling.

use chrono::Duration;

/// `base` doubled `doublings` times (none for zero or less), at most `max`.
pub fn exponential(base: Duration, doublings: i32, max: Duration) -> Duration {
    let factor = 1i64 << doublings.clamp(0, 40);
    let ms = base.num_milliseconds().saturating_mul(factor).min(max.num_milliseconds());
    Duration::milliseconds(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling() {
        let m = Duration::minutes;
        let waits: Vec<_> = (-1..9).map(|n| exponential(m(1), n, m(64)).num_minutes()).collect();
        assert_eq!(waits, [1, 1, 2, 4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(exponential(m(10), 2, m(360)), m(40));
        assert_eq!(exponential(m(10), 6, m(360)), m(360));
        assert_eq!(exponential(m(1), i32::MAX, m(60)), m(60));
        assert_eq!(exponential(Duration::seconds(30), 1, m(60)), m(1));
    }
}
