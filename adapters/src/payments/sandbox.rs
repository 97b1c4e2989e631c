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

impl SandboxBankGateway {
    /// POSTs `body` to the sandbox bank, sent again (up to twice, 50 ms apart) when no answer
    /// came back or a proxy answered 502. The sandbox bank is this server, reached through
    /// the public URL — behind a load balancer, possibly through an instance that is closing
    /// its listener in a rolling restart, which resets connections it had not accepted yet
    /// (the proxy then cannot tell whether the request was read, and does not resend a
    /// POST). Every call here may be repeated: a second registration of an order only
    /// issues a token nobody uses, verify reads, and reverse reverses once.
    async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<reqwest::Response, PortError> {
        let url = format!("{}{path}", self.base_url);
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = self.http.post(&url).json(body).send().await;
            let again = match &answer {
                Ok(res) => res.status() == reqwest::StatusCode::BAD_GATEWAY,
                Err(e) => !e.is_timeout(),
            };
            if !again || tries == 3 {
                return answer.map_err(unavailable);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
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
        let res = self.post("/sandbox/bank/api/payments", &body).await?;
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
        let res = self.post("/sandbox/bank/api/verify", &SandboxTokenRequest { token: token.to_owned() }).await?;
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
        let res = self.post("/sandbox/bank/api/reverse", &SandboxTokenRequest { token: token.to_owned() }).await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(unavailable(format!("sandbox bank answered {}", res.status())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stub on a local port: the n-th connection (from 0) gets `answers[n]` after its
    /// request was read — `None` closes the connection without a word. Counts connections.
    async fn stub(answers: Vec<Option<&'static str>>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The request head and its JSON body (small, one write from reqwest).
                while !request.windows(4).any(|w| w == b"\r\n\r\n") || !request.ends_with(b"}") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => request.extend_from_slice(&buf[..k]),
                    }
                }
                match answers.get(n).copied().flatten() {
                    Some(answer) => {
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                    None => drop(socket),
                }
            }
        });
        (base, seen)
    }

    const TOKEN: &str = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 44\r\n\r\n{\"token\":\"Zq3xV8\",\"pay_url\":\"http://x/p/Zq\"}";
    const BAD_GATEWAY: &str = "HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
    const OUTAGE: &str = "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

    fn order() -> PaymentOrder {
        PaymentOrder {
            order_id: 7,
            amount: Rials::new(200_000).unwrap(),
            callback_url: "http://127.0.0.1/api/v1/payments/sandbox/callback".into(),
            description: "ncr".into(),
        }
    }

    #[tokio::test]
    async fn a_request_the_proxy_lost_is_sent_again() {
        // Reset without an answer, then a proxy's 502, then the bank's token.
        let (base, seen) = stub(vec![None, Some(BAD_GATEWAY), Some(TOKEN)]).await;
        let gateway = SandboxBankGateway::new(&base, "ncr", reqwest::Client::new());
        let redirect = gateway.request(&order()).await.expect("the third try is answered");
        assert_eq!(redirect.token, "Zq3xV8");
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn three_lost_tries_are_unavailable_and_an_outage_is_not_repeated() {
        let (base, seen) = stub(vec![None, None, None, Some(TOKEN)]).await;
        let gateway = SandboxBankGateway::new(&base, "ncr", reqwest::Client::new());
        let err = gateway.request(&order()).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 3, "three tries, no more");

        // The bank's own 503 (an outage the sandbox plays) is an answer: sent once.
        let (base, seen) = stub(vec![Some(OUTAGE), Some(TOKEN)]).await;
        let gateway = SandboxBankGateway::new(&base, "ncr", reqwest::Client::new());
        let err = gateway.reverse(&order(), "Zq3xV8").await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }
}
