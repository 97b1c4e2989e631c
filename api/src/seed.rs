//! Demo and benchmark data are the `seed` crate's; these wrappers hand it the server's
//! database and clock, so `ncr seed-*`, start-up and the tests call one thing.

use persistence::DbError;
pub use seed::{offices, population};

use crate::state::AppState;

/// Whether the database holds no demo data yet (see [`seed::is_empty`]).
pub fn is_empty(state: &AppState) -> Result<bool, DbError> {
    seed::is_empty(&state.db)
}

/// Loads the demo data as of the clock's now (see [`seed::seed_demo`]).
pub fn seed_demo(state: &AppState) -> Result<String, DbError> {
    seed::seed_demo(&state.db, state.now())
}

/// The national-scale offices and slots (`ncr seed-national`).
pub mod national {
    use persistence::DbError;
    pub use seed::national::*;

    use crate::state::AppState;

    /// See [`seed::national::generate`].
    pub fn generate(state: &AppState, offices: usize, days: u32) -> Result<String, DbError> {
        seed::national::generate(&state.db, state.now(), offices, days)
    }
}

/// The load-test data set (`ncr seed-loadtest`).
pub mod loadtest {
    use persistence::DbError;
    pub use seed::loadtest::*;

    use crate::state::AppState;

    /// See [`seed::loadtest::seed_citizens`].
    pub fn seed_citizens(state: &AppState, citizens: u64) -> Result<usize, DbError> {
        seed::loadtest::seed_citizens(&state.db, citizens)
    }

    /// See [`seed::loadtest::generate`].
    pub fn generate(state: &AppState, offices: usize, days: u32, citizens: u64) -> Result<String, DbError> {
        seed::loadtest::generate(&state.db, state.now(), offices, days, citizens)
    }
}
