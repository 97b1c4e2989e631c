//! The actix extractors that say who is calling: one per kind of caller (citizen, staff,
//! administrator, operator, machine client, e-folder user), each accepting only its own
//! token audience and checking the token's server-side session. The tokens themselves
//! (issuing, verifying, keys, receipt signatures) are in [`crate::tokens`].

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use chrono::{DateTime, Utc};
use domain::record_ids::{AccountId, CitizenId, ClientId, OfficeId, StaffId};
use futures_util::future::LocalBoxFuture;

use crate::error::{ApiCode, ApiError};
use crate::state::AppState;
// Re-exported: callers name a caller's kind and its token in one place.
pub use crate::tokens::{Audience, Claims, ReceiptKind, TokenService, open_session, receipt_message};

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized(ApiCode::TokenMissing))?;
    let text = value.to_str().map_err(|_| ApiError::Unauthorized(ApiCode::TokenInvalid))?;
    let (scheme, token) = text.split_once(' ').ok_or(ApiError::Unauthorized(ApiCode::TokenInvalid))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(ApiCode::TokenInvalid));
    }
    Ok(token.trim())
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("application state missing"))
}

/// Verifies the request's bearer token for one audience. A valid token of another kind
/// (a citizen's on an administrator's path) is 403 `token_wrong_kind`: signing in again
/// would not help, a different account would.
fn verify_for(req: &HttpRequest, aud: Audience) -> Result<Claims, ApiError> {
    let state = state(req)?;
    let token = bearer(req)?;
    let now = state.now();
    state.tokens.verify(token, aud, now).map_err(|e| match e {
        ApiError::Unauthorized(ApiCode::TokenInvalid) if state.tokens.valid_for_another(token, aud, now) => {
            ApiError::Forbidden(ApiCode::TokenWrongKind)
        }
        e => e,
    })
}

/// Checks the token's server-side session: 401 `session_ended` after a logout (or for a
/// token without a session), `session_idle` when unused for longer than `idle`.
fn check_session(
    conn: &mut persistence::DbConn,
    claims: &Claims,
    aud: Audience,
    now: DateTime<Utc>,
    idle: Option<chrono::Duration>,
) -> Result<String, ApiError> {
    let sid = claims.sid.clone().ok_or(ApiError::Unauthorized(ApiCode::SessionEnded))?;
    match persistence::sessions::check(conn, &sid, aud.as_str(), &claims.sub, now.naive_utc(), idle)? {
        Ok(()) => Ok(sid),
        Err(persistence::sessions::Inactive::Ended) => Err(ApiError::Unauthorized(ApiCode::SessionEnded)),
        Err(persistence::sessions::Inactive::Idle) => Err(ApiError::Unauthorized(ApiCode::SessionIdle)),
    }
}

/// A citizen signed in with national code + serial + captcha, whose session was found
/// live. `citizen_id` is opaque. Only this module makes one: by checking the session
/// (the extractor), or by a first read that checked it ([`CitizenToken`]).
#[derive(Debug, Clone)]
pub struct CitizenPrincipal {
    pub citizen_id: CitizenId,
    /// The token's server-side session.
    pub session_id: String,
    _checked: SessionChecked,
}

/// Proof, private to this module, that a [`CitizenPrincipal`] was made by a session check.
#[derive(Debug, Clone, Copy)]
struct SessionChecked;

fn citizen(req: &HttpRequest) -> LocalBoxFuture<'static, Result<CitizenPrincipal, ApiError>> {
    let claims = verify_for(req, Audience::Citizen);
    let state = state(req).cloned();
    Box::pin(async move {
        let (claims, state) = (claims?, state?);
        let now = state.now();
        let sub = claims.sub.clone();
        let session_id = state
            .run_api(move |conn| {
                let sid = claims.sid.clone().ok_or(ApiError::Unauthorized(ApiCode::SessionEnded))?;
                let (live, catalog) = persistence::sessions::check_seeing_catalog(
                    conn,
                    &sid,
                    Audience::Citizen.as_str(),
                    &claims.sub,
                    now.naive_utc(),
                )?;
                live.map_err(|_| ApiError::Unauthorized(ApiCode::SessionEnded))?;
                Ok((sid, catalog))
            })
            .await
            .map(|(sid, catalog)| {
                // The catalog this request sees is at least this new, with no read of its own.
                if let Some(v) = catalog {
                    crate::state::catalog_seen(v);
                }
                sid
            })?;
        Ok(CitizenPrincipal { citizen_id: sub.into(), session_id, _checked: SessionChecked })
    })
}

impl FromRequest for CitizenPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        citizen(req)
    }
}

/// A citizen's token, verified (signature, audience, time) but with its server-side
/// session not yet checked: the extractor asks no database. The citizen it names is not
/// handed out; a use case reaches the citizen's data only through the methods below,
/// each of which checks the session in the same statement as its read (and reads the
/// catalog's version there too, as the session check of [`CitizenPrincipal`] does), so a
/// request costs one statement fewer and a logged-out, expired or foreign session is
/// still refused (401 `session_ended`) before anything is read.
#[derive(Debug, Clone)]
pub struct CitizenToken {
    citizen_id: CitizenId,
    /// `None`: a token without a session, refused at its check.
    session_id: Option<String>,
    /// Set once a read found the session live: the request's later reads (a retried
    /// transaction, the write after a bank call) do not check it again, as a request
    /// checked by the extractor is checked once.
    live: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CitizenToken {
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let claims = verify_for(req, Audience::Citizen)?;
        Ok(CitizenToken { citizen_id: claims.sub.into(), session_id: claims.sid, live: Default::default() })
    }

    fn principal(&self) -> CitizenPrincipal {
        CitizenPrincipal {
            citizen_id: self.citizen_id.clone(),
            session_id: self.session_id.clone().unwrap_or_default(),
            _checked: SessionChecked,
        }
    }

    /// The citizen, if this request already found the session live.
    fn already_checked(&self) -> Option<CitizenPrincipal> {
        self.live.load(std::sync::atomic::Ordering::Acquire).then(|| self.principal())
    }

    /// The audit log's actor of a request with this token (it names the citizen; it reads
    /// nothing).
    pub fn actor(&self, req: &HttpRequest) -> persistence::audit::Actor {
        use actix_web::HttpMessage;
        persistence::audit::Actor {
            kind: "citizen",
            id: Some(self.citizen_id.to_string()),
            request_id: req.extensions().get::<crate::middleware::RequestId>().map(|r| r.0.clone()),
            client_ip: crate::client_addr::of(req).map(|ip| ip.to_string()),
        }
    }

    /// The claim, or 401 for a token without a session.
    fn claim(&self, now: DateTime<Utc>) -> Result<persistence::sessions::Claim<'_>, ApiError> {
        let id = self.session_id.as_deref().ok_or(ApiError::Unauthorized(ApiCode::SessionEnded))?;
        Ok(persistence::sessions::Claim {
            id,
            audience: Audience::Citizen.as_str(),
            subject: self.citizen_id.as_str(),
            now: now.naive_utc(),
        })
    }

    /// The citizen, once a read found the session live: the catalog version read with it
    /// holds for the rest of the turn and (through [`AppState::run_api`]) the request.
    fn checked<T>(&self, read: persistence::sessions::Checked<T>) -> Result<(CitizenPrincipal, T), ApiError> {
        match read {
            persistence::sessions::Checked::Ended => Err(ApiError::Unauthorized(ApiCode::SessionEnded)),
            persistence::sessions::Checked::Live { found, catalog } => {
                if let Some(v) = catalog {
                    crate::state::SeenInTurn::saw(v);
                }
                self.live.store(true, std::sync::atomic::Ordering::Release);
                Ok((self.principal(), found))
            }
        }
    }

    /// Checks the session on its own (a use case whose first read is not the citizen's
    /// application), inside a turn at the database.
    pub fn check_in(&self, conn: &mut persistence::DbConn, now: DateTime<Utc>) -> Result<CitizenPrincipal, ApiError> {
        if let Some(principal) = self.already_checked() {
            return Ok(principal);
        }
        let read = persistence::sessions::check_claim(conn, self.claim(now)?)?;
        self.checked(read).map(|(principal, ())| principal)
    }

    /// [`Self::check_in`] in a turn of its own.
    pub async fn check(self, state: &AppState) -> Result<CitizenPrincipal, ApiError> {
        let now = state.now();
        state.run_api(move |conn| self.check_in(conn, now)).await
    }

    /// The citizen's current application (none before the first personal information),
    /// read with the session's check; locked for the write transaction when `lock`.
    pub fn current_application(
        &self,
        conn: &mut persistence::DbConn,
        now: DateTime<Utc>,
        lock: bool,
    ) -> Result<(CitizenPrincipal, Option<persistence::applications::ApplicationRow>), ApiError> {
        if let Some(principal) = self.already_checked() {
            let row = if lock {
                persistence::applications::current_for_citizen_locked(conn, &self.citizen_id)?
            } else {
                persistence::applications::current_for_citizen(conn, &self.citizen_id)?
            };
            return Ok((principal, row));
        }
        let read = persistence::sessions::current_application(conn, self.claim(now)?, lock)?;
        self.checked(read)
    }

    /// The citizen's own row, read with the session's check; 401 `token_invalid` for a
    /// live session of a citizen who is no more.
    pub fn citizen(
        &self,
        conn: &mut persistence::DbConn,
        now: DateTime<Utc>,
    ) -> Result<(CitizenPrincipal, persistence::citizens::CitizenRow), ApiError> {
        let (principal, row) = match self.already_checked() {
            Some(principal) => (principal, persistence::citizens::find(conn, &self.citizen_id)?),
            None => self.checked(persistence::sessions::citizen(conn, self.claim(now)?)?)?,
        };
        Ok((principal, row.ok_or(ApiError::Unauthorized(ApiCode::TokenInvalid))?))
    }
}

impl FromRequest for CitizenToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(CitizenToken::of(req))
    }
}

/// An optional [`CitizenToken`]: anonymous callers are fine, a bad token is not.
#[derive(Debug, Clone)]
pub struct MaybeCitizenToken(pub Option<CitizenToken>);

impl FromRequest for MaybeCitizenToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if req.headers().get(header::AUTHORIZATION).is_none() {
            return std::future::ready(Ok(MaybeCitizenToken(None)));
        }
        std::future::ready(CitizenToken::of(req).map(|t| MaybeCitizenToken(Some(t))))
    }
}

/// A machine client (kiosk or card production system).
#[derive(Debug, Clone)]
pub struct MachinePrincipal {
    pub client_id: ClientId,
    pub kind: String,
    pub scopes: Vec<String>,
}

impl MachinePrincipal {
    pub fn require(&self, kind: &str, scope: &str) -> Result<(), ApiError> {
        if self.kind == kind && self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(ApiCode::Forbidden))
        }
    }
}

impl MachinePrincipal {
    /// From the token alone (signature, audience, time), before the database is asked.
    fn from_token(req: &HttpRequest) -> Result<(Self, Option<i32>), ApiError> {
        verify_for(req, Audience::Machine).map(|c| {
            let principal = MachinePrincipal {
                client_id: c.sub.into(),
                kind: c.role.unwrap_or_default(),
                scopes: c.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
            };
            (principal, c.tv)
        })
    }

    /// Whether the client is still enabled and the token's version is its current one
    /// (rotating the secret or disabling the client bumps it): 401 `token_invalid` if not.
    fn still_valid(
        req: &HttpRequest,
        principal: Self,
        version: Option<i32>,
    ) -> LocalBoxFuture<'static, Result<Self, ApiError>> {
        let state = state(req).cloned();
        Box::pin(async move {
            let state = state?;
            let id = principal.client_id.clone();
            let row = state.run(move |conn| persistence::back_office::client(conn, &id)).await?;
            match row {
                Some(c) if !c.disabled && Some(c.token_version) == version => Ok(principal),
                _ => Err(ApiError::Unauthorized(ApiCode::TokenInvalid)),
            }
        })
    }
}

impl FromRequest for MachinePrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        match Self::from_token(req) {
            Ok((principal, version)) => Self::still_valid(req, principal, version),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

/// Declares an extractor for machine clients of one kind and scope, so the check runs
/// before the request body is read (a client without the scope gets 403, whatever it sent).
macro_rules! scoped_machine {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub MachinePrincipal);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let checked = MachinePrincipal::from_token(req)
                    .and_then(|(c, v)| c.require($kind, $scope).map(|()| (c, v)));
                match checked {
                    Ok((c, v)) => {
                        let valid = MachinePrincipal::still_valid(req, c, v);
                        Box::pin(async move { Ok($name(valid.await?)) })
                    }
                    Err(e) => Box::pin(async move { Err(e) }),
                }
            }
        }
    };
}

scoped_machine!(
    /// A partner kiosk allowed to register applications.
    KioskClient, "kiosk", "kiosk:applications"
);
scoped_machine!(
    /// The card production line, allowed to report production events.
    ProductionClient, "production", "production:events"
);

/// A signed-in staff member, checked against the database on every request so a
/// disabled account or a reset password stops its tokens at once.
#[derive(Debug, Clone)]
pub struct StaffPrincipal {
    pub staff_id: StaffId,
    /// The token's server-side session.
    pub session_id: String,
    pub username: String,
    pub role: StaffRole,
    pub office_id: Option<OfficeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    Operator,
    Admin,
}

impl StaffPrincipal {
    /// The one place staff roles are checked.
    pub fn require(&self, role: StaffRole) -> Result<(), ApiError> {
        if self.role == role { Ok(()) } else { Err(ApiError::Forbidden(ApiCode::Forbidden)) }
    }

    /// The office an operator works at.
    pub fn office(&self) -> Result<&OfficeId, ApiError> {
        self.require(StaffRole::Operator)?;
        self.office_id.as_ref().ok_or(ApiError::Forbidden(ApiCode::Forbidden))
    }
}

impl FromRequest for StaffPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = verify_for(req, Audience::Staff);
        let state = state(req).cloned();
        Box::pin(async move {
            let claims = claims?;
            let state = state?;
            let now = state.now();
            let idle = chrono::Duration::minutes(state.config.auth.staff_idle_minutes);
            let (user, session_id) = state
                .run_api(move |conn| {
                    let user = persistence::staff::find(conn, &StaffId::from(claims.sub.as_str()))?;
                    let user = user.ok_or(ApiError::Unauthorized(ApiCode::TokenInvalid))?;
                    if user.disabled || Some(user.token_version) != claims.tv {
                        return Err(ApiError::Unauthorized(ApiCode::TokenInvalid));
                    }
                    Ok((user, check_session(conn, &claims, Audience::Staff, now, Some(idle))?))
                })
                .await?;
            let role = match user.role.as_str() {
                "admin" => StaffRole::Admin,
                _ => StaffRole::Operator,
            };
            Ok(StaffPrincipal {
                staff_id: user.id,
                session_id,
                username: user.username,
                role,
                office_id: user.office_id,
            })
        })
    }
}

/// An administrator (any other caller: 401 without a staff token, 403 with one).
#[derive(Debug, Clone)]
pub struct AdminPrincipal(pub StaffPrincipal);

impl FromRequest for AdminPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Decided from the token at once, so a caller without the role learns nothing about
        // the request body (which is extracted after this).
        match verify_for(req, Audience::Staff) {
            Err(e) => return Box::pin(async move { Err(e) }),
            Ok(c) if c.role.as_deref() != Some("admin") => {
                return Box::pin(async { Err(ApiError::Forbidden(ApiCode::Forbidden)) });
            }
            Ok(_) => {}
        }
        let staff = StaffPrincipal::from_request(req, payload);
        Box::pin(async move {
            let staff = staff.await?;
            staff.require(StaffRole::Admin)?;
            Ok(AdminPrincipal(staff))
        })
    }
}

/// An enrollment-office operator (an administrator gets 403: operators act for an office).
#[derive(Debug, Clone)]
pub struct OperatorPrincipal(pub StaffPrincipal);

impl OperatorPrincipal {
    pub fn office(&self) -> Result<&OfficeId, ApiError> {
        self.0.office()
    }
}

impl FromRequest for OperatorPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        match verify_for(req, Audience::Staff) {
            Err(e) => return Box::pin(async move { Err(e) }),
            Ok(c) if c.role.as_deref() != Some("operator") => {
                return Box::pin(async { Err(ApiError::Forbidden(ApiCode::Forbidden)) });
            }
            Ok(_) => {}
        }
        let staff = StaffPrincipal::from_request(req, payload);
        Box::pin(async move {
            let staff = staff.await?;
            staff.require(StaffRole::Operator)?;
            Ok(OperatorPrincipal(staff))
        })
    }
}

/// A signed-in e-folder user, checked against the database on every request: a changed
/// or reset password stops older tokens at once, and the first-login flag is the
/// database's, not the token's.
#[derive(Debug, Clone)]
pub struct EfolderPrincipal {
    pub account: persistence::efolder::AccountRow,
    /// The token's server-side session.
    pub session_id: String,
}

impl EfolderPrincipal {
    /// Every e-folder operation except changing the password needs the generated
    /// password changed first.
    pub fn require_password_changed(&self) -> Result<(), ApiError> {
        if self.account.must_change_password {
            Err(ApiError::Forbidden(ApiCode::PasswordChangeRequired))
        } else {
            Ok(())
        }
    }
}

impl FromRequest for EfolderPrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = verify_for(req, Audience::Efolder);
        let state = state(req).cloned();
        Box::pin(async move {
            let claims = claims?;
            let state = state?;
            let now = state.now();
            state
                .run_api(move |conn| {
                    let account = persistence::efolder::find(conn, &AccountId::from(claims.sub.as_str()))?;
                    let account = account.ok_or(ApiError::Unauthorized(ApiCode::TokenInvalid))?;
                    if Some(account.token_version) != claims.tv {
                        return Err(ApiError::Unauthorized(ApiCode::TokenInvalid));
                    }
                    let session_id = check_session(conn, &claims, Audience::Efolder, now, None)?;
                    Ok(EfolderPrincipal { account, session_id })
                })
                .await
        })
    }
}
