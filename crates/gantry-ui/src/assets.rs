//! The CSS and scripts, embedded in the binary. They are served under
//! `/assets/VERSION/FILE`, where VERSION is a hash of all of them: a page
//! always names the assets of the binary that rendered it, so they can be
//! cached for a year (`immutable`), and the scripts' relative `import`s stay
//! within one version. Each is gzipped once, on first request.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Where assets are served from.
pub const ASSET_PREFIX: &str = "/assets/";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/ui.css"),
    },
    Asset {
        name: "actions.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/actions.js"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/live.js"),
    },
    Asset {
        name: "ansi.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/ansi.js"),
    },
];

/// The hash naming this binary's set of assets.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            hash.update(asset.name.as_bytes());
            hash.update(asset.bytes);
        }
        hex::encode(&hash.finalize()[..6])
    })
}

/// The stylesheet's text, which every signed-in page carries in its head: a
/// stylesheet linked is fetched (from the cache at best) before anything is
/// painted, and on a loaded machine that fetch is what the slowest first
/// paints waited for.
pub fn stylesheet() -> &'static str {
    let css = ASSETS
        .iter()
        .find(|a| a.name == "ui.css")
        .map_or(&[][..], |a| a.bytes);
    std::str::from_utf8(css).unwrap_or_default()
}

/// The URL of one asset, for the templates.
pub fn url(name: &str) -> String {
    format!("{ASSET_PREFIX}{}/{name}", version())
}

fn gzipped() -> &'static [Vec<u8>] {
    static GZIPPED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    GZIPPED.get_or_init(|| ASSETS.iter().map(|a| gzip(a.bytes)).collect())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// What the UI ships to a browser, gzipped, in bytes (the budget is 200 KB).
pub fn shipped_gzip_bytes() -> usize {
    gzipped().iter().map(Vec::len).sum()
}

pub async fn serve(Path((wanted, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, format!("no asset {file:?}")).into_response();
    };
    let asset = &ASSETS[index];
    // An old page asking for its own version of an asset gets this binary's,
    // but not for keeps.
    let cache = if wanted == version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let mut response = if accepts_gzip {
        let mut response = gzipped()[index].clone().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        asset.bytes.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
