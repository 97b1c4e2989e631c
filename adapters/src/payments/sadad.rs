//! Sadad (Bank Melli) internet payment gateway, REST/JSON API v0.
//!
//! Flow: `PaymentRequest` gives a token → the browser goes to `/Purchase?Token=…` →
//! Sadad posts `OrderId`, `token`, `ResCode` back → `Advice/Verify` settles the payment.
//! Sadad reverses a payment that is never verified by itself (within about 30 minutes),
//! and API v0 has no reversal call, so [`SadadGateway::reverse`] cannot refund a
//! verified payment.
//!
//! Verify `ResCode` mapping (Sadad documents only 0, -1 and 101 for Verify):
//! - `0` → `Verified`. A repeated Verify of an already verified token answers `0` again
//!   with the same data, so verifying twice is idempotent and needs no special case.
//! - `-1` ("invalid parameters or no such transaction") → `NotPaid`.
//! - `101` ("the time to verify has passed") → `DebitedNotSettled`: the card may have
//!   been charged, and Sadad returns the money because we did not verify in time.
//! - any other code → `DebitedNotSettled`: the bank did not settle to us, and saying
//!   "not paid" could be false if the card was charged (Sadad then auto-reverses it).

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{FixedOffset, Utc};
use des::TdesEde3;
use domain::Rials;
use domain::ports::{
    CallbackData, GatewayRedirect, NotPaidReason, PaymentGateway, PaymentOrder, PortError, VerifyOutcome,
};
use ecb::cipher::block_padding::Pkcs7;
use ecb::cipher::{BlockModeEncrypt, KeyInit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{callback_field, http_status_error, transport_error, trim_base};

const BANK: &str = "sadad";
/// Iran Standard Time (UTC+03:30); Iran has not observed daylight saving since 2022.
const TEHRAN: FixedOffset = match FixedOffset::east_opt(3 * 3600 + 1800) {
    Some(offset) => offset,
    None => panic!("UTC+03:30 is a valid offset"),
};
/// How many "known unsettled" tokens [`SadadGateway::reverse`] remembers.
const UNSETTLED_MEMORY: usize = 10_000;

/// Sadad terminal settings.
#[derive(Clone, Serialize, Deserialize)]
pub struct SadadConfig {
    /// e.g. `https://sadad.shaparak.ir`
    pub base_url: String,
    pub terminal_id: String,
    pub merchant_id: String,
    /// The merchant's Triple-DES key as Sadad issues it (base64 of 24 bytes).
    pub key_base64: String,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for SadadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SadadConfig")
            .field("base_url", &self.base_url)
            .field("terminal_id", &self.terminal_id)
            .field("merchant_id", &self.merchant_id)
            .field("key_base64", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

type TdesEcbEnc = ecb::Encryptor<TdesEde3>;

/// Sadad's `SignData`: Triple-DES (EDE3), ECB, PKCS#7 padding, keyed with the
/// base64-decoded merchant key; the result in base64.
pub fn sign_data(key_base64: &str, plain: &str) -> Result<String, PortError> {
    // Errors name the problem but never echo the key.
    let key = STANDARD
        .decode(key_base64.trim())
        .map_err(|_| PortError::Protocol("sadad: the merchant key is not valid base64".into()))?;
    let cipher = TdesEcbEnc::new_from_slice(&key)
        .map_err(|_| PortError::Protocol("sadad: the merchant key must be 24 bytes".into()))?;
    Ok(STANDARD.encode(cipher.encrypt_padded_vec::<Pkcs7>(plain.as_bytes())))
}

/// Tokens whose Verify answer said the payment was not settled to us. Sadad never settles
/// those later, so reversing them needs no action. Bounded; oldest forgotten first.
#[derive(Default)]
struct UnsettledTokens {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl UnsettledTokens {
    fn remember(&mut self, token: &str) {
        if self.set.insert(token.to_owned()) {
            self.order.push_back(token.to_owned());
            if self.order.len() > UNSETTLED_MEMORY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// The Sadad client. Share one instance (it remembers unsettled tokens for `reverse`).
pub struct SadadGateway {
    config: SadadConfig,
    http: reqwest::Client,
    unsettled: Mutex<UnsettledTokens>,
}

impl std::fmt::Debug for SadadGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SadadGateway").field("config", &self.config).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PaymentRequestBody<'a> {
    merchant_id: &'a str,
    terminal_id: &'a str,
    amount: i64,
    order_id: i64,
    local_date_time: String,
    return_url: &'a str,
    sign_data: String,
    additional_data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyBody<'a> {
    token: &'a str,
    sign_data: String,
}

/// A JSON field as text. Sadad sends codes and amounts sometimes as strings, sometimes
/// as numbers, depending on the endpoint and version.
fn text_field(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn describe(body: &Value) -> String {
    text_field(body, "Description").unwrap_or_default()
}

impl SadadGateway {
    pub fn new(config: SadadConfig, http: reqwest::Client) -> Self {
        Self { config, http, unsettled: Mutex::new(UnsettledTokens::default()) }
    }

    fn base(&self) -> &str {
        trim_base(&self.config.base_url)
    }

    async fn post_json(&self, path: &str, body: &impl Serialize) -> Result<Value, PortError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base()))
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(BANK, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(http_status_error(BANK, status));
        }
        // Reading the body can time out too; that is still "no answer".
        let bytes = response.bytes().await.map_err(|e| transport_error(BANK, e))?;
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|_| PortError::Protocol("sadad: the answer is not JSON".into()))?;
        if !body.is_object() {
            return Err(PortError::Protocol("sadad: the answer is not a JSON object".into()));
        }
        Ok(body)
    }

    fn is_known_unsettled(&self, token: &str) -> bool {
        self.unsettled.lock().unwrap_or_else(PoisonError::into_inner).set.contains(token)
    }

    fn remember_unsettled(&self, token: &str) {
        self.unsettled.lock().unwrap_or_else(PoisonError::into_inner).remember(token);
    }
}

#[async_trait]
impl PaymentGateway for SadadGateway {
    fn name(&self) -> &'static str {
        BANK
    }

    async fn request(&self, order: &PaymentOrder) -> Result<GatewayRedirect, PortError> {
        let amount = order.amount.value();
        let plain = format!("{};{};{}", self.config.terminal_id, order.order_id, amount);
        let body = PaymentRequestBody {
            merchant_id: &self.config.merchant_id,
            terminal_id: &self.config.terminal_id,
            amount,
            order_id: order.order_id,
            local_date_time: Utc::now().with_timezone(&TEHRAN).format("%Y-%m-%dT%H:%M:%S").to_string(),
            return_url: &order.callback_url,
            sign_data: sign_data(&self.config.key_base64, &plain)?,
            additional_data: &order.description,
        };
        let answer = self.post_json("/api/v0/Request/PaymentRequest", &body).await?;
        let code = text_field(&answer, "ResCode")
            .ok_or_else(|| PortError::Protocol("sadad: PaymentRequest answer has no ResCode".into()))?;
        if code != "0" {
            return Err(PortError::Protocol(format!(
                "sadad: PaymentRequest refused with ResCode {code}: {}",
                describe(&answer)
            )));
        }
        let token = text_field(&answer, "Token")
            .ok_or_else(|| PortError::Protocol("sadad: PaymentRequest succeeded without a token".into()))?;
        let url = reqwest::Url::parse_with_params(&format!("{}/Purchase", self.base()), [("Token", token.as_str())])
            .map_err(|_| PortError::Protocol("sadad: base_url is not a valid URL".into()))?;
        Ok(GatewayRedirect { token, url: url.into() })
    }

    fn parse_callback(&self, fields: &[(String, String)]) -> Result<CallbackData, PortError> {
        let order_id = callback_field(fields, "OrderId")
            .ok_or_else(|| PortError::Protocol("sadad callback: OrderId is missing".into()))?
            .parse::<i64>()
            .map_err(|_| PortError::Protocol("sadad callback: OrderId is not a number".into()))?;
        let status_code = callback_field(fields, "ResCode")
            .ok_or_else(|| PortError::Protocol("sadad callback: ResCode is missing".into()))?
            .to_owned();
        let token = callback_field(fields, "Token").map(str::to_owned);
        let claims_success = status_code == "0";
        if claims_success && token.is_none() {
            return Err(PortError::Protocol("sadad callback: success claimed without a token".into()));
        }
        Ok(CallbackData { order_id, token, claims_success, status_code })
    }

    async fn verify(&self, order: &PaymentOrder, token: &str) -> Result<VerifyOutcome, PortError> {
        let body = VerifyBody { token, sign_data: sign_data(&self.config.key_base64, token)? };
        let answer = self.post_json("/api/v0/Advice/Verify", &body).await?;
        let code = text_field(&answer, "ResCode")
            .ok_or_else(|| PortError::Protocol("sadad: Verify answer has no ResCode".into()))?;
        match code.as_str() {
            "0" => {
                // Verified carries no order id, so a token of another order must not pass.
                if let Some(answered) = text_field(&answer, "OrderId")
                    && answered != order.order_id.to_string()
                {
                    return Err(PortError::Protocol("sadad: Verify answered for a different order".into()));
                }
                let reference =
                    text_field(&answer, "RetrivalRefNo")
                        .or_else(|| text_field(&answer, "SystemTraceNo"))
                        .ok_or_else(|| PortError::Protocol("sadad: Verify succeeded without a reference".into()))?;
                let amount = text_field(&answer, "Amount")
                    .and_then(|a| a.parse::<i64>().ok())
                    .and_then(|a| Rials::new(a).ok())
                    .ok_or_else(|| PortError::Protocol("sadad: Verify succeeded without a valid amount".into()))?;
                Ok(VerifyOutcome::Verified { reference, amount, card_mask: None })
            }
            "-1" => {
                self.remember_unsettled(token);
                Ok(VerifyOutcome::NotPaid { reason: NotPaidReason::Declined, code })
            }
            _ => {
                self.remember_unsettled(token);
                Ok(VerifyOutcome::DebitedNotSettled { code })
            }
        }
    }

    /// API v0 has no reversal. A payment that was never verified needs nothing: Sadad
    /// returns the money by itself within about 30 minutes. This process only *knows* a
    /// token was not settled when its own Verify said so; any other token may have been
    /// verified (here, before a restart, or by another instance), so the honest answer
    /// is that a person must refund it from the merchant panel.
    async fn reverse(&self, _order: &PaymentOrder, token: &str) -> Result<(), PortError> {
        if self.is_known_unsettled(token) {
            return Ok(());
        }
        Err(PortError::Protocol(
            "sadad: manual refund required (no reversal API; the payment may have been verified)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0";

    #[test]
    fn sign_data_matches_the_known_vectors() {
        assert_eq!(sign_data(KEY, "24000000;1;10000").unwrap(), "rNg7GgroFjiYxCjI5kWjp5M1zC/HhcJr");
        assert_eq!(sign_data(KEY, "token-1").unwrap(), "moH1heko0Ng=");
    }

    #[test]
    fn sign_data_rejects_bad_keys_without_echoing_them() {
        let err = sign_data("not base64!", "x").unwrap_err();
        assert!(matches!(&err, PortError::Protocol(m) if !m.contains("not base64!")));
        assert!(matches!(sign_data("MTIzNDU2Nzg=", "x"), Err(PortError::Protocol(_))));
    }

    fn config(base_url: String) -> SadadConfig {
        SadadConfig {
            base_url,
            terminal_id: "24000000".into(),
            merchant_id: "000000140000000".into(),
            key_base64: KEY.into(),
            timeout_ms: 300,
        }
    }

    fn gateway(server: &MockServer) -> SadadGateway {
        SadadGateway::new(config(server.uri()), reqwest::Client::new())
    }

    fn order() -> PaymentOrder {
        PaymentOrder {
            order_id: 1,
            amount: Rials::new(10_000).unwrap(),
            callback_url: "https://ncr.example/api/v1/payments/sadad/callback".into(),
            description: "کارت هوشمند ملی".into(),
        }
    }

    #[test]
    fn debug_redacts_the_key() {
        let shown = format!("{:?}", config("https://sadad.shaparak.ir".into()));
        assert!(!shown.contains(KEY));
        assert!(shown.contains("<redacted>"));
    }

    #[tokio::test]
    async fn request_sends_signed_fields_and_returns_the_purchase_url() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v0/Request/PaymentRequest"))
            .and(body_partial_json(serde_json::json!({
                "MerchantId": "000000140000000",
                "TerminalId": "24000000",
                "Amount": 10000,
                "OrderId": 1,
                "ReturnUrl": "https://ncr.example/api/v1/payments/sadad/callback",
                "SignData": "rNg7GgroFjiYxCjI5kWjp5M1zC/HhcJr",
                "AdditionalData": "کارت هوشمند ملی",
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"ResCode": "0", "Token": "tok+1", "Description": "ok"})),
            )
            .expect(1)
            .mount(&server)
            .await;

        let redirect = gateway(&server).request(&order()).await.unwrap();
        assert_eq!(redirect.token, "tok+1");
        assert_eq!(redirect.url, format!("{}/Purchase?Token=tok%2B1", server.uri()));

        let received = server.received_requests().await.unwrap();
        let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
        let when = sent["LocalDateTime"].as_str().unwrap();
        assert!(chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%dT%H:%M:%S").is_ok(), "{when}");
    }

    #[tokio::test]
    async fn request_refusal_is_a_protocol_error_with_the_code() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Request/PaymentRequest"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"ResCode": 1011, "Description": "duplicate order"})),
            )
            .mount(&server)
            .await;
        let err = gateway(&server).request(&order()).await.unwrap_err();
        assert!(matches!(&err, PortError::Protocol(m) if m.contains("1011")), "{err:?}");
    }

    #[tokio::test]
    async fn request_timeout_and_5xx_are_unavailable() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Request/PaymentRequest"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"ResCode": "0", "Token": "t"}))
                    .set_delay(Duration::from_secs(3)),
            )
            .mount(&server)
            .await;
        let err = gateway(&server).request(&order()).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");

        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Request/PaymentRequest"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let err = gateway(&server).request(&order()).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn refused_connection_is_unavailable() {
        // wiremock pools its servers, so a dropped MockServer may still listen; a closed
        // listener's port reliably refuses.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let gateway = SadadGateway::new(config(uri), reqwest::Client::new());
        let err = gateway.verify(&order(), "token-1").await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    }

    fn verified_body() -> Value {
        serde_json::json!({
            "ResCode": "0",
            "Amount": "10000",
            "Description": "ok",
            "RetrivalRefNo": "123456789012",
            "SystemTraceNo": "654321",
            "OrderId": "1",
        })
    }

    #[tokio::test]
    async fn verify_sends_the_signed_token_and_repeats_idempotently() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v0/Advice/Verify"))
            .and(body_partial_json(serde_json::json!({"Token": "token-1", "SignData": "moH1heko0Ng="})))
            .respond_with(ResponseTemplate::new(200).set_body_json(verified_body()))
            .expect(2)
            .mount(&server)
            .await;
        let gateway = gateway(&server);
        let expected = VerifyOutcome::Verified {
            reference: "123456789012".into(),
            amount: Rials::new(10_000).unwrap(),
            card_mask: None,
        };
        // Sadad answers an already verified token with ResCode 0 and the same data.
        assert_eq!(gateway.verify(&order(), "token-1").await.unwrap(), expected);
        assert_eq!(gateway.verify(&order(), "token-1").await.unwrap(), expected);
        // A verified payment cannot be reversed through the API.
        assert!(
            matches!(gateway.reverse(&order(), "token-1").await, Err(PortError::Protocol(m)) if m.contains("manual"))
        );
    }

    #[tokio::test]
    async fn verify_returns_the_banks_amount_and_falls_back_to_the_trace_number() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Advice/Verify"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "ResCode": 0, "Amount": 5000, "SystemTraceNo": "654321", "OrderId": 1,
            })))
            .mount(&server)
            .await;
        let outcome = gateway(&server).verify(&order(), "token-1").await.unwrap();
        assert_eq!(
            outcome,
            VerifyOutcome::Verified { reference: "654321".into(), amount: Rials::new(5_000).unwrap(), card_mask: None }
        );
    }

    #[tokio::test]
    async fn verify_for_another_order_is_rejected() {
        let server = MockServer::start().await;
        let mut body = verified_body();
        body["OrderId"] = "2".into();
        Mock::given(path("/api/v0/Advice/Verify"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        let err = gateway(&server).verify(&order(), "token-1").await.unwrap_err();
        assert!(matches!(err, PortError::Protocol(_)), "{err:?}");
    }

    async fn verify_with_code(code: &str) -> (SadadGateway, VerifyOutcome) {
        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Advice/Verify"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"ResCode": code, "Description": "x"})),
            )
            .mount(&server)
            .await;
        let gateway = gateway(&server);
        let outcome = gateway.verify(&order(), "token-1").await.unwrap();
        (gateway, outcome)
    }

    #[tokio::test]
    async fn verify_failure_codes() {
        let (gateway, outcome) = verify_with_code("-1").await;
        assert_eq!(outcome, VerifyOutcome::NotPaid { reason: NotPaidReason::Declined, code: "-1".into() });
        // Known unsettled here, so Sadad's automatic reversal is all that is needed.
        assert_eq!(gateway.reverse(&order(), "token-1").await, Ok(()));
        assert!(gateway.reverse(&order(), "other-token").await.is_err());

        let (_, outcome) = verify_with_code("101").await;
        assert_eq!(outcome, VerifyOutcome::DebitedNotSettled { code: "101".into() });
        let (_, outcome) = verify_with_code("9999").await;
        assert_eq!(outcome, VerifyOutcome::DebitedNotSettled { code: "9999".into() });
    }

    #[tokio::test]
    async fn verify_timeout_and_5xx_are_unavailable_never_not_paid() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Advice/Verify"))
            .respond_with(ResponseTemplate::new(200).set_body_json(verified_body()).set_delay(Duration::from_secs(3)))
            .mount(&server)
            .await;
        let err = gateway(&server).verify(&order(), "token-1").await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");

        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Advice/Verify"))
            .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
            .mount(&server)
            .await;
        let gateway = gateway(&server);
        let err = gateway.verify(&order(), "token-1").await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
        // An unknown outcome must not make reverse claim that nothing is owed.
        assert!(gateway.reverse(&order(), "token-1").await.is_err());
    }

    #[tokio::test]
    async fn garbage_answer_is_a_protocol_error() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v0/Advice/Verify"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>hi</html>"))
            .mount(&server)
            .await;
        let err = gateway(&server).verify(&order(), "token-1").await.unwrap_err();
        assert!(matches!(err, PortError::Protocol(_)), "{err:?}");
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parse_callback_reads_the_bank_claim() {
        let gateway = SadadGateway::new(config("https://sadad.shaparak.ir".into()), reqwest::Client::new());
        let data = gateway.parse_callback(&fields(&[("OrderId", "42"), ("token", "abc"), ("ResCode", "0")])).unwrap();
        assert_eq!(
            data,
            CallbackData { order_id: 42, token: Some("abc".into()), claims_success: true, status_code: "0".into() }
        );

        let data = gateway.parse_callback(&fields(&[("OrderId", "42"), ("ResCode", "-1")])).unwrap();
        assert!(!data.claims_success);
        assert_eq!(data.token, None);

        for bad in [
            fields(&[("ResCode", "0"), ("Token", "abc")]),
            fields(&[("OrderId", "4x2"), ("ResCode", "0"), ("Token", "abc")]),
            fields(&[("OrderId", "42"), ("Token", "abc")]),
            fields(&[("OrderId", "42"), ("ResCode", "0")]),
        ] {
            assert!(matches!(gateway.parse_callback(&bad), Err(PortError::Protocol(_))), "{bad:?}");
        }
    }
}
