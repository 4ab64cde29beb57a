//! A runner whose network goes away: one runner inside a network namespace
//! (a veth pair to this machine, [`NetNs`]) and one on this machine; the
//! server listens on the pair's host end. The test takes the pair down
//! mid-step: the far runner's processes and the server no longer hear each
//! other, and neither is told.

use std::time::{Duration, Instant};

use crate::harness::{Backend, NetNs, Server, alive, stage};
use crate::runners::{Runner, token, wait_registered};
use crate::runners_steps::{nix_kill, run_until_pid};
use crate::steps_podman::log_text;

mod sqlite {
    #[test]
    fn a_runner_cut_off_mid_step_loses_it_in_bounds_and_it_runs_again_on_the_other_never_twice_at_once()
     {
        super::on(
            crate::harness::Backend::Sqlite,
            super::a_runner_cut_off_mid_step_loses_it_in_bounds_and_it_runs_again_on_the_other_never_twice_at_once,
        );
    }
}

mod postgres {
    #[test]
    fn a_runner_cut_off_mid_step_loses_it_in_bounds_and_it_runs_again_on_the_other_never_twice_at_once()
     {
        super::on(
            crate::harness::Backend::Postgres,
            super::a_runner_cut_off_mid_step_loses_it_in_bounds_and_it_runs_again_on_the_other_never_twice_at_once,
        );
    }
}

/// Runs `scenario` against a server listening on a fresh namespace's host
/// end; the namespace goes when the test ends, however it ends.
fn on(backend: Backend, scenario: fn(&mut Server, &NetNs)) {
    let net = NetNs::create();
    // The runners are the test's: no local runner takes a step.
    let Some(mut server) = Server::try_start_listening(
        backend,
        net.host_ip.into(),
        &[("GANTRY_LOCAL_RUNNER", "off")],
    ) else {
        return;
    };
    scenario(&mut server, &net);
}

const PIPELINES: &str = r#"
pipelines:
  - name: partitioned
    stages:
      - id: build
        type: run
        runsOn: [pool]
        steps:
          # The first attempt records itself and, once the network is cut,
          # prints lines nobody may see; the second says whether the first
          # still runs.
          - script: |
              if [ -s @W@/first.pid ]; then
                if kill -0 "$(cat @W@/first.pid)" 2>/dev/null; then echo twice >> @W@/verdict; else echo alone >> @W@/verdict; fi
                echo "ran=$PWD" >> "$GANTRY_OUTPUT"
                exit 0
              fi
              echo $$ > @W@/first.pid
              echo "before the cut"
              while [ ! -e @W@/cut ]; do sleep 0.05; done
              i=0; while :; do echo "late line $i"; i=$((i+1)); sleep 0.1; done
  - name: after
    stages:
      - id: build
        type: run
        runsOn: [far]
        steps:
          - script: echo "ran=$PWD" >> "$GANTRY_OUTPUT"
  - name: once
    stages:
      - id: build
        type: run
        runsOn: [far]
        onInterrupt: fail
        steps:
          - script: echo $$ > @W@/once.pid; sleep 120
"#;

fn a_runner_cut_off_mid_step_loses_it_in_bounds_and_it_runs_again_on_the_other_never_twice_at_once(
    server: &mut Server,
    net: &NetNs,
) {
    let server = &*server;
    let token = token(server);
    let far = Runner::start_inside(net, server, &token, "far", "pool,far");
    wait_registered(server, &["far"]);
    server.apply(PIPELINES);
    let (id, first) = run_until_pid(server, "partitioned", "first.pid");
    // The runner on this machine arrives once the step is the far one's.
    let near = Runner::start(server, &token, "near", "pool,near");
    wait_registered(server, &["near"]);
    wait_log(server, &id, "before the cut", Duration::from_secs(30));

    net.cut();
    let cut_at = Instant::now();
    std::fs::write(server.work().join("cut"), "").unwrap();
    wait_log(server, &id, "runner far lost", Duration::from_secs(15));
    let lost_after = cut_at.elapsed();
    // Its step was killed by the far runner itself, which has not heard
    // from the server since: before the server counted the lease lost.
    let first_alive = alive(first);
    let _ = nix_kill(first);
    assert!(!first_alive, "the cut-off runner's step outlived its lease");
    println!(
        "lease lost {lost_after:?} after the network of the runner at {} went away",
        net.inner_ip
    );
    // The last heartbeat was at most one interval before the cut; the lease
    // lives five seconds from it, and the server's clock ticks every 250 ms.
    assert!(
        lost_after >= Duration::from_secs(3) && lost_after < Duration::from_millis(7_000),
        "{lost_after:?}"
    );

    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let ran = stage(&execution, "build")["outputs"]["ran"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ran.starts_with(near.dir.to_str().unwrap()), "{ran}");
    assert_eq!(
        std::fs::read_to_string(server.work().join("verdict")).unwrap(),
        "alone\n",
        "the step ran on both runners at once"
    );
    let logs = log_text(server, &id);
    assert!(
        logs.contains("running it again from its start on another runner"),
        "{logs}"
    );
    assert!(logs.contains("running again on runner near"), "{logs}");
    assert!(
        far.log().contains("no heartbeat renewed the lease in time"),
        "{}",
        far.log()
    );

    // Back on the network, the far runner's late lines are not taken and it
    // leases as before.
    net.restore();
    let after = server.run("after", &[]);
    let done = server.wait_terminal(&after);
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let ran = stage(&done, "build")["outputs"]["ran"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ran.starts_with(far.dir.to_str().unwrap()), "{ran}");
    let logs = log_text(server, &id);
    assert!(
        !logs.contains("late line"),
        "lines printed after the cut reached the execution: {logs}"
    );

    // With `onInterrupt: fail`, the step fails naming the runner.
    let (once, pid) = run_until_pid(server, "once", "once.pid");
    net.cut();
    let failed = server.wait_terminal(&once);
    let pid_alive = alive(pid);
    let _ = nix_kill(pid);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let error = stage(&failed, "build")["error"].to_string();
    assert!(error.contains("runner far lost"), "{error}");
    assert!(!pid_alive, "the cut-off runner's step outlived its lease");
}

/// Waits for `text` in the execution's log.
fn wait_log(server: &Server, id: &str, text: &str, limit: Duration) {
    crate::steps_podman::wait_log_text(server, id, text, limit);
}
