//! Browser sessions of the web UI (`gantry-ui`): `POST /login` takes an API
//! token and sets a session cookie, `POST /logout` ends the session, and the
//! API accepts the cookie as it accepts a bearer token.
//!
//! The cookie holds a random session id, never the token; the store keeps
//! the id's SHA-256 with the token it signed in with, so revoking the token
//! ends its sessions (within `auth::CACHE_TTL`). The cookie is `HttpOnly`,
//! `SameSite=Strict`, and `Secure` when the browser reached the server over
//! HTTPS. A request authenticated by the cookie that changes anything (any
//! method but GET, HEAD and OPTIONS) must also carry the session's CSRF
//! token (the synchronizer pattern: the pages hold it, a cross-site page
//! cannot read it) and come from the same origin (`Sec-Fetch-Site`, else
//! `Origin`).

use std::time::Duration;

use axum::Form;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use gantry_store::UiSessionRecord;
use gantry_ui::{Access, CSRF_HEADER, SESSION_COOKIE, Session};
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::auth::{Caller, Role, ShortLivedCache, authenticate_token, hash_token};
use crate::error::ApiError;
use crate::{AppState, now_millis};

/// How long a session lasts after signing in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The largest sign-in form: a token and a path.
const LOGIN_BODY_LIMIT: usize = 16 << 10;

/// A session the store confirmed, with its CSRF token.
#[derive(Clone)]
pub(crate) struct CookieSession {
    pub caller: Caller,
    pub csrf: String,
}

/// Recently confirmed sessions, by the hash of their id, as tokens are
/// cached: a page that reads the API several times costs one lookup.
pub(crate) type SessionCache = ShortLivedCache<CookieSession>;

/// The UI's pages and the sign-in and sign-out routes, each page handed its
/// [`Session`] when the cookie holds a live one. `api` is the API's router,
/// which the pages read in-process.
pub(crate) fn ui_router(state: &AppState, api: Router) -> Router {
    let login = post(login)
        .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT))
        .with_state(state.clone());
    let logout = post(logout)
        .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT))
        .with_state(state.clone());
    gantry_ui::router(gantry_ui::Api::new(api))
        .route("/login", login)
        .route("/logout", logout)
        .layer(axum::middleware::from_fn_with_state(state.clone(), attach))
}

/// The session id in the request's cookies, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The caller behind a session cookie; for a change, only with the
/// session's CSRF token and from the same origin.
pub(crate) async fn authenticate_cookie(
    state: &AppState,
    id: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let session = lookup(state, id).await?.ok_or_else(|| {
        ApiError::unauthorized("the session has ended (signed out, expired or its token revoked): sign in again at /login")
    })?;
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        check_csrf(&session, sent)?;
        check_same_origin(headers)?;
    }
    Ok(session.caller)
}

async fn lookup(state: &AppState, id: &str) -> Result<Option<CookieSession>, ApiError> {
    let hash = hash_token(id);
    if let Some(session) = state.sessions().get(&hash) {
        return Ok(Some(session));
    }
    let Some((record, token)) = state.store().ui_session(&hash, now_millis()).await? else {
        return Ok(None);
    };
    let session = CookieSession {
        caller: Caller {
            role: Role::of_record(&token.role),
            token_id: token.id,
            name: token.name,
        },
        csrf: record.csrf,
    };
    state.sessions().put(hash, session.clone());
    Ok(Some(session))
}

fn check_csrf(session: &CookieSession, sent: Option<&str>) -> Result<(), ApiError> {
    match sent {
        Some(sent) if bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::forbidden(format!(
            "the {CSRF_HEADER} header does not match this session's CSRF token: reload the page"
        ))),
        None => Err(ApiError::forbidden(format!(
            "a change made with the session cookie needs the session's CSRF token in the {CSRF_HEADER} header"
        ))),
    }
}

/// A browser says where a request comes from in `Sec-Fetch-Site` (all
/// current ones) or `Origin` (every POST); a request saying neither is not
/// from one of our pages.
fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a change made with the session cookie must come from this server's pages, not from a {site} page"
            )))
        };
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host))
            if origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                == Some(host) =>
        {
            Ok(())
        }
        (Some(origin), _) => Err(ApiError::forbidden(format!(
            "a change made with the session cookie must come from this server's pages, not from {origin}"
        ))),
        (None, _) => Err(ApiError::forbidden(
            "a change made with the session cookie must say where it comes from (Origin or Sec-Fetch-Site)",
        )),
    }
}

/// Middleware of the UI's routes: a live session cookie becomes the page's
/// [`Session`].
async fn attach(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(id) = session_id(request.headers()).map(str::to_owned) {
        match lookup(&state, &id).await {
            Ok(Some(session)) => {
                let access = match session.caller.role {
                    Role::Viewer => Access::Viewer,
                    Role::Operator => Access::Operator,
                    Role::Admin => Access::Admin,
                };
                request.extensions_mut().insert(Session {
                    name: session.caller.name,
                    access,
                    csrf: session.csrf,
                    session_id: id,
                });
            }
            Ok(None) => {}
            Err(error) => return error.into_response(),
        }
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = gantry_ui::safe_next(form.next.as_deref()).to_owned();
    if let Err(refused) = check_same_origin(&headers) {
        return gantry_ui::login_page(&next, Some(&refused.message), StatusCode::FORBIDDEN);
    }
    let caller = match authenticate_token(&state, form.token.trim()).await {
        Ok(caller) => caller,
        Err(refused) => {
            tracing::info!("sign-in refused: {}", refused.message);
            return gantry_ui::login_page(
                &next,
                Some("that token is not valid: it is mistyped, revoked or not a Gantry API token"),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let id = random_hex();
    let now = now_millis();
    let record = UiSessionRecord {
        hash: hash_token(&id),
        token_id: caller.token_id.clone(),
        csrf: random_hex(),
        created_at: now,
        expires_at: now + SESSION_TTL.as_millis() as i64,
    };
    if let Err(error) = state.store().create_ui_session(&record).await {
        return ApiError::from(error).into_response();
    }
    tracing::info!(token = %caller.name, role = %caller.role, "signed in to the web UI");
    redirect_setting_cookie(&next, &id, SESSION_TTL, &headers)
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(id) = session_id(&headers) {
        match lookup(&state, id).await {
            Ok(Some(session)) => {
                if let Err(refused) = check_csrf(&session, form.csrf.as_deref())
                    .and_then(|()| check_same_origin(&headers))
                {
                    return refused.into_response();
                }
                let hash = hash_token(id);
                state.sessions().forget(&hash);
                if let Err(error) = state.store().delete_ui_session(&hash).await {
                    return ApiError::from(error).into_response();
                }
                tracing::info!(token = %session.caller.name, "signed out of the web UI");
            }
            Ok(None) => {}
            Err(error) => return error.into_response(),
        }
    }
    redirect_setting_cookie("/login", "", Duration::ZERO, &headers)
}

/// `; Secure` when the browser reached us over HTTPS (directly or through a
/// proxy that says so).
fn secure_suffix(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
        || headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("https://"));
    if https { "; Secure" } else { "" }
}

/// A redirect to `to` that sets the session cookie to `value` for `max_age`
/// (zero clears it).
fn redirect_setting_cookie(
    to: &str,
    value: &str,
    max_age: Duration,
    headers: &HeaderMap,
) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        secure_suffix(headers)
    );
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
