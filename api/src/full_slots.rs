//! Slots this instance has just seen full, so that on deadline day the hundreds of
//! citizens who ask for the last seat after it is gone are refused without waiting on the
//! slot's contested row (issue 11, `rush`).
//!
//! The database stays the only judge of who gets a seat: a slot is remembered as full
//! only after `take_seat` refused it, and only for [`FullSlots::TTL`]; a seat this instance
//! gives back (a move, an expired hold, a failed payment, capacity raised by an
//! administrator) forgets it at once. A seat freed on another instance is therefore offered
//! here at most one `TTL` late — as if the citizen had asked a moment earlier.
//! The memory is asked only after the citizen's application is read, and never for a
//! citizen whose application holds a seat of the slot: a holder is never refused, on any
//! instance (issue 17).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use domain::application::Slot;
use domain::offices::Shift;
use domain::record_ids::OfficeId;

type Key = (OfficeId, NaiveDate, Shift);

#[derive(Default)]
pub struct FullSlots {
    slots: Mutex<HashMap<Key, Instant>>,
}

/// More remembered slots than this and the expired ones are dropped.
const PRUNE_ABOVE: usize = 4_096;

impl FullSlots {
    /// How long a refusal is trusted.
    pub const TTL: Duration = Duration::from_secs(1);

    fn key(slot: &Slot) -> Key {
        (slot.office_id.clone(), slot.date, slot.shift)
    }

    /// Whether `slot` was refused for lack of seats within the last `TTL`. Asked only for
    /// citizens who do not hold one of its seats.
    pub fn refuses(&self, slot: &Slot, now: Instant) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.get(&Self::key(slot)).is_some_and(|until| *until > now)
    }

    /// The database refused `slot` as full.
    pub fn remember(&self, slot: &Slot, now: Instant) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= PRUNE_ABOVE {
            slots.retain(|_, until| *until > now);
        }
        slots.insert(Self::key(slot), now + Self::TTL);
    }

    /// A seat of `slot` was given back here.
    pub fn forget(&self, slot: &Slot) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(&Self::key(slot));
    }

    /// Seats may have been freed in many slots here (expired holds, failed payments,
    /// capacity raised by an administrator): forget every refusal.
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(office: &str) -> Slot {
        Slot { office_id: office.into(), date: NaiveDate::from_ymd_opt(2026, 12, 9).unwrap(), shift: Shift::Morning }
    }

    #[test]
    fn a_full_slot_is_refused_for_a_second() {
        let (full, t0) = (FullSlots::default(), Instant::now());
        assert!(!full.refuses(&slot("a"), t0), "nothing is refused before the database refused it");
        full.remember(&slot("a"), t0);
        assert!(full.refuses(&slot("a"), t0 + Duration::from_millis(500)));
        assert!(!full.refuses(&slot("b"), t0), "other slots are not affected");
        assert!(!full.refuses(&slot("a"), t0 + FullSlots::TTL), "after the TTL the database decides again");
    }

    #[test]
    fn a_seat_given_back_here_is_offered_at_once() {
        let (full, t0) = (FullSlots::default(), Instant::now());
        full.remember(&slot("a"), t0);
        full.forget(&slot("a"));
        assert!(!full.refuses(&slot("a"), t0));
        full.remember(&slot("b"), t0);
        full.clear();
        assert!(!full.refuses(&slot("b"), t0));
    }

    #[test]
    fn expired_entries_are_dropped_when_many_are_remembered() {
        let (full, t0) = (FullSlots::default(), Instant::now());
        for i in 0..PRUNE_ABOVE {
            full.remember(&slot(&format!("o{i}")), t0);
        }
        full.remember(&slot("late"), t0 + FullSlots::TTL * 2);
        assert_eq!(full.slots.lock().unwrap().len(), 1);
    }
}
