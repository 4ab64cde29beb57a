//! Step dispatch latency as the runners issue defines it, from a step being
//! ready to its process running on a runner, over 200 steps: ready is when
//! the stage handed the step to the executor (a remote step's record's
//! `started_at`, read from the store), running is the first thing its
//! script does (`date`, on this machine's clock, which the runners share).
//! Beside it, against the server's own executor in the same run, the gap
//! from one step's end to the next one's start (the end's report included).

use std::time::Duration;

use crate::harness::Server;
use crate::runners::{Runner, token, wait_registered};

// Without a local runner, steps without `runsOn` run in the server's own
// executor: the reference.
crate::on_both_backends!(
    env = &[("GANTRY_LOCAL_RUNNER", "off")];
    a_step_runs_on_a_runner_within_the_dispatch_bounds_of_its_readiness_over_200_steps,
);

const GAPS: usize = 200;

fn a_step_runs_on_a_runner_within_the_dispatch_bounds_of_its_readiness_over_200_steps(
    server: &mut Server,
) {
    let server = &*server;
    let token = token(server);
    let _one = Runner::start(server, &token, "one", "pool");
    let _two = Runner::start(server, &token, "two", "pool");
    wait_registered(server, &["one", "two"]);
    server.apply(&pipelines());
    let (remote_id, remote) = marks(server, "remote");
    let (_, here) = marks(server, "here");
    let dispatch = sorted(ready_to_running(server, &remote_id, &remote));
    let (remote_gaps, here_gaps) = (sorted(gaps(&remote)), sorted(gaps(&here)));
    let (p50, p99) = percentiles(&dispatch);
    println!(
        "step dispatch (ready → running on a runner) over {GAPS} steps: p50 {p50:?}, p99 {p99:?}; \
         end of a step to the start of the next: on runners p50 {:?}, p99 {:?}, \
         in the server (reference) p50 {:?}, p99 {:?}",
        percentiles(&remote_gaps).0,
        percentiles(&remote_gaps).1,
        percentiles(&here_gaps).0,
        percentiles(&here_gaps).1,
    );
    // The bounds. Ready is read in whole milliseconds, and the step's
    // first `date` is part of running: both count against the runner.
    assert!(p50 <= Duration::from_millis(50), "p50 {p50:?}, p99 {p99:?}");
    assert!(
        p99 <= Duration::from_millis(250),
        "p50 {p50:?}, p99 {p99:?}"
    );
}

fn sorted(mut durations: Vec<Duration>) -> Vec<Duration> {
    durations.sort();
    durations
}

fn percentiles(sorted: &[Duration]) -> (Duration, Duration) {
    let n = sorted.len();
    (sorted[n / 2], sorted[(n * 99).div_ceil(100) - 1])
}

/// Two pipelines of one stage of `GAPS + 1` steps, on runners and here.
fn pipelines() -> String {
    let mut yaml = String::from("pipelines:\n");
    for (name, runs_on) in [("remote", "\n        runsOn: [pool]"), ("here", "")] {
        yaml.push_str(&format!(
            "  - name: {name}\n    stages:\n      - id: steps\n        type: run{runs_on}\n        steps:\n"
        ));
        for step in 0..=GAPS {
            yaml.push_str(&format!(
                "          - script: echo \"s {step} $(date +%s%N)\" >> @W@/{name}.times; echo \"e {step} $(date +%s%N)\" >> @W@/{name}.times\n"
            ));
        }
    }
    yaml
}

/// A step's mark: its index, `s`tart or `e`nd, nanoseconds since the epoch.
type Mark = (usize, char, u128);

/// Runs `pipeline`; its execution and the marks its steps wrote.
fn marks(server: &Server, pipeline: &str) -> (String, Vec<Mark>) {
    let id = server.run(pipeline, &[]);
    // Longer than the harness's usual wait: 201 steps of a debug build.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let execution = loop {
        let execution = server.execution(&id);
        if !matches!(execution["status"].as_str(), Some("running" | "pending")) {
            break execution;
        }
        assert!(std::time::Instant::now() < deadline, "{execution:#}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let times = std::fs::read_to_string(server.work().join(format!("{pipeline}.times"))).unwrap();
    let marks: Vec<Mark> = times
        .lines()
        .map(|line| {
            let mut fields = line.split(' ');
            let kind = fields.next().unwrap().chars().next().unwrap();
            let step = fields.next().unwrap().parse().unwrap();
            (step, kind, fields.next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(marks.len(), 2 * (GAPS + 1), "{times}");
    (id, marks)
}

/// The gaps between one step's end and the next one's start.
fn gaps(marks: &[Mark]) -> Vec<Duration> {
    let gaps: Vec<Duration> = marks
        .windows(2)
        .filter(|pair| pair[0].1 == 'e' && pair[1].1 == 's')
        .map(|pair| Duration::from_nanos((pair[1].2 - pair[0].2) as u64))
        .collect();
    assert_eq!(gaps.len(), GAPS);
    gaps
}

/// For each step: from its record's `started_at` (when the stage handed it
/// to the remote executor, which queued it) to its start mark.
fn ready_to_running(server: &Server, execution: &str, marks: &[Mark]) -> Vec<Duration> {
    let ready = steps_started_at(server, execution);
    assert_eq!(ready.len(), GAPS + 1, "{ready:?}");
    let mut starts: Vec<(usize, u128)> = marks
        .iter()
        .filter(|(_, kind, _)| *kind == 's')
        .map(|(step, _, nanos)| (*step, *nanos))
        .collect();
    starts.sort();
    // Both in step order, whatever the records count from.
    ready
        .iter()
        .zip(starts)
        .map(|(ready, (_, nanos))| {
            Duration::from_nanos(nanos.saturating_sub(*ready as u128 * 1_000_000) as u64)
        })
        .collect()
}

/// The steps' `started_at` (milliseconds) in step order, from the server's
/// store.
fn steps_started_at(server: &Server, execution: &str) -> Vec<i64> {
    use sqlx::Connection;
    let url = match server.database_url() {
        Some(url) => url.to_owned(),
        None => format!(
            "sqlite://{}?mode=ro",
            server.data_dir().join("gantry.db").display()
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT step, started_at FROM steps WHERE execution_id = $1 AND started_at IS NOT NULL ORDER BY step",
        )
        .bind(execution)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
        rows.into_iter().map(|(_, at)| at).collect()
    })
}
