//! The real clock and randomness, and a manual clock tests move by hand.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use domain::ports::{Clock, RandomSource};

/// A clock that stands still until told to move; tests share it with the server.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Randomness from the operating system (through rand's thread-local CSPRNG).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&self) -> u64 {
        rand::random()
    }
    fn fill_bytes(&self, buf: &mut [u8]) {
        rand::fill(buf);
    }
}
