//! The web UI's sign-in over plain HTTP: the session cookie and what it
//! may do, the CSRF and same-origin rules on changes, sign-out, a revoked
//! token ending its sessions, and the embedded assets' caching. The same
//! flows in a real browser are in `ui_browser`.

use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;

use crate::harness::{Backend, Server};

const PIPELINE: &str = r#"
pipelines:
  - name: hello
    stages:
      - id: greet
        type: run
        steps:
          - script: echo hello
"#;

fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Signs in with `token`; the `gantry_session=…` pair and the Set-Cookie line.
fn sign_in(server: &Server, token: &str) -> (String, String) {
    let response = client()
        .post(format!("{}/login", server.url))
        .header("origin", &server.url)
        .form(&[("token", token), ("next", "/executions")])
        .send()
        .expect("POST /login");
    assert_eq!(response.status().as_u16(), 303, "{:?}", response.text());
    assert_eq!(response.headers()["location"], "/executions");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = set_cookie.split(';').next().expect("a pair").to_owned();
    (pair, set_cookie)
}

/// The CSRF token the session's pages carry.
fn csrf_of(server: &Server, cookie: &str) -> String {
    let page = client()
        .get(format!("{}/pipelines", server.url))
        .header("cookie", cookie)
        .send()
        .expect("GET /pipelines")
        .text()
        .expect("page");
    let start = page
        .find(r#"name="csrf-token" content=""#)
        .expect("csrf meta")
        + 27;
    page[start..start + 64].to_owned()
}

fn run_with_cookie(server: &Server, cookie: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = client()
        .post(format!("{}/api/v1/pipelines/hello/executions", server.url))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .body("{}");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().expect("POST run")
}

fn refusal(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().expect("a JSON error");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_session_cookie_reads_and_changes_only_with_its_csrf_token_from_the_same_origin() {
    let server = Server::start(Backend::Sqlite);
    server.apply(PIPELINE);
    let (cookie, set_cookie) = sign_in(&server, &server.token);
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains(&server.token[7..]),
        "the cookie holds the token: {set_cookie}"
    );

    // Reading needs nothing more than the cookie.
    let listed = client()
        .get(format!("{}/api/v1/pipelines", server.url))
        .header("cookie", &cookie)
        .send()
        .expect("GET");
    assert_eq!(listed.status().as_u16(), 200);

    let csrf = csrf_of(&server, &cookie);
    let origin = server.url.clone();
    for (headers, needle) in [
        (vec![("origin", origin.as_str())], "CSRF token"),
        (
            vec![("x-csrf-token", "forged"), ("origin", origin.as_str())],
            "does not match",
        ),
        (
            vec![("x-csrf-token", csrf.as_str())],
            "Origin or Sec-Fetch-Site",
        ),
        (
            vec![
                ("x-csrf-token", csrf.as_str()),
                ("origin", "http://evil.example"),
            ],
            "not from http://evil.example",
        ),
        (
            vec![
                ("x-csrf-token", csrf.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
            "not from a cross-site page",
        ),
    ] {
        let (status, error) = refusal(run_with_cookie(&server, &cookie, &headers));
        assert_eq!(status, 403, "{headers:?}: {error}");
        assert!(error.contains(needle), "{headers:?}: {error}");
    }
    let ran = run_with_cookie(
        &server,
        &cookie,
        &[("x-csrf-token", &csrf), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(ran.status().as_u16(), 201, "{:?}", ran.text());

    // A bearer token still works without any of it, as the CLI sends it.
    let (status, body) = server.api("POST", "/api/v1/pipelines/hello/executions", None);
    assert_eq!(status, 201, "{body}");
}

#[test]
fn signing_out_or_revoking_the_token_ends_the_session() {
    let server = Server::start(Backend::Sqlite);
    let ops = server
        .cli(&["token", "create", "ops", "--role", "operator"])
        .ok()
        .stdout;
    let ops = ops.trim();
    let pages_answer = |cookie: &str| {
        let response = client()
            .get(format!("{}/pipelines", server.url))
            .header("cookie", cookie)
            .send()
            .expect("GET /pipelines");
        (
            response.status().as_u16(),
            response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap_or_default().to_owned()),
        )
    };

    let (first, _) = sign_in(&server, ops);
    assert_eq!(pages_answer(&first), (200, None));
    let csrf = csrf_of(&server, &first);
    // Signing out needs the CSRF token too.
    let without = client()
        .post(format!("{}/logout", server.url))
        .header("cookie", &first)
        .header("origin", &server.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .expect("POST /logout");
    assert_eq!(without.status().as_u16(), 403);
    let out = client()
        .post(format!("{}/logout", server.url))
        .header("cookie", &first)
        .header("origin", &server.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .expect("POST /logout");
    assert_eq!(out.status().as_u16(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the cookie is not cleared"
    );
    assert_eq!(
        pages_answer(&first),
        (303, Some("/login?next=%2Fpipelines".to_owned()))
    );

    let (second, _) = sign_in(&server, ops);
    assert_eq!(pages_answer(&second), (200, None));
    server.cli(&["token", "revoke", "ops"]).ok();
    // The server forgets a confirmed session within its cache's 3 s.
    std::thread::sleep(std::time::Duration::from_millis(3200));
    assert_eq!(pages_answer(&second).0, 303);
    let (status, error) = refusal(
        client()
            .get(format!("{}/api/v1/pipelines", server.url))
            .header("cookie", &second)
            .send()
            .expect("GET"),
    );
    assert_eq!(status, 401);
    assert!(error.contains("sign in again"), "{error}");
}

#[test]
fn sign_in_refuses_a_bad_token_a_cross_site_form_and_a_next_page_elsewhere() {
    let server = Server::start(Backend::Sqlite);
    let post = |token: &str, origin: &str, next: &str| {
        client()
            .post(format!("{}/login", server.url))
            .header("origin", origin)
            .form(&[("token", token), ("next", next)])
            .send()
            .expect("POST /login")
    };
    let bad = post("gantry_nope", &server.url, "/");
    assert_eq!(bad.status().as_u16(), 401);
    assert!(bad.headers().get("set-cookie").is_none());
    assert!(bad.text().unwrap().contains("that token is not valid"));

    let cross = post(&server.token, "http://evil.example", "/");
    assert_eq!(cross.status().as_u16(), 403);
    assert!(cross.headers().get("set-cookie").is_none());

    for elsewhere in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let response = post(&server.token, &server.url, elsewhere);
        assert_eq!(response.headers()["location"], "/", "next = {elsewhere}");
    }
}

#[test]
fn assets_are_embedded_cached_for_a_year_and_small() {
    let server = Server::start(Backend::Sqlite);
    let login = client()
        .get(format!("{}/login", server.url))
        .send()
        .expect("GET /login")
        .text()
        .expect("page");
    let start = login.find("/assets/").expect("an asset link");
    let css = &login[start..login[start..].find('"').expect("end") + start];
    let mut total = 0;
    for name in ["ui.css", "actions.js", "live.js", "ansi.js"] {
        let path = css.replace("ui.css", name);
        let response = client()
            .get(format!("{}{path}", server.url))
            .header("accept-encoding", "gzip")
            .send()
            .expect("GET asset");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_eq!(response.headers()["content-encoding"], "gzip", "{path}");
        total += response.bytes().expect("body").len();
    }
    assert!(total < 200_000, "the UI ships {total} bytes gzipped");
    // A page naming another build's assets gets these, but not for keeps.
    let stale = client()
        .get(format!("{}/assets/000000000000/ui.css", server.url))
        .send()
        .expect("GET");
    assert_eq!(stale.headers()["cache-control"], "no-cache");
}
