//! `POST /api/v1/ussd`: the `*4*6090#` gateway's callback (docs/domain/public.md).
//! Africa's Talking–style form fields in, `CON …`/`END …` plain text out, built from
//! live data on every request. The menu itself is [`crate::ussd`].

use actix_web::{HttpRequest, HttpResponse, post, web};
use domain::ids::Mobile;
use domain::record_ids::OfficeId;
use persistence::{PiiKind, applications, offices};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{ApiCode, ApiError, Problem};
use crate::middleware::RequestLang;
use crate::state::AppState;
use crate::ussd::{self, Facts, Reply};

/// The most applications one mobile's menu lists.
const MAX_APPLICATIONS: i64 = 20;

/// What the gateway posts (`application/x-www-form-urlencoded`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UssdRequest {
    /// The gateway's session id (the menu is stateless; it is only logged by the gateway).
    #[serde(rename = "sessionId")]
    #[schema(example = "ATUid_0b4e1c5f8f6a")]
    pub session_id: String,
    /// The caller's mobile, in any usual form (`+989145128136`, `09145128136`).
    #[serde(rename = "phoneNumber")]
    #[schema(example = "+989145128136")]
    pub phone_number: String,
    /// The code dialled.
    #[serde(rename = "serviceCode")]
    #[schema(example = "*4*6090#")]
    pub service_code: String,
    /// Everything the caller typed in this session, `*`-separated (empty on the first screen).
    #[serde(default)]
    #[schema(example = "1*0")]
    pub text: String,
    /// The mobile network's code, when the gateway sends it.
    #[serde(rename = "networkCode", default)]
    #[schema(example = "43211")]
    pub network_code: Option<String>,
}

/// Compares secrets in time independent of where they differ (both are hashed first, so
/// their lengths do not show either).
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    crate::secrets::constant_time_eq(&a, &b)
}

/// The secret and/or the allow-list; with neither, only the embedded default answers,
/// and only to this machine.
/// The USSD gateway, authorised before the form is read: a caller without the secret
/// (or outside the allow-list) is turned away whatever it sent.
pub struct UssdGateway;

impl actix_web::FromRequest for UssdGateway {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>();
        std::future::ready(match state {
            Some(state) => authorize(state, req).map(|()| UssdGateway),
            None => Err(ApiError::internal("application state missing")),
        })
    }
}

fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let config = &state.config.ussd;
    let secret = config.secret.as_deref().filter(|s| !s.is_empty());
    // Behind the load balancer: the gateway's address, not the balancer's.
    let peer = crate::client_addr::of(req);
    if secret.is_none() && config.allowed_ips.is_empty() {
        let local = peer.is_some_and(|ip| match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6.is_loopback(), |v4| v4.is_loopback()),
            v4 => v4.is_loopback(),
        });
        return if state.config.is_embedded() && local {
            Ok(())
        } else {
            Err(ApiError::NotConfigured(ApiCode::UssdNotConfigured))
        };
    }
    if let Some(expected) = secret {
        let given = req.headers().get("x-ussd-secret").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same_secret(given, expected) {
            return Err(ApiError::Unauthorized(ApiCode::UssdSecretInvalid));
        }
    }
    if !config.allowed_ips.is_empty() && !peer.is_some_and(|ip| config.allows(ip)) {
        return Err(ApiError::Forbidden(ApiCode::UssdAddressForbidden));
    }
    Ok(())
}

/// The USSD menu for the calling mobile: its applications (a mother may have several),
/// then the chosen one's status, next step, appointment (Jalali date, Persian digits) and
/// delivery. Screens are at most 80 characters; `0` shows more, `00` goes back. No
/// national code is ever shown — applications are told apart by first name and the
/// tracking code's last four digits.
///
/// Authenticated by `X-USSD-Secret` (`[ussd] secret`) and/or the gateway address
/// (`[ussd] allowed_ips`).
#[utoipa::path(operation_id = "ussd_menu", tag = "ussd",
    request_body(content = UssdRequest, content_type = "application/x-www-form-urlencoded"),
    security(("ussd_secret" = []), ()),
    responses(
        (status = 200, description = "The screen: `CON …` to continue, `END …` to finish", content_type = "text/plain; charset=utf-8", body = String,
            example = json!("CON مریم (۶۷۰۰)\nوضعیت: ثبت نام شده\n۰ بیشتر")),
        (status = 400, description = "Malformed form (`malformed_form`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong `X-USSD-Secret` (`ussd_secret_invalid`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's address is not on `[ussd] allowed_ips` (`ussd_address_forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/x-www-form-urlencoded`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Neither a secret nor an allow-list is configured (`ussd_not_configured`), or the database is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/api/v1/ussd")]
pub async fn ussd_menu(
    _gateway: UssdGateway,
    state: web::Data<AppState>,
    lang: RequestLang,
    form: web::Form<UssdRequest>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let reply = match Mobile::parse(&form.phone_number) {
        Err(_) => Reply::End(
            match lang.0 {
                domain::Lang::Fa => "این سرویس فقط برای شماره‌های همراه ایران است.",
                domain::Lang::En => "This service is for Iranian mobile numbers only.",
            }
            .into(),
        ),
        Ok(mobile) => menu(&state, &mobile, &form.text, lang.0).await?,
    };
    state.metrics.event("ussd", if matches!(reply, Reply::Con(_)) { "continue" } else { "end" });
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(reply.render()))
}

/// Two queries: the mobile's applications, then the offices they mention.
async fn menu(state: &AppState, mobile: &Mobile, text: &str, lang: domain::Lang) -> Result<Reply, ApiError> {
    let hashes = state.pii.lookups(PiiKind::Mobile, mobile.as_str());
    let (rows, offices) = state
        .run(move |conn| {
            let rows = applications::find_by_mobile(conn, &hashes, MAX_APPLICATIONS)?;
            let mut ids: Vec<OfficeId> =
                rows.iter().flat_map(|r| r.slot_office_id.iter().chain(r.delivery_office_id.iter())).cloned().collect();
            ids.sort();
            ids.dedup();
            let offices = if ids.is_empty() { Vec::new() } else { offices::find_many(conn, &ids)? };
            Ok((rows, offices))
        })
        .await?;
    let now = state.now();
    let office_name =
        |id: Option<&OfficeId>| id.and_then(|id| offices.iter().find(|o| &o.id == id)).map(|o| o.name.as_str());
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let app = row.to_domain()?;
        let personal = row.personal(&state.pii)?;
        let facts = Facts {
            app: &app,
            first_name: personal.first_name.as_deref(),
            slot_office: office_name(app.slot.as_ref().map(|s| &s.office_id)),
            delivery_office: office_name(app.effective_delivery_office()),
        };
        entries.push(ussd::entry(&facts, now, &state.policy, lang));
    }
    Ok(ussd::respond(&entries, text, lang))
}
