//! The catalog — offices, fee rates and holidays — kept in memory by each instance,
//! and the version that tells it when its copy is stale (docs/decisions/0013-catalog-cache.md).
//!
//! Every change to `offices`, `fee_rates` or `holidays` moves `catalog_version.version`
//! (a database trigger, so no writer can forget it). A request learns the version it must
//! see either from its session check, which reads it in the same statement
//! ([`crate::sessions::check_seeing_catalog`]; the server hands it to the request's later
//! turns at the database through [`SEEN_IN_TURN`]), or by one read of the version when the
//! catalog is used. A copy older than that is reloaded on the request's own connection
//! before use. Either way a request sees every catalog change committed before it began.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use diesel::prelude::*;
use domain::offices::Facilities;
use domain::record_ids::OfficeId;

use crate::db::DbConn;
use crate::error::DbError;
use crate::offices::{OfficeRow, SeatScope};
use crate::schema::{catalog_version, holidays, offices};

thread_local! {
    /// The catalog version the current request read in its session check, set by the
    /// server for the duration of each of the request's turns at the database.
    pub static SEEN_IN_TURN: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// One consistent copy of the catalog.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The version read before the tables were (the tables are at least that new).
    pub version: i64,
    offices: HashMap<OfficeId, OfficeRow>,
    /// Office ids by city area code.
    by_city: HashMap<String, Vec<OfficeId>>,
    /// Inactive office ids by city area code (a city search leaves them out).
    inactive_by_city: HashMap<String, Vec<OfficeId>>,
    pub tariff: Vec<domain::fees::FeeRate>,
    /// Every national holiday, sorted.
    holidays: Vec<NaiveDate>,
}

impl Snapshot {
    pub fn office(&self, id: &OfficeId) -> Option<&OfficeRow> {
        self.offices.get(id)
    }

    /// The offices of `ids` that exist, in no particular order.
    pub fn offices(&self, ids: &[OfficeId]) -> Vec<OfficeRow> {
        ids.iter().filter_map(|id| self.offices.get(id).cloned()).collect()
    }

    pub fn holidays_between(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        self.holidays.iter().copied().filter(|d| *d >= from && *d <= to).collect()
    }

    /// The ids of a city's inactive offices (few; found without looking at the active ones).
    pub fn inactive_in_city(&self, city_code: &str) -> &[OfficeId] {
        self.inactive_by_city.get(city_code).map_or(&[], Vec::as_slice)
    }

    /// The active offices of a scope with what ranking needs: id → (city code, phone,
    /// facilities).
    pub fn scope_offices(&self, scope: &SeatScope) -> HashMap<OfficeId, (String, String, Facilities)> {
        let pick = |o: &OfficeRow| {
            o.active
                && scope.city_code.as_ref().is_none_or(|c| &o.city_code == c)
                && scope.province.as_ref().is_none_or(|p| &o.province == p)
                && scope.kind.as_ref().is_none_or(|k| &o.kind == k)
        };
        let entry = |o: &OfficeRow| (o.id.clone(), (o.city_code.clone(), o.phone.clone(), o.facilities()));
        match &scope.city_code {
            Some(c) => self
                .by_city
                .get(c)
                .into_iter()
                .flatten()
                .filter_map(|id| self.offices.get(id))
                .filter(|o| pick(o))
                .map(entry)
                .collect(),
            None => self.offices.values().filter(|o| pick(o)).map(entry).collect(),
        }
    }

    fn load(conn: &mut DbConn, version: i64) -> Result<Self, DbError> {
        let rows: Vec<OfficeRow> = offices::table.select(OfficeRow::as_select()).load(conn)?;
        let mut by_city: HashMap<String, Vec<OfficeId>> = HashMap::new();
        let mut inactive_by_city: HashMap<String, Vec<OfficeId>> = HashMap::new();
        for o in &rows {
            by_city.entry(o.city_code.clone()).or_default().push(o.id.clone());
            if !o.active {
                inactive_by_city.entry(o.city_code.clone()).or_default().push(o.id.clone());
            }
        }
        let offices = rows.into_iter().map(|o| (o.id.clone(), o)).collect();
        let tariff = crate::payments::tariff(conn)?;
        let holidays = holidays::table.select(holidays::date).order(holidays::date.asc()).load(conn)?;
        Ok(Self { version, offices, by_city, inactive_by_city, tariff, holidays })
    }
}

/// Reads the catalog's version.
pub fn version(conn: &mut DbConn) -> Result<i64, DbError> {
    catalog_version::table.select(catalog_version::version).first(conn).map_err(DbError::from)
}

/// Each instance's copy of the catalog; cheap to share.
#[derive(Debug)]
pub struct Catalog {
    snapshot: parking_lot::RwLock<Arc<Snapshot>>,
    /// The newest version any request of this instance has read.
    wanted: AtomicI64,
    /// Held while a copy is loaded.
    loading: parking_lot::Mutex<()>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            snapshot: parking_lot::RwLock::new(Arc::new(Snapshot { version: -1, ..Snapshot::default() })),
            wanted: AtomicI64::new(0),
            loading: parking_lot::Mutex::new(()),
        }
    }
}

impl Catalog {
    /// The catalog, at least as new as the version this request read (its session check,
    /// [`SEEN_IN_TURN`]) or, for a request that read none, as the database's now (one
    /// read of the version). Reloads on `conn` when stale.
    pub fn get(&self, conn: &mut DbConn) -> Result<Arc<Snapshot>, DbError> {
        let seen = match SEEN_IN_TURN.with(std::cell::Cell::get) {
            Some(v) => v,
            None => version(conn)?,
        };
        self.at_least(conn, seen)
    }

    /// The catalog, at least as new as `seen` — a version the caller read in one of its
    /// own statements (e.g. [`crate::citizens::spend_captcha`]). Reloads on `conn` when stale.
    pub fn at_least(&self, conn: &mut DbConn, seen: i64) -> Result<Arc<Snapshot>, DbError> {
        self.wanted.fetch_max(seen, Ordering::AcqRel);
        let current = self.snapshot.read().clone();
        if current.version >= seen {
            return Ok(current);
        }
        // Stale: one request loads, the others wait for its copy (a burst of requests
        // after a start or a change must not load the whole catalog once each).
        let _loading = self.loading.lock();
        let current = self.snapshot.read().clone();
        if current.version >= seen {
            return Ok(current);
        }
        // Read the version again (it may have moved on) and the tables after it.
        let v = version(conn)?.max(seen);
        let fresh = Arc::new(Snapshot::load(conn, v)?);
        let mut slot = self.snapshot.write();
        if slot.version < fresh.version {
            *slot = fresh.clone();
        }
        Ok(fresh)
    }
}
