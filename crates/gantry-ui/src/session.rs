//! Who is looking at a page: what `gantry-api` found behind the session
//! cookie. The UI uses it to say who is signed in, to leave out buttons the
//! role cannot use (the API refuses them anyway) and to send the CSRF token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

/// The cookie holding the session id (never the API token).
pub const SESSION_COOKIE: &str = "gantry_session";
/// The header a page's script sends the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The role of the token a session signed in with, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Viewer,
    Operator,
    Admin,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Viewer => "viewer",
            Access::Operator => "operator",
            Access::Admin => "admin",
        }
    }
}

/// A signed-in browser, handed to pages as a request extension.
#[derive(Clone, Debug)]
pub struct Session {
    /// The name of the token it signed in with.
    pub name: String,
    pub access: Access,
    /// Sent back by scripts with every change (`CSRF_HEADER`).
    pub csrf: String,
    /// The session id from the cookie, forwarded when a page reads the API.
    pub session_id: String,
}

impl Session {
    pub fn can_operate(&self) -> bool {
        self.access >= Access::Operator
    }

    pub fn is_admin(&self) -> bool {
        self.access >= Access::Admin
    }
}

/// Without a session, a page answers with a redirect to `/login` that comes
/// back to it.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Session, Response> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(session.clone());
        }
        let back = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let next = percent_encoding::utf8_percent_encode(&back, percent_encoding::NON_ALPHANUMERIC);
        Err(Redirect::to(&format!("/login?next={next}")).into_response())
    }
}
