//! Runners as real processes: `gantry runner` agents with their own work
//! directories and labels against a real `gantry serve`. Jobs are queued
//! through the debug build's `/api/v1/runners/debug/jobs` routes (until the
//! engine queues steps itself) and run by the agent's host-process runner.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, alive};

// These scenarios place unlabelled jobs on the runners they start; the
// server's own local runner, which takes any such job, is not started.
crate::on_both_backends!(
    env = &[("GANTRY_LOCAL_RUNNER", "off")];
    jobs_go_to_runners_with_their_labels_and_one_no_runner_can_take_waits_saying_so,
    a_runner_killed_with_sigkill_loses_its_lease_within_bounds_and_the_job_runs_again_on_the_other,
    a_runner_restarted_mid_job_resends_what_the_server_lacks_with_no_line_lost_or_twice,
    cancel_reaches_the_jobs_processes_within_2_s,
    a_runner_disabled_mid_lease_is_refused_with_401_and_its_processes_are_killed,
    dispatch_latency_from_queued_to_leased_over_200_jobs,
    a_server_killed_mid_job_has_the_job_killed_and_its_runner_carries_on,
    log_lines_stream_through_a_runner_in_order_and_are_counted_per_second,
);

pub(crate) use crate::runner_process::Runner;

pub(crate) fn token(server: &Server) -> String {
    let (status, body) = server.api("POST", "/api/v1/runners/tokens", Some(json!({})));
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn enqueue(server: &Server, argv: &[&str], labels: &[&str], retry: bool) -> String {
    let body = json!({ "payload": { "argv": argv }, "labels": labels, "retryOnLoss": retry });
    let (status, answer) = server.api("POST", "/api/v1/runners/debug/jobs", Some(body));
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

fn job(server: &Server, id: &str) -> Value {
    server.get(&format!("/api/v1/runners/debug/jobs/{id}"))
}

fn wait_job(
    server: &Server,
    id: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let job = job(server, id);
        if done(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id}: {what} did not happen within {limit:?}: {job:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn events_of<'a>(job: &'a Value, kind: &str) -> Vec<&'a Value> {
    job["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

fn leased_by(job: &Value) -> Vec<String> {
    events_of(job, "leased")
        .iter()
        .map(|e| e["runner"].as_str().unwrap().to_owned())
        .collect()
}

fn log_lines(job: &Value) -> Vec<String> {
    events_of(job, "log")
        .iter()
        .flat_map(|e| {
            e["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_owned())
        })
        .collect()
}

fn finished(job: &Value) -> bool {
    job["job"]["state"] == "finished"
}

pub(crate) fn wait_registered(server: &Server, names: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = server.get("/api/v1/runners");
        let have: Vec<&str> = list["runners"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        if names.iter().all(|n| have.contains(n)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runners {names:?} did not register: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn jobs_go_to_runners_with_their_labels_and_one_no_runner_can_take_waits_saying_so(
    server: &mut Server,
) {
    let server = &*server;
    let created = server
        .cli(&[
            "runner",
            "token",
            "create",
            "--expires",
            "1h",
            "--uses",
            "2",
        ])
        .ok();
    let token = created.stdout.trim().to_owned();
    let _amd = Runner::start(server, &token, "amd", "linux,amd64");
    let _arm = Runner::start(server, &token, "arm", "linux,arm64");
    wait_registered(server, &["amd", "arm"]);
    let mut third = Runner::start(server, &token, "third", "linux");
    assert!(!third.wait_exit(Duration::from_secs(10)).success());
    assert!(third.log().contains("used up"), "{}", third.log());
    for (label, runner) in [("arm64", "arm"), ("amd64", "amd"), ("arm64", "arm")] {
        let id = enqueue(
            server,
            &["sh", "-c", "echo on $(pwd)"],
            &["linux", label],
            false,
        );
        let done = wait_job(server, &id, "finish", Duration::from_secs(30), finished);
        assert_eq!(leased_by(&done), [runner]);
        assert_eq!(done["job"]["result"], json!({ "exitCode": 0 }));
        let lines = log_lines(&done);
        assert!(
            lines.len() == 1 && lines[0].contains(&format!("runner-{runner}/jobs/")),
            "{lines:?}"
        );
    }
    let gpu = enqueue(server, &["true"], &["gpu"], false);
    let queued = server.get("/api/v1/runners/jobs");
    assert_eq!(queued["jobs"][0]["id"], gpu.as_str());
    assert_eq!(queued["jobs"][0]["placeable"], false);
    let list = server.cli(&["runner", "list"]).ok();
    assert!(
        list.stdout.contains("amd") && list.stdout.contains("arm64,linux"),
        "{}",
        list.stdout
    );
    server.cli(&["runner", "remove", "arm"]).ok();
    let list = server.cli(&["runner", "list"]).ok();
    assert!(!list.stdout.contains("arm64"), "{}", list.stdout);
    server
        .cli(&["runner", "disable", "arm"])
        .fails_with("no runner named \"arm\"");
}

fn a_runner_killed_with_sigkill_loses_its_lease_within_bounds_and_the_job_runs_again_on_the_other(
    server: &mut Server,
) {
    let server = &*server;
    let token = token(server);
    let mut runners = [
        Runner::start(server, &token, "one", "linux"),
        Runner::start(server, &token, "two", "linux"),
    ];
    wait_registered(server, &["one", "two"]);
    let pids = server.work().join("pids");
    let script = format!(
        "echo $$ >> {}; echo started; sleep 10; echo done",
        pids.display()
    );
    let id = enqueue(server, &["sh", "-c", &script], &["linux"], true);
    let started = wait_job(server, &id, "start", Duration::from_secs(30), |j| {
        log_lines(j).len() == 1
    });
    let first = leased_by(&started)[0].clone();
    let victim = runners.iter_mut().find(|r| r.name == first).unwrap();
    victim.kill9();
    let killed_at = Instant::now();
    let lost = wait_job(server, &id, "loss", Duration::from_secs(10), |j| {
        !events_of(j, "lost").is_empty()
    });
    let took = killed_at.elapsed();
    println!("lease lost {took:?} after the runner's death");
    assert!(took < Duration::from_millis(6_500), "{took:?}");
    assert_eq!(
        events_of(&lost, "lost")[0]["reason"],
        format!("runner {first} lost: no heartbeat for 5s")
    );

    // The dead runner's job still runs; once the runner is back, the server
    // refuses the lease and the runner kills it.
    let orphan: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(alive(orphan), "the job outlives its runner's SIGKILL");
    let victim = runners.iter_mut().find(|r| r.name == first).unwrap();
    victim.spawn();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(orphan) {
        assert!(
            Instant::now() < deadline,
            "the lost job was not killed:\n{}",
            victim.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let done = wait_job(server, &id, "re-run", Duration::from_secs(30), finished);
    let other = if first == "one" { "two" } else { "one" };
    assert_eq!(leased_by(&done), [first.clone(), other.to_owned()]);
    assert_eq!(done["job"]["attempt"], 2);
    assert_eq!(
        log_lines(&done),
        ["started", "started", "done"],
        "the lost attempt's line, then the re-run's"
    );
}

fn a_runner_restarted_mid_job_resends_what_the_server_lacks_with_no_line_lost_or_twice(
    server: &mut Server,
) {
    let server = &*server;
    let token = token(server);
    let mut runner = Runner::start(server, &token, "solo", "linux");
    wait_registered(server, &["solo"]);
    let id = enqueue(
        server,
        &[
            "sh",
            "-c",
            "i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); sleep 0.01; done",
        ],
        &[],
        false,
    );
    wait_job(server, &id, "some lines", Duration::from_secs(30), |j| {
        log_lines(j).len() >= 20
    });
    runner.kill9();
    std::thread::sleep(Duration::from_millis(500));
    runner.spawn();
    let done = wait_job(server, &id, "finish", Duration::from_secs(30), finished);
    let expected: Vec<String> = (1..=300).map(|i| format!("line {i}")).collect();
    assert_eq!(log_lines(&done), expected);
    assert_eq!(
        done["job"]["attempt"], 1,
        "the same lease, taken over: {done:#}"
    );
    let credential = std::fs::metadata(runner.dir.join("credential.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&credential.permissions()) & 0o777,
        0o600
    );
    assert!(
        runner.log().contains("re-using the credential"),
        "{}",
        runner.log()
    );
}

/// Queues a job whose shell waits on a `sleep 60` in the background; its
/// id and the sleep's pid, once it runs.
fn start_sleeper(server: &Server) -> (String, i32) {
    let pid_file = server.work().join("sleeper");
    let script = format!(
        "sleep 60 & echo $! > {}; echo ready; wait",
        pid_file.display()
    );
    let id = enqueue(server, &["sh", "-c", &script], &[], false);
    wait_job(server, &id, "start", Duration::from_secs(30), |j| {
        log_lines(j).len() == 1
    });
    let sleeper = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (id, sleeper)
}

fn cancel_reaches_the_jobs_processes_within_2_s(server: &mut Server) {
    let server = &*server;
    let token = token(server);
    let _runner = Runner::start(server, &token, "solo", "linux");
    wait_registered(server, &["solo"]);
    let (id, sleeper) = start_sleeper(server);
    let (status, _) = server.api(
        "POST",
        &format!("/api/v1/runners/debug/jobs/{id}/cancel"),
        None,
    );
    assert_eq!(status, 200);
    let canceled_at = Instant::now();
    while alive(sleeper) {
        assert!(
            canceled_at.elapsed() < Duration::from_secs(2),
            "the job's process outlived its cancel by 2 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "cancel reached the job's processes in {:?}",
        canceled_at.elapsed()
    );
}

fn a_runner_disabled_mid_lease_is_refused_with_401_and_its_processes_are_killed(
    server: &mut Server,
) {
    let server = &*server;
    let token = token(server);
    let mut runner = Runner::start(server, &token, "doomed", "linux");
    wait_registered(server, &["doomed"]);
    let (id, sleeper) = start_sleeper(server);
    server.cli(&["runner", "disable", "doomed"]).ok();
    let status = runner.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        runner.log().contains("refused this runner's credential"),
        "{}",
        runner.log()
    );
    assert!(
        !alive(sleeper),
        "the job's process survived the runner's revocation"
    );
    let lost = job(server, &id);
    assert_eq!(
        events_of(&lost, "lost")[0]["reason"],
        "runner doomed disabled"
    );
    assert!(
        server.log_tail().contains("runner credential refused"),
        "{}",
        server.log_tail()
    );
    assert!(server.log_tail().contains("doomed"));
    // Restarted with its credential, it is told so at once.
    runner.spawn();
    assert!(!runner.wait_exit(Duration::from_secs(10)).success());

    // Something at the URL that is not a Gantry server: a clear error.
    runner.url = format!("{}/elsewhere", server.url);
    runner.spawn();
    assert!(!runner.wait_exit(Duration::from_secs(10)).success());
    assert!(
        runner.log().contains("does not speak the runner protocol"),
        "{}",
        runner.log()
    );

    // A wrong registration token: refused, and the server says who tried.
    let mut stranger = Runner::start(server, "grt_wrong", "stranger", "linux");
    assert!(!stranger.wait_exit(Duration::from_secs(10)).success());
    assert!(
        stranger.log().contains("registration refused"),
        "{}",
        stranger.log()
    );
    let log = server.log_tail();
    assert!(
        log.contains("runner registration refused") && log.contains("stranger"),
        "{log}"
    );
}

fn dispatch_latency_from_queued_to_leased_over_200_jobs(server: &mut Server) {
    let server = &*server;
    let token = token(server);
    let _one = Runner::start(server, &token, "one", "linux");
    let _two = Runner::start(server, &token, "two", "linux");
    wait_registered(server, &["one", "two"]);
    let http = reqwest::blocking::Client::new();
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let id = enqueue(server, &["true"], &["linux"], false);
        loop {
            let job: Value = http
                .get(format!("{}/api/v1/runners/debug/jobs/{id}", server.url))
                .bearer_auth(&server.token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            if !events_of(&job, "leased").is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p50 = latencies[100];
    let p99 = latencies[197];
    println!(
        "dispatch latency over 200 jobs (queue → leased, HTTP round trips included): p50 {p50:?}, p99 {p99:?}"
    );
    assert!(p99 < Duration::from_secs(1), "p50 {p50:?}, p99 {p99:?}");
}

fn a_server_killed_mid_job_has_the_job_killed_and_its_runner_carries_on(server: &mut Server) {
    let token = token(server);
    let runner = Runner::start(server, &token, "steady", "linux");
    wait_registered(server, &["steady"]);
    let (id, sleeper) = start_sleeper(server);
    server.kill9();
    server.restart();
    // The job's owner died with the server: its lease is lost, and the
    // runner, back in touch, is told to kill it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(sleeper) {
        assert!(
            Instant::now() < deadline,
            "the job of the dead server was not killed:\n{}",
            runner.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lost = job(server, &id);
    assert_eq!(lost["job"]["state"], "lost");
    assert_eq!(lost["job"]["reason"], "the server restarted");
    let again = enqueue(server, &["echo", "again"], &["linux"], false);
    let done = wait_job(server, &again, "finish", Duration::from_secs(30), finished);
    assert_eq!(log_lines(&done), ["again"]);
}

fn log_lines_stream_through_a_runner_in_order_and_are_counted_per_second(server: &mut Server) {
    let server = &*server;
    let token = token(server);
    let runner = Runner::start(server, &token, "loud", "linux");
    wait_registered(server, &["loud"]);
    const LINES: usize = 200_000;
    let idle_kib = runner.rss_kib().unwrap_or_default();
    let mut peak_kib = idle_kib;
    let started = Instant::now();
    let id = enqueue(server, &["seq", "1", &LINES.to_string()], &[], false);
    let deadline = started + Duration::from_secs(120);
    let done = loop {
        peak_kib = peak_kib.max(runner.rss_kib().unwrap_or_default());
        let job = job(server, &id);
        if finished(&job) {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "{LINES} lines took over 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = started.elapsed();
    let lines = log_lines(&done);
    assert_eq!(lines.len(), LINES);
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, line)| *line == (i + 1).to_string())
    );
    println!(
        "{LINES} log lines through a runner in {elapsed:?}: {:.0} lines/s; runner RSS idle {} KiB, peak {} KiB",
        LINES as f64 / elapsed.as_secs_f64(),
        idle_kib,
        peak_kib
    );
    // The runner streams from its job's output file: its memory does not
    // grow with the log (200,000 lines are about 1.3 MB of text).
    assert!(
        peak_kib < idle_kib + 32 * 1024,
        "the runner grew from {idle_kib} KiB to {peak_kib} KiB while streaming"
    );
}
