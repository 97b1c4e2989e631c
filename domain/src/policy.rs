//! The configurable numbers of the rules, with the seeds' defaults.

use chrono::Duration;

/// Tunable rule parameters. `Policy::default()` is what docs/domain/ describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Minimum age to register, in full Jalali years (docs/domain/identifiers.md).
    pub min_age_years: u32,
    /// How many times personal information may be edited (docs/domain/eligibility.md).
    pub personal_info_edits: u8,
    /// Days a no-show may not book again (the original guides say 3 and 4; docs/domain/booking.md).
    pub no_show_ban_days: u32,
    /// Months a citizen with a tracking code but no booking has to book (docs/domain/booking.md).
    pub booking_window_months: u32,
    /// How long a held seat waits for payment (docs/domain/application.md).
    pub hold_ttl: Duration,
    /// How many days ahead a seat may be booked (from tomorrow).
    pub booking_horizon_days: u32,
    /// Working hours after a serial change before the new serial is accepted (docs/domain/application.md).
    pub serial_change_wait_hours: i64,
    /// Days a seat offered to a citizen whose booked day was closed is kept for them
    /// (docs/domain/booking.md, "Closures").
    pub closure_offer_days: u32,
    /// Days from enrollment until the card is expected at the delivery office (docs/domain/application.md:
    /// "about 20 days"); printed on the enrollment receipt.
    pub card_ready_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_age_years: 15,
            personal_info_edits: 3,
            no_show_ban_days: 4,
            booking_window_months: 2,
            hold_ttl: Duration::minutes(15),
            booking_horizon_days: 60,
            serial_change_wait_hours: 48,
            closure_offer_days: 3,
            card_ready_days: 20,
        }
    }
}
