//! The sandbox bank (the embedded default's payment gateway), in this process. Its pages —
//! the payment page and the post back to the merchant — are served under `/sandbox/bank/…`
//! (see `routes::sandbox_bank`) like a real Shaparak gateway's, and so is its documented
//! API (register, verify, reverse); the payment journey reaches it here, by a call, not by
//! an HTTP request to itself: a request through this server's own front door nested in a
//! citizen's payment request made that step half as slow again on a loaded server. Its
//! state is the `sandbox_bank_payments` table, so every instance of a cluster sees the
//! same bank, as it would see a real one.

use std::sync::Arc;

use async_trait::async_trait;
use domain::Rials;
use domain::ports::{
    CallbackData, Clock, GatewayRedirect, NotPaidReason, PaymentGateway, PaymentOrder, PortError, RandomSource,
    VerifyOutcome,
};
use persistence::payments::{self as rows, SandboxBankRow};
use persistence::{Db, DbError};
use serde::{Deserialize, Serialize};

use crate::sandbox::SandboxBankControl;

/// How long a payment page stays open.
const PAGE_MINUTES: i64 = 15;

/// The largest amount the sandbox bank takes (Rials), as its contract says.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// Why the sandbox bank did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// A field outside the bank's bounds (its name).
    #[error("{0} is out of the sandbox bank's bounds")]
    OutOfBounds(&'static str),
    /// An outage the sandbox is playing (its fault switches).
    #[error("{0}")]
    Outage(&'static str),
    /// Its own table could not be read or written.
    #[error("sandbox bank: {0}")]
    Database(#[from] DbError),
}

/// A database failure or a played outage is, to the bank's client, a bank that did not
/// answer; a request out of its bounds is one the bank refuses, which no retry changes.
impl From<BankError> for PortError {
    fn from(e: BankError) -> Self {
        match e {
            BankError::OutOfBounds(_) => PortError::Protocol(e.to_string()),
            BankError::Outage(_) | BankError::Database(_) => PortError::Unavailable(e.to_string()),
        }
    }
}

/// The sandbox bank: its table, its fault switches and where its pages send the browser.
pub struct SandboxBank {
    db: Db,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    control: Arc<SandboxBankControl>,
    /// The merchant name the payment page shows (`payments.merchant_name`).
    merchant: String,
    /// This server's public URL: the pages live under it.
    public_url: String,
    /// The only place the pages post back to: this server's sandbox callback.
    callback_url: String,
}

/// What [`SandboxBank::new`] needs besides the database and the fault switches.
pub struct SandboxBankSite<'a> {
    /// The merchant name the payment page shows (`payments.merchant_name`).
    pub merchant: &'a str,
    /// This server's public URL: the pages live under it.
    pub public_url: &'a str,
    /// This server's callback for the sandbox gateway, under the public URL.
    pub callback_url: String,
}

impl SandboxBank {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        control: Arc<SandboxBankControl>,
        site: SandboxBankSite<'_>,
    ) -> Self {
        Self {
            db,
            clock,
            random,
            control,
            merchant: site.merchant.trim().to_owned(),
            public_url: site.public_url.trim_end_matches('/').to_owned(),
            callback_url: site.callback_url,
        }
    }

    /// Registers a payment and returns the page to send the customer to; an amount outside
    /// 1 to [`MAX_AMOUNT`] Rials or an order id below 1 is refused.
    pub async fn register(&self, order_id: i64, amount: i64) -> Result<SandboxPaymentToken, BankError> {
        if !(1..=MAX_AMOUNT).contains(&amount) {
            return Err(BankError::OutOfBounds("amount"));
        }
        if order_id < 1 {
            return Err(BankError::OutOfBounds("order_id"));
        }
        let now = self.clock.now();
        let token = format!("{:016x}{:016x}", self.random.next_u64(), self.random.next_u64());
        let row = SandboxBankRow {
            token: token.clone(),
            order_id,
            amount,
            merchant: self.merchant.clone(),
            callback_url: self.callback_url.clone(),
            outcome: None,
            reference: None,
            verified: false,
            reversed: false,
            created_at: now.naive_utc(),
            expires_at: (now + chrono::Duration::minutes(PAGE_MINUTES)).naive_utc(),
        };
        self.db.run(move |conn| rows::sandbox_insert(conn, &row)).await?;
        let pay_url = format!("{}/sandbox/bank/pay/{token}", self.public_url);
        Ok(SandboxPaymentToken { token, pay_url })
    }

    /// A payment as the bank holds it (`None`: no such token).
    pub async fn find(&self, token: &str) -> Result<Option<SandboxBankRow>, DbError> {
        let token = token.to_owned();
        self.db.run(move |conn| rows::sandbox_find(conn, &token)).await
    }

    /// The customer's choice on the payment page: the payment after it and the status the
    /// page posts back to the merchant (`None`: no such token). The first choice on an open
    /// page is recorded; a later one is ignored, as a real bank's page does, and an expired
    /// page posts back `EXPIRED` whatever was chosen.
    pub async fn choose(
        &self,
        token: &str,
        outcome: BankOutcome,
    ) -> Result<Option<(SandboxBankRow, &'static str)>, DbError> {
        let now = self.clock.now();
        let reference = format!("{:012}", self.random.next_u64() % 1_000_000_000_000);
        let token = token.to_owned();
        // One statement for the first choice on an open page; otherwise the row is read (in
        // the same turn) to tell an expired page and an unknown token from a second choice.
        let found = self
            .db
            .run(move |conn| {
                match rows::sandbox_decide_open(conn, &token, outcome.as_str(), &reference, now.naive_utc())? {
                    Some(row) => Ok(Some(row)),
                    None => rows::sandbox_find(conn, &token),
                }
            })
            .await?;
        let Some(row) = found else { return Ok(None) };
        let status = if now > row.expires_at.and_utc() {
            "EXPIRED"
        } else {
            match outcome {
                BankOutcome::Success => "OK",
                BankOutcome::Cancel => "CANCELLED",
                BankOutcome::FailedAfterDebit => "FAILED",
            }
        };
        Ok(Some((row, status)))
    }

    /// The bank's verdict on a payment, server to server (`None`: no such token); a paid one
    /// is marked verified as it is read, any other only read, in one turn. An outage while the
    /// verify outage is played.
    pub async fn verdict(&self, token: &str) -> Result<Option<SandboxVerifyResponse>, BankError> {
        if self.control.verify_unavailable() {
            return Err(BankError::Outage("sandbox bank verify outage"));
        }
        let token = token.to_owned();
        let found = self
            .db
            .run(move |conn| match rows::sandbox_verify_paid(conn, &token)? {
                Some(row) => Ok(Some(row)),
                None => rows::sandbox_find(conn, &token),
            })
            .await?;
        let Some(row) = found else { return Ok(None) };
        let status = match row.outcome.as_deref() {
            _ if row.reversed => SandboxStatus::Cancelled,
            Some("success") => SandboxStatus::Paid,
            Some("cancel") => SandboxStatus::Cancelled,
            Some(_) => SandboxStatus::DebitedNotSettled,
            None if self.clock.now() > row.expires_at.and_utc() => SandboxStatus::Expired,
            None => SandboxStatus::Pending,
        };
        Ok(Some(SandboxVerifyResponse {
            status,
            order_id: row.order_id,
            amount: row.amount + self.control.amount_delta(),
            reference: row.reference.filter(|_| status == SandboxStatus::Paid),
        }))
    }

    /// Gives the money back (`false`: no such token). An outage while the reversal outage is
    /// played.
    pub async fn give_back(&self, token: &str) -> Result<bool, BankError> {
        if self.control.reverse_unavailable() {
            return Err(BankError::Outage("sandbox bank reverse outage"));
        }
        let token = token.to_owned();
        Ok(self.db.run(move |conn| rows::sandbox_reverse(conn, &token)).await?)
    }
}

/// The customer's choice on the sandbox bank page.
#[derive(Debug, Deserialize, utoipa::ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BankOutcome {
    Success,
    Cancel,
    FailedAfterDebit,
}

impl BankOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            BankOutcome::Success => "success",
            BankOutcome::Cancel => "cancel",
            BankOutcome::FailedAfterDebit => "failed_after_debit",
        }
    }
}

/// `POST /sandbox/bank/api/payments`
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxPaymentRequest {
    #[schema(example = 179532096001234_i64, minimum = 1)]
    pub order_id: i64,
    #[schema(example = 200000, minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// Ignored: the sandbox bank posts back only to this server's own callback
    /// (`<public_url>/api/v1/payments/sandbox/callback`), whatever it is given.
    #[schema(example = "http://127.0.0.1:8080/api/v1/payments/sandbox/callback", max_length = 2000)]
    pub callback_url: Option<String>,
    /// Ignored: the page shows the configured `payments.merchant_name`.
    #[schema(example = "ncr-demo", max_length = 100)]
    pub merchant: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SandboxPaymentToken {
    #[schema(example = "Zq3xV8")]
    pub token: String,
    #[schema(example = "http://127.0.0.1:8080/sandbox/bank/pay/Zq3xV8")]
    pub pay_url: String,
}

/// `POST /sandbox/bank/api/verify` and `/reverse`
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxTokenRequest {
    #[schema(example = "Zq3xV8")]
    pub token: String,
}

/// The sandbox bank's verdict on a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    Paid,
    Cancelled,
    DebitedNotSettled,
    /// The customer has not chosen yet.
    Pending,
    Expired,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SandboxVerifyResponse {
    pub status: SandboxStatus,
    #[schema(example = 179532096001234_i64)]
    pub order_id: i64,
    #[schema(example = 200000)]
    pub amount: i64,
    #[schema(example = "SBX-482913")]
    pub reference: Option<String>,
}

#[async_trait]
impl PaymentGateway for SandboxBank {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn request(&self, order: &PaymentOrder) -> Result<GatewayRedirect, PortError> {
        let t = self.register(order.order_id, order.amount.value()).await?;
        Ok(GatewayRedirect { token: t.token, url: t.pay_url })
    }

    fn parse_callback(&self, fields: &[(String, String)]) -> Result<CallbackData, PortError> {
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let order_id = get("order_id")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| PortError::Protocol("callback without order_id".into()))?;
        let status = get("status").unwrap_or_default();
        Ok(CallbackData { order_id, token: get("token"), claims_success: status == "OK", status_code: status })
    }

    async fn verify(&self, order: &PaymentOrder, token: &str) -> Result<VerifyOutcome, PortError> {
        let Some(v) = self.verdict(token).await? else {
            return Err(PortError::Protocol("the sandbox bank does not know this token".into()));
        };
        if v.order_id != order.order_id {
            return Ok(VerifyOutcome::OtherOrder);
        }
        Ok(match v.status {
            SandboxStatus::Paid => VerifyOutcome::Verified {
                reference: v.reference.unwrap_or_default(),
                amount: Rials::new(v.amount).map_err(|_| PortError::Protocol("negative amount".into()))?,
                card_mask: Some("603799******3405".into()),
            },
            SandboxStatus::Cancelled => {
                VerifyOutcome::NotPaid { reason: NotPaidReason::Cancelled, code: "cancelled".into() }
            }
            SandboxStatus::Expired => VerifyOutcome::NotPaid { reason: NotPaidReason::Expired, code: "expired".into() },
            SandboxStatus::DebitedNotSettled => VerifyOutcome::DebitedNotSettled { code: "failed_after_debit".into() },
            SandboxStatus::Pending => {
                return Err(PortError::Unavailable("the customer has not finished at the bank".into()));
            }
        })
    }

    fn not_paid_reason(&self, code: &str) -> NotPaidReason {
        match code {
            c if c.eq_ignore_ascii_case("cancelled") => NotPaidReason::Cancelled,
            "expired" => NotPaidReason::Expired,
            _ => NotPaidReason::Declined,
        }
    }

    async fn reverse(&self, _order: &PaymentOrder, token: &str) -> Result<(), PortError> {
        match self.give_back(token).await? {
            true => Ok(()),
            false => Err(PortError::Protocol("the sandbox bank does not know this token".into())),
        }
    }
}
