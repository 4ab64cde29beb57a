//! A cluster's first deploy that waits for a person says what it waits
//! for, why, and the command that goes on, in its log and in its outputs;
//! `gantry promote` promotes a paused canary.

use crate::deploy_support::{free_port, get, shop_cluster_yaml, shop_pipeline, testapp};
use crate::harness::{Backend, Server, stage};

/// Cluster `shop-web` with `judged` (rolling [50, 100] with a judgment
/// between the steps) and `paused` (a canary paused until promoted).
fn waits_yaml(port: u16) -> String {
    let app = testapp();
    let app = app.display();
    format!(
        "{}{}{}",
        shop_cluster_yaml(port),
        shop_pipeline(
            "judged",
            &[],
            &format!(
                "command: {app}\nsize: 2\nstrategy: rolling\ntargetPercentages: [50, 100]\njudgmentBetweenSteps: {{instructions: look at the first instance}}\nenv: {{VERSION: judged}}\n"
            ),
        ),
        shop_pipeline(
            "paused",
            &[],
            &format!(
                "command: {app}\nsize: 1\nstrategy: canary\nsteps: [{{setWeight: 50}}, {{pause: untilPromoted}}]\nenv: {{VERSION: paused}}\n"
            ),
        ),
    )
}

fn waiting_for(server: &Server, id: &str) -> String {
    let execution = server.wait_for(id, "the deploy to say what it waits for", |e| {
        stage(e, "deploy")["outputs"]["waitingFor"].is_string()
    });
    stage(&execution, "deploy")["outputs"]["waitingFor"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_first_rolling_deploy_says_which_judgment_it_waits_for() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&waits_yaml(port));
    let id = server.run("judged", &[]);
    let note = waiting_for(&server, &id);
    let expected = format!(
        "at 50%, waiting for a judgment before rolling step 2 of 2 (50% → 100%) \
         (the first deploy of cluster shop-web: shop-web-v000 serves all of its traffic meanwhile): \
         `gantry approve {id} --stage deploy` goes on, `gantry reject {id} --stage deploy` rolls back: \
         look at the first instance"
    );
    assert_eq!(note, expected);
    crate::steps_podman::wait_log_text(&server, &id, &expected, std::time::Duration::from_secs(10));
    server.wait_stage(&id, "deploy", "waiting");
    server.cli(&["approve", &id, "--stage", "deploy"]).ok();
    let done = server.wait_terminal(&id);
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert!(
        stage(&done, "deploy")["outputs"]["waitingFor"].is_null(),
        "{done:#}"
    );
}

#[test]
fn a_first_canary_paused_until_promoted_names_gantry_promote_which_promotes_it() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&waits_yaml(port));
    let id = server.run("paused", &[]);
    let note = waiting_for(&server, &id);
    assert_eq!(
        note,
        format!(
            "waiting for a promotion: canary shop-web-v000 paused at step 2 of 2 until promoted \
             (the first deploy of cluster shop-web: shop-web-v000 serves all of its traffic meanwhile): \
             `gantry promote {id} --stage deploy`"
        )
    );
    assert!(get(port, "/").1.starts_with("paused "));
    let out = server.cli(&["promote", &id, "--stage", "deploy"]).ok();
    assert!(out.stdout.contains("deploy promoted"), "{out:?}");
    let done = server.wait_terminal(&id);
    assert_eq!(done["status"], "succeeded", "{done:#}");
    crate::steps_podman::wait_log_text(
        &server,
        &id,
        "canary shop-web-v000 promoted",
        std::time::Duration::from_secs(10),
    );
}
