//! Reading the API in-process: a page sends the same request the browser
//! could send, with the browser's session cookie, through the API's router,
//! and reads the answer into the wire types. No network, no second copy of
//! a route, and the route table's roles apply unchanged.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::error::UiError;
use crate::session::{SESSION_COOKIE, Session};

/// The API's router, as pages call it.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

impl Api {
    /// `router` answers `/api/v1/...` as the server does.
    pub fn new(router: Router) -> Api {
        Api { router }
    }

    /// `GET uri` as `session`, its answer read as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        session: &Session,
        uri: &str,
    ) -> Result<T, UiError> {
        let bytes = self.get_bytes(session, uri).await?;
        serde_json::from_slice(&bytes).map_err(|e| UiError::Unreadable {
            uri: uri.to_owned(),
            detail: e.to_string(),
        })
    }

    async fn get_bytes(&self, session: &Session, uri: &str) -> Result<Vec<u8>, UiError> {
        let unreadable = |detail: String| UiError::Unreadable {
            uri: uri.to_owned(),
            detail,
        };
        let request = Request::get(uri)
            .header(
                header::COOKIE,
                format!("{SESSION_COOKIE}={}", session.session_id),
            )
            .body(Body::empty())
            .map_err(|e| unreadable(e.to_string()))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreadable(e.to_string()))?
            .to_bytes();
        if status != StatusCode::OK {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("the API answered {status}"));
            return Err(UiError::Api { status, message });
        }
        Ok(bytes.to_vec())
    }
}
