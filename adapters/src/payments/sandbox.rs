//! The sandbox bank's client: a `PaymentGateway` that talks HTTP to the sandbox bank this
//! server itself serves under `/sandbox/bank/…` (see `routes::sandbox_bank`), exactly as
//! the real clients talk to Sadad and Parsian — request, redirect, callback, verify, reverse.

use async_trait::async_trait;
use domain::Rials;
use domain::ports::{
    CallbackData, GatewayRedirect, NotPaidReason, PaymentGateway, PaymentOrder, PortError, VerifyOutcome,
};
use serde::{Deserialize, Serialize};

pub struct SandboxBankGateway {
    /// This server's public URL (the sandbox bank lives under it).
    base_url: String,
    merchant: String,
    http: reqwest::Client,
}

impl SandboxBankGateway {
    pub fn new(base_url: &str, merchant: &str, http: reqwest::Client) -> Self {
        Self { base_url: base_url.trim_end_matches('/').to_owned(), merchant: merchant.to_owned(), http }
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

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::Unavailable(e.to_string())
}

#[async_trait]
impl PaymentGateway for SandboxBankGateway {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn request(&self, order: &PaymentOrder) -> Result<GatewayRedirect, PortError> {
        let body = SandboxPaymentRequest {
            order_id: order.order_id,
            amount: order.amount.value(),
            callback_url: Some(order.callback_url.clone()),
            merchant: Some(self.merchant.clone()),
        };
        let res = self
            .http
            .post(format!("{}/sandbox/bank/api/payments", self.base_url))
            .json(&body)
            .send()
            .await
            .map_err(unavailable)?;
        if !res.status().is_success() {
            return Err(unavailable(format!("sandbox bank answered {}", res.status())));
        }
        let t: SandboxPaymentToken = res.json().await.map_err(|e| PortError::Protocol(e.to_string()))?;
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
        let res = self
            .http
            .post(format!("{}/sandbox/bank/api/verify", self.base_url))
            .json(&SandboxTokenRequest { token: token.to_owned() })
            .send()
            .await
            .map_err(unavailable)?;
        if !res.status().is_success() {
            return Err(unavailable(format!("sandbox bank answered {}", res.status())));
        }
        let v: SandboxVerifyResponse = res.json().await.map_err(|e| PortError::Protocol(e.to_string()))?;
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
        let res = self
            .http
            .post(format!("{}/sandbox/bank/api/reverse", self.base_url))
            .json(&SandboxTokenRequest { token: token.to_owned() })
            .send()
            .await
            .map_err(unavailable)?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(unavailable(format!("sandbox bank answered {}", res.status())))
        }
    }
}
