//! Steps on runners across restarts: a server killed while a runner works, and a runner
//! killed with `-9` and started again. The step never runs twice at once, and runs again.

use std::time::{Duration, Instant};

use crate::harness::{Server, alive};
use crate::runners::{Runner, token, wait_registered};
use crate::runners_steps::{run_until_pid, two_runners};
use crate::steps_podman::log_text;

crate::on_both_backends!(
    a_server_killed_while_a_runner_works_resumes_the_step_which_never_runs_twice_at_once,
    a_runner_restarted_after_kill_9_kills_the_step_it_left_which_runs_again,
);

fn a_server_killed_while_a_runner_works_resumes_the_step_which_never_runs_twice_at_once(
    server: &mut Server,
) {
    let (_alpha, _beta) = two_runners(server);
    // The first attempt sleeps; the second says whether the first still runs.
    server.apply(
        r#"
pipelines:
  - name: long
    stages:
      - id: build
        type: run
        runsOn: [pool]
        steps:
          - script: |
              if [ -s @W@/first.pid ]; then
                if kill -0 "$(cat @W@/first.pid)" 2>/dev/null; then echo twice >> @W@/verdict; else echo alone >> @W@/verdict; fi
                exit 0
              fi
              echo $$ > @W@/first.pid
              sleep 120
"#,
    );
    let (id, first) = run_until_pid(server, "long", "first.pid");
    server.kill9();
    server.restart();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert!(!alive(first), "the first attempt still runs");
    assert_eq!(
        std::fs::read_to_string(server.work().join("verdict")).unwrap(),
        "alone\n"
    );
    let logs = log_text(server, &id);
    assert!(
        logs.contains("interrupted by a server restart: running it again"),
        "{logs}"
    );
}

fn a_runner_restarted_after_kill_9_kills_the_step_it_left_which_runs_again(server: &mut Server) {
    let token = token(server);
    let mut solo = Runner::start(server, &token, "solo", "solo");
    wait_registered(server, &["solo"]);
    server.apply(
        r#"
pipelines:
  - name: again
    stages:
      - id: build
        type: run
        runsOn: [solo]
        steps:
          - script: |
              if [ -s @W@/left.pid ]; then echo "second=$$" >> "$GANTRY_OUTPUT"; exit 0; fi
              echo $$ > @W@/left.pid
              sleep 120
"#,
    );
    let (id, left) = run_until_pid(server, "again", "left.pid");
    // The runner records the step's process group right after starting it;
    // a `kill -9` between the two would leave the step to end by itself.
    let recorded = || {
        std::fs::read_dir(solo.dir.join("jobs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|job| job.path().join("step-process.json").exists())
    };
    while !recorded() {
        std::thread::sleep(Duration::from_millis(20));
    }
    solo.kill9();
    assert!(alive(left), "the step died with its agent");
    solo.spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(left) {
        assert!(
            Instant::now() < deadline,
            "the restarted runner left the step running:\n{}",
            solo.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert!(log_text(server, &id).contains("running again on runner solo"));
}
