//! Steps on runners: `run` stages with `runsOn` hand their steps to real
//! `gantry runner` processes (their own work directories and labels) and
//! get back their lines, exits and outputs.

use std::time::{Duration, Instant};

use crate::harness::{Server, alive, read_pid, stage, wait_for_file};
use crate::runners::{Runner, token, wait_registered};
use crate::steps_podman::log_text;

crate::on_both_backends!(
    steps_run_on_the_runner_their_labels_name_and_their_outputs_come_back,
    the_workspace_follows_the_stages_from_runner_to_runner_and_back_to_the_server,
    parallel_stages_on_two_runners_both_bring_their_files_home,
    a_stage_waits_for_a_label_no_runner_has_saying_so_then_fails_after_its_runner_wait,
    a_waiting_step_says_so_in_the_stages_outputs_until_a_runner_with_its_labels_takes_it,
    a_step_whose_runner_is_killed_runs_again_on_the_other_or_fails_naming_the_runner,
    cancel_reaches_a_remote_steps_processes_within_2_s,
    secrets_reach_only_the_runner_whose_step_names_them_masked_and_never_on_its_disk,
    a_runner_disabled_mid_step_loses_it_and_its_processes_are_killed,
    a_runner_without_a_container_engine_fails_a_container_step_saying_so,
);

/// Two runners, `alpha` (labels `pool,a`) and `beta` (labels `pool,b`).
pub(crate) fn two_runners(server: &Server) -> (Runner, Runner) {
    let token = token(server);
    let alpha = Runner::start(server, &token, "alpha", "pool,a");
    let beta = Runner::start(server, &token, "beta", "pool,b");
    wait_registered(server, &["alpha", "beta"]);
    (alpha, beta)
}

fn steps_run_on_the_runner_their_labels_name_and_their_outputs_come_back(server: &mut Server) {
    let (alpha, beta) = two_runners(server);
    server.apply(
        r#"
pipelines:
  - name: placed
    stages:
      - id: build
        type: run
        runsOn: [a]
        steps:
          - script: |
              echo "made on alpha" > made
              echo "first=$PWD" >> "$GANTRY_OUTPUT"
          # The same runner: the file the step before wrote is here.
          - script: |
              cat made
              echo "second=$PWD" >> "$GANTRY_OUTPUT"
          - runsOn: [b]
            script: |
              echo "to stderr" >&2
              echo "third=$PWD" >> "$GANTRY_OUTPUT"
"#,
    );
    let id = server.run("placed", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let outputs = &stage(&execution, "build")["outputs"];
    let on = |key: &str, runner: &Runner| {
        let path = outputs[key].as_str().unwrap_or_default();
        assert!(
            path.starts_with(runner.dir.to_str().unwrap()),
            "{key} ran in {path:?}, not under {}: {outputs:#}",
            runner.dir.display()
        );
    };
    on("first", &alpha);
    on("second", &alpha);
    on("third", &beta);
    let logs = log_text(server, &id);
    assert!(logs.contains("made on alpha"), "{logs}");
    assert!(logs.contains("to stderr"), "{logs}");
    assert!(logs.contains("running on runner alpha"), "{logs}");
    assert!(logs.contains("running on runner beta"), "{logs}");
    // The step after one on the same runner finds the workspace there.
    assert!(
        alpha.log().contains("this runner's copy is current"),
        "{}",
        alpha.log()
    );
    // What the steps wrote came back to the server's workspace.
    let workspace = server.data_dir().join("workspaces").join(&id);
    assert_eq!(
        std::fs::read_to_string(workspace.join("made")).unwrap(),
        "made on alpha\n"
    );
}

fn the_workspace_follows_the_stages_from_runner_to_runner_and_back_to_the_server(
    server: &mut Server,
) {
    let (alpha, beta) = two_runners(server);
    server.apply(
        r#"
pipelines:
  - name: relay
    stages:
      - id: one
        type: run
        runsOn: [a]
        steps:
          - script: mkdir -p out && echo "one on alpha" > out/log && ln -s log out/link
      - id: two
        type: run
        runsOn: [b]
        dependsOn: [one]
        steps:
          - script: |
              test -L out/link
              cat out/log
              echo "two on beta" >> out/log
      # On the server: it reads what both runners wrote.
      - id: three
        type: run
        dependsOn: [two]
        steps:
          - script: cat out/log > @W@/seen-by-server
      - id: four
        type: run
        runsOn: [a]
        dependsOn: [three]
        steps:
          - script: |
              cat out/log
              echo "lines=$(wc -l < out/log)" >> "$GANTRY_OUTPUT"
"#,
    );
    let id = server.run("relay", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        std::fs::read_to_string(server.work().join("seen-by-server")).unwrap(),
        "one on alpha\ntwo on beta\n"
    );
    assert_eq!(stage(&execution, "four")["outputs"]["lines"], "2");
    // Alpha fetched the server's workspace, beta what alpha wrote, and
    // alpha again what beta added.
    let fetched = |runner: &Runner| {
        runner
            .log()
            .matches("workspace: fetched from the server")
            .count()
    };
    assert_eq!(fetched(&alpha), 2, "{}", alpha.log());
    assert_eq!(fetched(&beta), 1, "{}", beta.log());
}

/// Parallel stages start from one snapshot on two runners and come back in
/// any order: the server's workspace keeps what each wrote (a whole-tree
/// swap kept only the last one's), and the stage after both sees it all.
fn parallel_stages_on_two_runners_both_bring_their_files_home(server: &mut Server) {
    let _runners = two_runners(server);
    server.apply(
        r#"
pipelines:
  - name: fan
    stages:
      - id: left
        type: run
        runsOn: [a]
        steps:
          - script: echo left > from-left
      - id: right
        type: run
        runsOn: [b]
        steps:
          - script: sleep 0.5 && echo right > from-right
      - id: join
        type: run
        runsOn: [a]
        dependsOn: [left, right]
        steps:
          - script: cat from-left from-right > both
"#,
    );
    let id = server.run("fan", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let workspace = server.data_dir().join("workspaces").join(&id);
    assert_eq!(
        std::fs::read_to_string(workspace.join("both")).unwrap(),
        "left\nright\n"
    );
}

fn a_stage_waits_for_a_label_no_runner_has_saying_so_then_fails_after_its_runner_wait(
    server: &mut Server,
) {
    let (_alpha, _beta) = two_runners(server);
    server.apply(
        r#"
pipelines:
  - name: gpu
    stages:
      - id: train
        type: run
        runsOn: [gpu, big]
        runnerWait: 4s
        steps:
          - script: touch @W@/ran
"#,
    );
    let started = Instant::now();
    let id = server.run("gpu", &[]);
    server.wait_for(&id, "the waiting message", |_| {
        log_text(server, &id).contains("waiting for a runner with labels big, gpu")
    });
    let execution = server.wait_terminal(&id);
    let waited = started.elapsed();
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "train")["error"].to_string();
    assert!(
        error.contains("no runner with labels big, gpu took it within 4s"),
        "{error}"
    );
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    assert!(!server.work().join("ran").exists());
    // Nothing stays queued for it.
    let queued = server.get("/api/v1/runners/jobs");
    assert_eq!(queued["jobs"].as_array().map(Vec::len), Some(0), "{queued}");
}

/// What a step waits for is in the stage's `outputs.waitingFor` (the API,
/// `gantry execution show`) while it waits, and null once a runner with its
/// labels registers and takes it.
fn a_waiting_step_says_so_in_the_stages_outputs_until_a_runner_with_its_labels_takes_it(
    server: &mut Server,
) {
    server.apply(
        r#"
pipelines:
  - name: gpu
    stages:
      - id: train
        type: run
        runsOn: [gpu]
        runnerWait: 2m
        steps:
          - name: fit
            script: echo trained
"#,
    );
    let id = server.run("gpu", &[]);
    let note = "step 1 (fit): waiting for a runner with labels gpu";
    let execution = server.wait_for(&id, "outputs.waitingFor", |execution| {
        stage(execution, "train")["outputs"]["waitingFor"] == note
    });
    assert_eq!(stage(&execution, "train")["status"], "running");
    let shown = server.cli(&["execution", "show", &id]).ok();
    assert!(
        shown
            .stdout
            .contains(&format!("train.outputs.waitingFor = {note}")),
        "{}",
        shown.stdout
    );
    let token = token(server);
    let _gpu = Runner::start(server, &token, "trainer", "gpu");
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        stage(&execution, "train")["outputs"]["waitingFor"],
        serde_json::Value::Null,
        "{execution:#}"
    );
}

fn a_step_whose_runner_is_killed_runs_again_on_the_other_or_fails_naming_the_runner(
    server: &mut Server,
) {
    let (mut alpha, mut beta) = two_runners(server);
    // The first attempt records itself and sleeps; the second finds the
    // record and ends.
    server.apply(
        r#"
pipelines:
  - name: rerun
    stages:
      - id: build
        type: run
        runsOn: [pool]
        steps:
          - script: |
              echo "$PWD" >> @W@/attempts
              if [ "$(wc -l < @W@/attempts)" -lt 2 ]; then echo $$ > @W@/first.pid; sleep 120; fi
              echo "done=$PWD" >> "$GANTRY_OUTPUT"
  - name: once
    stages:
      - id: build
        type: run
        runsOn: [pool]
        onInterrupt: fail
        steps:
          - script: echo $$ > @W@/once.pid; sleep 120
"#,
    );
    let (id, first) = run_until_pid(server, "rerun", "first.pid");
    let attempts = std::fs::read_to_string(server.work().join("attempts")).unwrap();
    let (victim, survivor) = if attempts.starts_with(alpha.dir.to_str().unwrap()) {
        (&mut alpha, "beta")
    } else {
        (&mut beta, "alpha")
    };
    let killed_at = Instant::now();
    victim.kill9();
    let execution = server.wait_terminal(&id);
    let took = killed_at.elapsed();
    // The orphan of the killed agent is this test's to clean up.
    let _ = nix_kill(first);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let logs = log_text(server, &id);
    assert!(logs.contains("lost"), "{logs}");
    assert!(
        logs.contains("running it again from its start on another runner"),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("running again on runner {survivor}")),
        "{logs}"
    );
    assert!(took < Duration::from_secs(20), "re-run took {took:?}");
    eprintln!("runner killed -> its step re-run elsewhere and done: {took:?}");
    // The lost run is an attempt in the stage's history, the re-run the next.
    let victim_name = if survivor == "beta" { "alpha" } else { "beta" };
    let attempts = stage(&execution, "build")["attempts"].clone();
    assert_eq!(stage(&execution, "build")["attempt"], 2, "{execution:#}");
    assert_eq!(attempts.as_array().map(Vec::len), Some(2), "{attempts:#}");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["status"], "failed");
    let lost = attempts[0]["error"].as_str().unwrap_or_default();
    assert!(
        lost.contains(&format!("runner {victim_name} lost"))
            && lost.ends_with("the step runs again elsewhere"),
        "{attempts:#}"
    );
    assert!(attempts[0]["endedAt"].is_string(), "{attempts:#}");
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["status"], "succeeded", "{attempts:#}");

    // With `onInterrupt: fail` the step fails, naming the runner.
    let (id, pid) = run_until_pid(server, "once", "once.pid");
    let execution = server.get(&format!("/api/v1/executions/{id}"));
    let logs = log_text(server, &id);
    let name = if logs.contains("running on runner alpha") {
        "alpha"
    } else {
        "beta"
    };
    let runner = if name == "alpha" {
        &mut alpha
    } else {
        &mut beta
    };
    runner.kill9();
    let execution_end = server.wait_terminal(&id);
    let _ = nix_kill(pid);
    assert_eq!(execution_end["status"], "failed", "{execution:#}");
    let error = stage(&execution_end, "build")["error"].to_string();
    assert!(error.contains(&format!("runner {name} lost")), "{error}");
}

fn cancel_reaches_a_remote_steps_processes_within_2_s(server: &mut Server) {
    let (_alpha, _beta) = two_runners(server);
    server.apply(
        r#"
pipelines:
  - name: long
    stages:
      - id: build
        type: run
        runsOn: [b]
        steps:
          - script: |
              sleep 300 &
              echo $! > @W@/child.pid
              echo $$ > @W@/main.pid
              wait
"#,
    );
    let (id, main) = run_until_pid(server, "long", "main.pid");
    let child = read_pid(&server.work().join("child.pid"));
    assert!(alive(main) && alive(child));
    let canceled_at = Instant::now();
    let (status, body) = server.api(
        "POST",
        &format!("/api/v1/executions/{id}/cancel"),
        Some(serde_json::json!({})),
    );
    assert!(status < 300, "{status} {body}");
    while alive(main) || alive(child) {
        assert!(
            canceled_at.elapsed() < Duration::from_secs(2),
            "the remote step's processes outlived the cancel by 2 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "canceled", "{execution:#}");
}

const SECRET: &str = "rnr-5e1c7-never-leak";

fn secrets_reach_only_the_runner_whose_step_names_them_masked_and_never_on_its_disk(
    server: &mut Server,
) {
    let (alpha, beta) = two_runners(server);
    let input = server.write_file("secret-input", &format!("{SECRET}\n"));
    server
        .cli_with(&["secret", "set", "DEPLOY_TOKEN"], |command| {
            command.stdin(std::fs::File::open(&input).unwrap());
        })
        .ok();
    std::fs::remove_file(&input).unwrap();
    server.apply(
        r#"
pipelines:
  - name: secret
    stages:
      - id: build
        type: run
        steps:
          - runsOn: [a]
            secretEnv: [DEPLOY_TOKEN]
            script: |
              echo "token is $DEPLOY_TOKEN"
              test "$DEPLOY_TOKEN" = "$(cat @W@/expected)"
          - runsOn: [b]
            script: |
              echo "beta sees [${DEPLOY_TOKEN:-}]"
"#,
    );
    server.write_file("expected", SECRET);
    let id = server.run("secret", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let logs = log_text(server, &id);
    assert!(logs.contains("token is ***"), "{logs}");
    assert!(logs.contains("beta sees []"), "{logs}");
    assert!(!logs.contains(SECRET), "the secret reached the logs");
    for runner in [&alpha, &beta] {
        assert!(!runner.log().contains(SECRET), "{}", runner.log());
        assert_no_file_holds(&runner.dir, SECRET);
    }
    // Nor the jobs table: the payload names the variable, not its value.
    if let Some(db) = server
        .data_dir()
        .join("gantry.db")
        .exists()
        .then(|| server.data_dir().join("gantry.db"))
    {
        let bytes = std::fs::read(&db).unwrap();
        assert!(
            !contains(&bytes, SECRET.as_bytes()),
            "the database holds the secret"
        );
    }
}

fn a_runner_disabled_mid_step_loses_it_and_its_processes_are_killed(server: &mut Server) {
    let (_alpha, _beta) = two_runners(server);
    server.apply(
        r#"
pipelines:
  - name: revoked
    stages:
      - id: build
        type: run
        runsOn: [a]
        onInterrupt: fail
        steps:
          - script: echo $$ > @W@/revoked.pid; sleep 120
"#,
    );
    let (id, pid) = run_until_pid(server, "revoked", "revoked.pid");
    server.cli(&["runner", "disable", "alpha"]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"].to_string();
    assert!(error.contains("runner alpha"), "{error}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the revoked runner's step still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn a_runner_without_a_container_engine_fails_a_container_step_saying_so(server: &mut Server) {
    let token = token(server);
    let _bare = Runner::start_with(
        server,
        &token,
        "bare",
        "bare",
        &["--container-engine", "none"],
    );
    wait_registered(server, &["bare"]);
    server.apply(
        r#"
pipelines:
  - name: boxed
    stages:
      - id: build
        type: run
        runsOn: [bare]
        steps:
          - image: localhost/gantry-test-base:latest
            script: echo hi
"#,
    );
    let id = server.run("boxed", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"].to_string();
    assert!(error.contains("on runner bare"), "{error}");
    assert!(error.contains("container engine"), "{error}");
}

/// Starts `pipeline` and waits for its step to write its pid to `file` in
/// the work directory; the execution and the pid.
pub(crate) fn run_until_pid(server: &Server, pipeline: &str, file: &str) -> (String, i32) {
    let id = server.run(pipeline, &[]);
    let path = server.work().join(file);
    wait_for_file(&path);
    (id, read_pid(&path))
}

fn assert_no_file_holds(dir: &std::path::Path, needle: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            assert_no_file_holds(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn nix_kill(pid: i32) -> std::io::Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}
