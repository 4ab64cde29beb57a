//! The web UI in Debian's chromium, driven by `tests/browser/ui.mjs`
//! (playwright-core, installed by `scripts/install-test-deps`) against this
//! real server: sign in, run a pipeline with parameters, watch its graph
//! turn green live and its log lines arrive, approve a judgment, restart a
//! stage, filter executions, see a canary's analysis drawn, resize a server
//! group and roll its cluster back, see triggers, repositories and tokens (and create one as an
//! admin), be refused without the CSRF token, sign out, and find no action
//! button as a viewer. Screenshots of every page go to
//! `target/browser-screenshots/`.

use std::path::PathBuf;
use std::process::Command;

use crate::deploy_support::{Load, free_port, shop_cluster_yaml, shop_pipeline, testapp};
use crate::harness::{Backend, Server};

const RELEASE: &str = r#"
  - name: release
    parameters:
      - name: version
        required: true
        description: The version to release
      - name: env
        options: [staging, production]
        default: staging
      - name: password
        secret: true
    stages:
      - id: build
        type: run
        steps:
          - script: |
              for i in 1 2 3; do printf '\033[32mbuilding\033[0m %s step %s\n' "${{ parameters.version }}" $i; sleep 1; done
      - id: test
        type: run
        dependsOn: [build]
        steps:
          - script: echo tests pass
      - id: lint
        type: run
        dependsOn: [build]
        steps:
          - script: echo lint ok
      - id: approve
        type: manualJudgment
        dependsOn: [test, lint]
        instructions: Check the staging dashboards first.
        options: [ship, hold]
      - id: done
        type: run
        dependsOn: [approve]
        steps:
          - script: echo shipped
  - name: nightly
    triggers:
      - type: cron
        schedule: "0 3 * * *"
    stages:
      - id: tick
        type: run
        steps:
          - script: echo tick
"#;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_web_ui_works_in_a_real_browser() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    let app = testapp();
    let deploy = shop_pipeline(
        "deploy-shop",
        &["{name: version, default: v1}"],
        &format!(
            "command: {}\nsize: 1\nstrategy: redblack\nenv: {{VERSION: \"${{{{ parameters.version }}}}\"}}\n",
            app.display()
        ),
    );
    let canary = shop_pipeline(
        "canary-shop",
        &["{name: version, default: v3}"],
        &format!(
            "command: {}\nsize: 1\nstrategy: canary\nsteps: [{{setWeight: 50}}, {{analysis: {{window: 3s, marginal: 50, pass: 100}}}}]\nenv: {{VERSION: \"${{{{ parameters.version }}}}\"}}\n",
            app.display()
        ),
    );
    server.apply(&format!(
        "{}{deploy}{canary}{RELEASE}",
        shop_cluster_yaml(port)
    ));
    for version in ["v1", "v2"] {
        let id = server.run("deploy-shop", &[&format!("version={version}")]);
        let execution = server.wait_terminal(&id);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
    }
    // A canary analysed under load, for its charts.
    let load = Load::start(port, 2, 1);
    let canary_id = server.run("canary-shop", &["version=v3"]);
    let execution = server.wait_terminal(&canary_id);
    load.finish();
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    for (path, body) in [
        (
            "/api/v1/repos",
            serde_json::json!({"name": "shop", "public": true}),
        ),
        ("/api/v1/apt/repos", serde_json::json!({"name": "shop-apt"})),
    ] {
        let (status, answer) = server.api("POST", path, Some(body));
        assert_eq!(status, 201, "{path}: {answer}");
    }
    let viewer = server.cli(&["token", "create", "watcher"]).ok().stdout;

    run_browser_checks(
        &server,
        "ui.mjs",
        &[
            ("GANTRY_VIEWER_TOKEN", viewer.trim()),
            ("GANTRY_CLUSTER", "shop-web"),
            ("GANTRY_CANARY_EXECUTION", &canary_id),
        ],
        "every browser check passed",
    );
}

/// Runs `tests/browser/SCRIPT` against `server` (its URL, the admin token and the screenshot
/// folder in the environment, besides `env`) and fails unless it ends saying `passed`.
pub(crate) fn run_browser_checks(
    server: &Server,
    script: &str,
    env: &[(&str, &str)],
    passed: &str,
) {
    let browser_tests = workspace().join("tests/browser");
    assert!(
        browser_tests.join("node_modules/playwright-core").is_dir()
            && PathBuf::from("/usr/bin/chromium").exists(),
        "playwright-core or chromium is missing: run scripts/install-test-deps"
    );
    let output = Command::new("node")
        .arg(browser_tests.join(script))
        .env("GANTRY_URL", &server.url)
        .env("GANTRY_ADMIN_TOKEN", &server.token)
        .env(
            "GANTRY_SCREENSHOTS",
            workspace().join("target/browser-screenshots"),
        )
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log_tail()
    );
    assert!(stdout.contains(passed), "{stdout}");
}
