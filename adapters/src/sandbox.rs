//! Sandbox stand-ins for outside systems, for the embedded default, demos and tests.
//! Each is a real implementation of its port backed by our own tables, clearly named,
//! with a switch that simulates an outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use domain::ids::{Mobile, NationalId};
use domain::ports::{
    CivilRegistry, Clock, EmailMessage, EmailSender, MobileOwnershipCheck, Ownership, PortError, RegistryRecord,
    SendError, SmsSender,
};
use persistence::{Db, Pii, sandbox_messages};

/// The sandbox civil registry, reading the synthetic population in `registry_people`.
pub struct SandboxRegistry {
    db: Db,
    available: AtomicBool,
}

impl SandboxRegistry {
    pub fn new(db: Db) -> Self {
        Self { db, available: AtomicBool::new(true) }
    }

    /// Simulates the registry going down (`false`) or coming back (`true`).
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }
}

#[async_trait]
impl CivilRegistry for SandboxRegistry {
    async fn find(&self, id: &NationalId) -> Result<Option<RegistryRecord>, PortError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("sandbox registry outage".into()));
        }
        let id = id.as_str().to_owned();
        let row = self
            .db
            .run(move |conn| persistence::registry::find(conn, &id))
            .await
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        row.map(|r| r.to_record()).transpose().map_err(|e| PortError::Protocol(e.to_string()))
    }
}

/// The sandbox mobile-ownership service: the pairs loaded with the demo population
/// (most people own the mobile on record; some numbers belong to a relative).
pub struct SandboxOwnership {
    db: Db,
    available: AtomicBool,
}

impl SandboxOwnership {
    pub fn new(db: Db) -> Self {
        Self { db, available: AtomicBool::new(true) }
    }

    /// Simulates the inquiry service going down (`false`) or coming back (`true`).
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }
}

#[async_trait]
impl MobileOwnershipCheck for SandboxOwnership {
    async fn check(&self, id: &NationalId, mobile: &Mobile) -> Ownership {
        if !self.available.load(Ordering::SeqCst) {
            return Ownership::Unavailable;
        }
        let (id, mobile) = (id.as_str().to_owned(), mobile.as_str().to_owned());
        match self.db.run(move |conn| persistence::registry::owns(conn, &mobile, &id)).await {
            Ok(true) => Ownership::Matched,
            Ok(false) => Ownership::NotMatched,
            // A database hiccup is an outage, never "not your number".
            _ => Ownership::Unavailable,
        }
    }
}

/// Fault switches of the sandbox bank (served by this API), so demos and tests can show
/// what happens when a bank misbehaves.
#[derive(Debug, Default)]
pub struct SandboxBankControl {
    verify_unavailable: AtomicBool,
    amount_delta: AtomicI64,
    reverse_unavailable: AtomicBool,
}

impl SandboxBankControl {
    /// The bank's verify service does not answer (503) while `true`.
    pub fn set_verify_unavailable(&self, on: bool) {
        self.verify_unavailable.store(on, Ordering::SeqCst);
    }
    pub fn verify_unavailable(&self) -> bool {
        self.verify_unavailable.load(Ordering::SeqCst)
    }
    /// The bank reports an amount off by `delta` rials (0: correct).
    pub fn set_amount_delta(&self, delta: i64) {
        self.amount_delta.store(delta, Ordering::SeqCst);
    }
    pub fn amount_delta(&self) -> i64 {
        self.amount_delta.load(Ordering::SeqCst)
    }
    /// The bank's reversal service does not answer (503) while `true`.
    pub fn set_reverse_unavailable(&self, on: bool) {
        self.reverse_unavailable.store(on, Ordering::SeqCst);
    }
    pub fn reverse_unavailable(&self) -> bool {
        self.reverse_unavailable.load(Ordering::SeqCst)
    }
}

/// The sandbox SMS operator: "delivers" a text by storing it in `sandbox_sms`, the sandbox
/// phone that admins, demos and tests read back.
pub struct SandboxSms {
    db: Db,
    pii: Arc<Pii>,
    clock: Arc<dyn Clock>,
    available: AtomicBool,
}

impl SandboxSms {
    pub fn new(db: Db, pii: Arc<Pii>, clock: Arc<dyn Clock>) -> Self {
        Self { db, pii, clock, available: AtomicBool::new(true) }
    }

    /// Simulates the operator going down (`false`) or coming back (`true`).
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }
}

#[async_trait]
impl SmsSender for SandboxSms {
    fn marked_down(&self) -> bool {
        !self.available.load(Ordering::SeqCst)
    }

    async fn send(&self, to: &Mobile, text: &str) -> Result<String, SendError> {
        self.deliver(to, text, None).await
    }

    /// Like Kavenegar's `localid`: a message id the phone already has is one text.
    async fn send_once(&self, to: &Mobile, text: &str, local_id: &str) -> Result<String, SendError> {
        self.deliver(to, text, Some(local_id)).await
    }
}

impl SandboxSms {
    async fn deliver(&self, to: &Mobile, text: &str, local_id: Option<&str>) -> Result<String, SendError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(SendError::Temporary("sandbox sms outage".into()));
        }
        let (pii, now) = (self.pii.clone(), self.clock.now());
        let (to, text, local_id) = (to.as_str().to_owned(), text.to_owned(), local_id.map(str::to_owned));
        self.db
            .run(move |conn| sandbox_messages::store_sms(conn, &pii, &to, &text, local_id.as_deref(), now))
            .await
            .map_err(|e| SendError::Temporary(e.to_string()))
    }
}

/// The sandbox mail server: "delivers" an e-mail by storing it in `sandbox_emails`.
pub struct SandboxEmail {
    db: Db,
    pii: Arc<Pii>,
    clock: Arc<dyn Clock>,
    available: AtomicBool,
}

impl SandboxEmail {
    pub fn new(db: Db, pii: Arc<Pii>, clock: Arc<dyn Clock>) -> Self {
        Self { db, pii, clock, available: AtomicBool::new(true) }
    }

    /// Simulates the mail server going down (`false`) or coming back (`true`).
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }
}

#[async_trait]
impl EmailSender for SandboxEmail {
    async fn send(&self, message: &EmailMessage) -> Result<String, SendError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(SendError::Temporary("sandbox mail server outage".into()));
        }
        if !message.to.contains('@') {
            return Err(SendError::Permanent("invalid recipient address".into()));
        }
        let (pii, now, message) = (self.pii.clone(), self.clock.now(), message.clone());
        self.db
            .run(move |conn| {
                let stored = sandbox_messages::NewEmail {
                    to: &message.to,
                    subject: &message.subject,
                    text: &message.text,
                    html: message.html.as_deref(),
                    attachment_names: message.attachments.iter().map(|a| a.filename.clone()).collect(),
                };
                sandbox_messages::store_email(conn, &pii, &stored, now)
            })
            .await
            .map_err(|e| SendError::Temporary(e.to_string()))
    }
}
