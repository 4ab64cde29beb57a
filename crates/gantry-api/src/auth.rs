//! Bearer-token authentication. Tokens are `gantry_` + 32 random bytes in hex;
//! the store keeps only their SHA-256. A verified hash is remembered for a
//! few seconds so that a busy client does not cause a store write (the
//! `last_used_at` update) on every request, which bounds how long a token
//! revoked elsewhere keeps working to [`CACHE_TTL`].
//!
//! Every token has a [`Role`]; each route of the table in `lib.rs` names the
//! least role it needs, and [`require_role`] refuses a weaker token with 403
//! before the handler runs.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gantry_store::{Store, StoreError, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::{AppState, now_millis};

pub const TOKEN_PREFIX: &str = "gantry_";
/// The file, in the data directory, holding the token created on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// How long a verified token is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// Who made the request: the token it carried.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

/// What a token may do, weakest first: each role may do everything the ones
/// before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything but secrets and other tokens.
    Viewer,
    /// Also runs, cancels, judges and restarts executions, deploys, applies
    /// pipeline files and pushes to hosted repositories.
    Operator,
    /// Also manages tokens, secrets, signing keys and the server's own data.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(word: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == word)
    }

    /// The role of a stored token. A word this server does not know (written
    /// by a newer one) grants the least, never more.
    pub(crate) fn of_record(word: &str) -> Role {
        Role::parse(word).unwrap_or(Role::Viewer)
    }

    /// `a viewer`, `an operator`, `an admin`.
    fn with_article(self) -> String {
        match self {
            Role::Viewer => "a viewer".to_owned(),
            Role::Operator => "an operator".to_owned(),
            Role::Admin => "an admin".to_owned(),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 403 for `caller` on something that needs `needed`, or nothing when its
/// role is enough.
pub fn check_role(caller: &Caller, needed: Role) -> Result<(), ApiError> {
    if caller.role >= needed {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "this needs the {needed} role; token {:?} is {}",
        caller.name,
        caller.role.with_article()
    )))
}

#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A fresh secret token.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// What the store keeps of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// On the first start, or whenever no unrevoked admin token is left (so that
/// revoking the last one cannot lock everyone out of tokens and secrets),
/// creates the admin token `admin` and writes it to `DATA_DIR/admin-token`,
/// readable by the owner only. Returns the path when it created one.
pub async fn ensure_admin_token(
    store: &Store,
    data_dir: &Path,
) -> Result<Option<PathBuf>, AdminTokenError> {
    let live = store.tokens().await?;
    let live: Vec<&TokenRecord> = live.iter().filter(|t| t.revoked_at.is_none()).collect();
    if live.iter().any(|t| Role::of_record(&t.role) == Role::Admin) {
        return Ok(None);
    }
    // A live token that is not an admin may hold the name `admin`.
    let name = if live.iter().any(|t| t.name == "admin") {
        format!("admin-{}", now_millis())
    } else {
        "admin".to_owned()
    };
    let secret = generate_token();
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    // The file is written before the hash is stored: if the store write fails,
    // the next start simply makes a new token, whereas the other order could
    // leave a stored admin token that nobody knows.
    write_private_file(&path, &format!("{secret}\n")).map_err(|source| AdminTokenError::Io {
        path: path.clone(),
        source,
    })?;
    let now = now_millis();
    let record = TokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        hash: hash_token(&secret),
        created_at: now,
        revoked_at: None,
        last_used_at: None,
        role: Role::Admin.as_str().to_owned(),
    };
    store.create_token(&record).await?;
    Ok(Some(path))
}

/// Writes `text` to `path` through a temporary file created with mode 0600,
/// so the secret is never readable by others, not even for a moment, and a
/// reader never sees half a file.
fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Remembers recently verified token hashes.
pub type TokenCache = ShortLivedCache<Caller>;

/// Values confirmed by the store, trusted for [`CACHE_TTL`] by their key
/// (a hash of the secret that found them).
pub struct ShortLivedCache<V> {
    verified: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V> Default for ShortLivedCache<V> {
    fn default() -> Self {
        ShortLivedCache {
            verified: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> ShortLivedCache<V> {
    pub(crate) fn get(&self, hash: &str) -> Option<V> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let (value, at) = verified.get(hash)?;
        (at.elapsed() < CACHE_TTL).then(|| value.clone())
    }

    pub(crate) fn put(&self, hash: String, value: V) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() > 1024 {
            verified.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        verified.insert(hash, (value, Instant::now()));
    }

    /// Forgets one entry (a session signed out here).
    pub(crate) fn forget(&self, hash: &str) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
    }

    /// Forgets everything, so that a revocation through this server takes
    /// effect at once.
    pub fn clear(&self) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Middleware of one route: answers 401 unless the request carries a valid
/// token, 403 unless its role is at least the route's, and otherwise hands
/// the [`Caller`] to the handler as an extension.
pub async fn require_role(
    State((state, needed)): State<(AppState, Role)>,
    mut request: Request,
    next: Next,
) -> Response {
    // A bearer token wins; a browser of the web UI sends its session cookie instead.
    let bearer = request.headers().get(header::AUTHORIZATION);
    let cookie = crate::ui_session::session_id(request.headers());
    let authenticated = match (bearer, cookie) {
        (None, Some(id)) => {
            crate::ui_session::authenticate_cookie(&state, id, request.method(), request.headers())
                .await
        }
        _ => authenticate(&state, bearer).await,
    };
    match authenticated {
        Ok(caller) => {
            if let Err(refusal) = check_role(&caller, needed) {
                tracing::info!(token = %caller.name, role = %caller.role, needed = %needed, path = %request.uri().path(), "request refused: role too low");
                return refusal.into_response();
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            let mut response = error.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

async fn authenticate(state: &AppState, header: Option<&HeaderValue>) -> Result<Caller, ApiError> {
    let token = header
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing bearer token: send the header Authorization: Bearer TOKEN",
            )
        })?;
    let invalid = || ApiError::unauthorized("invalid or revoked token");
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(invalid());
    }
    let hash = hash_token(token);
    if let Some(caller) = state.tokens().get(&hash) {
        return Ok(caller);
    }
    let record = state
        .store()
        .use_token(&hash, now_millis())
        .await?
        .ok_or_else(invalid)?;
    let caller = Caller {
        role: Role::of_record(&record.role),
        token_id: record.id,
        name: record.name,
    };
    state.tokens().put(hash, caller.clone());
    Ok(caller)
}

/// Checks a token given some other way than a bearer header (git sends it as the password
/// of HTTP basic auth).
pub(crate) async fn authenticate_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ApiError::unauthorized("invalid or revoked token"))?;
    authenticate(state, Some(&header)).await
}
