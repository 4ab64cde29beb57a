//! A data plane that comes back by itself: after `kill -9` it is started
//! again within a second by `gantry serve`, adopts the instances that kept
//! running, and accepts the connections that waited in the listening
//! sockets' backlog; after a "reboot" (every process killed), `gantry
//! serve` alone brings every load balancer back.
//!
//! `GANTRY_TEST_SLOW=1` runs the load test longer, with more clients.

use std::io::BufReader;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::deploy_support::{deploy, exchange, free_port, get, shop_yaml};
use crate::harness::{Backend, Server, alive};

const RECOVERY_LIMIT: Duration = Duration::from_secs(1);

#[test]
fn a_killed_data_plane_is_back_within_a_second_with_its_instances_and_no_request_fails_after() {
    let server = Server::start(Backend::Sqlite);
    let _leftovers = KillLeftovers(server.data_dir());
    let port = shop(&server, "");
    let pids_before = instance_pids(&server);
    let slow = std::env::var("GANTRY_TEST_SLOW").is_ok_and(|v| v == "1");
    let (workers, before, after) = if slow {
        (16, Duration::from_secs(3), Duration::from_secs(10))
    } else {
        (6, Duration::from_secs(1), Duration::from_secs(3))
    };
    let load = TimedLoad::start(port, workers);
    std::thread::sleep(before);
    let old = dataplane_pid(&server);
    let killed = Instant::now();
    kill9(old);
    let back = wait_for_new_dataplane(&server, old, killed);
    std::thread::sleep(after);
    let requests = load.finish();

    let failed: Vec<&Sample> = requests.iter().filter(|r| r.error.is_some()).collect();
    let recovered = requests
        .iter()
        .filter(|r| r.error.is_none() && r.started > killed)
        .map(|r| r.ended - killed)
        .min()
        .expect("no request started after the kill was served");
    eprintln!(
        "data plane kill -9 under load ({workers} clients): new data plane after {back:?}, \
         first request served again {recovered:?} after the kill; {} of {} requests failed: {:?}",
        failed.len(),
        requests.len(),
        failed
            .iter()
            .map(|r| r.error.as_deref().unwrap_or(""))
            .collect::<Vec<_>>()
    );
    assert!(
        back < RECOVERY_LIMIT,
        "the data plane came back after {back:?}"
    );
    assert!(
        recovered < RECOVERY_LIMIT,
        "requests were served again only {recovered:?} after the kill"
    );
    let late: Vec<&&Sample> = failed
        .iter()
        .filter(|r| r.started > killed + RECOVERY_LIMIT)
        .collect();
    assert!(
        late.is_empty(),
        "requests failed more than 1 s after the kill: {late:#?}"
    );
    // Each client had at most one request (one connection) on the data
    // plane when it died.
    assert!(
        failed.len() <= workers,
        "{} requests failed, more than the {workers} that could be in flight: {failed:#?}",
        failed.len()
    );
    assert_eq!(
        instance_pids(&server),
        pids_before,
        "the instances were not adopted"
    );
}

#[test]
fn after_a_reboot_gantry_serve_alone_brings_every_load_balancer_back() {
    let mut server = Server::start(Backend::Sqlite);
    let _leftovers = KillLeftovers(server.data_dir());
    let second = free_port();
    let port = shop(
        &server,
        &format!(
            "  - name: shop-too\n    port: {second}\n    cluster: shop-web\n    \
             healthCheck: {{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}}\n"
        ),
    );
    assert!(get(second, "/").1.starts_with("v1 "));
    let instances = instance_pids(&server);
    let dataplane = dataplane_pid(&server);

    // Every process of the machine's Gantry dies at once.
    server.kill9();
    kill9(dataplane);
    for pid in &instances {
        kill9(*pid);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::iter::once(&dataplane)
        .chain(&instances)
        .any(|pid| alive(*pid))
    {
        assert!(Instant::now() < deadline, "a killed process is still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The listening socket closes when the last process holding it has
    // exited, which the kernel finishes a moment after the process is
    // reaped; a port still taken after that names its holder.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "port {port} still accepts after every process was killed: {}",
            listeners_of(port)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // No command: only the server starting.
    server.restart();
    for lb in [port, second] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some((200, body)) = try_get(lb) {
                assert!(body.starts_with("v1 "), "{body}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "load balancer on port {lb} not back:\n{}",
                dataplane_log(&server)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn an_instance_that_dies_after_adoption_is_restarted_by_the_new_data_plane() {
    let server = Server::start(Backend::Sqlite);
    let _leftovers = KillLeftovers(server.data_dir());
    let port = shop(&server, "");
    let pids = instance_pids(&server);
    let old = dataplane_pid(&server);
    kill9(old);
    wait_for_new_dataplane(&server, old, Instant::now());
    assert_eq!(
        instance_pids(&server),
        pids,
        "the instances were not adopted"
    );

    let victim = pids[0];
    kill9(victim);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let group = server.get("/api/v1/server-groups/shop-web-v000");
        let instances = group["instances"].as_array().cloned().unwrap_or_default();
        let restarted = instances.iter().any(|i| {
            i["pid"]
                .as_i64()
                .is_some_and(|p| p as i32 != victim && !pids.contains(&(p as i32)))
                && i["healthy"] == true
        });
        if restarted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the instance was not restarted: {group:#}\n{}",
            dataplane_log(&server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(port, "/").0, 200);
}

/// Applies the shop with `extra` load balancers and deploys v1 (2 instances).
fn shop(server: &Server, extra_load_balancers: &str) -> u16 {
    let port = free_port();
    let yaml = shop_yaml(port, "").replace(
        "pipelines:\n",
        &format!("{extra_load_balancers}pipelines:\n"),
    );
    server.apply(&yaml);
    let first = deploy(server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    port
}

/// What `ss` says listens on `port`, with the processes holding it.
fn listeners_of(port: u16) -> String {
    std::process::Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("(ss failed: {e})"))
}

fn instance_pids(server: &Server) -> Vec<i32> {
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    let pids: Vec<i32> = group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["pid"].as_i64().map(|p| p as i32))
        .collect();
    assert_eq!(pids.len(), 2, "{group:#}");
    pids
}

fn instance_ports(server: &Server) -> Vec<u16> {
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["port"].as_u64().map(|p| p as u16))
        .collect()
}

fn dataplane_pid(server: &Server) -> i32 {
    let path = server.data_dir().join("deploy/dataplane.pid");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", path.display()))
}

fn dataplane_log(server: &Server) -> String {
    let text =
        std::fs::read_to_string(server.data_dir().join("deploy/dataplane.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Instances outlive a killed data plane by design: a test that fails
/// between a kill and the restart must not leave them running: when a
/// test fails, every recorded instance still running in its data directory
/// is killed. (A test that passes leaves a data plane, which stops them
/// when the data directory goes.)
struct KillLeftovers(std::path::PathBuf);

impl Drop for KillLeftovers {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let records = std::fs::read(self.0.join("deploy/instances.json")).unwrap_or_default();
        let records: Vec<serde_json::Value> = serde_json::from_slice(&records).unwrap_or_default();
        for pid in records.iter().filter_map(|r| r["pid"].as_i64()) {
            let in_data_dir = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.starts_with(&self.0));
            if in_data_dir {
                kill9(pid as i32);
            }
        }
    }
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Waits, without sending any command, for a data plane other than `old`
/// to answer on its control socket; returns the time since `since`.
fn wait_for_new_dataplane(server: &Server, old: i32, since: Instant) -> Duration {
    let socket = server.data_dir().join("deploy/dataplane.sock");
    let deadline = since + Duration::from_secs(10);
    loop {
        let pid = std::fs::read_to_string(server.data_dir().join("deploy/dataplane.pid"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok());
        if let Some(pid) = pid
            && pid != old
            && alive(pid)
            && std::os::unix::net::UnixStream::connect(&socket).is_ok()
        {
            return since.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no data plane came back within 10 s:\n{}",
            dataplane_log(server)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `GET /`, `None` while nothing answers.
fn try_get(port: u16) -> Option<(u16, String)> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    exchange(&mut reader, false).ok()
}

/// One request as the load client saw it.
#[derive(Debug)]
struct Sample {
    started: Instant,
    ended: Instant,
    error: Option<String>,
}

/// Load whose every request is timed: half the clients keep their
/// connection alive, half open one per request.
struct TimedLoad {
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<Vec<Sample>>>,
}

impl TimedLoad {
    fn start(port: u16, workers: usize) -> TimedLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|i| {
                let stop = stop.clone();
                std::thread::spawn(move || timed_worker(port, i % 2 == 0, &stop))
            })
            .collect();
        TimedLoad { stop, workers }
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.workers
            .into_iter()
            .flat_map(|w| w.join().expect("load worker"))
            .collect()
    }
}

fn timed_worker(port: u16, keep_alive: bool, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut connection: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let result = (|| {
            if connection.is_none() {
                let stream = TcpStream::connect(("127.0.0.1", port))?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                connection = Some(BufReader::new(stream));
            }
            let reader = connection.as_mut().expect("connected");
            exchange(reader, keep_alive)
        })();
        let error = match result {
            Ok((200, _)) => None,
            Ok((status, body)) => Some(format!("status {status}: {}", body.trim())),
            Err(e) => Some(format!(
                "{} connection: {e}",
                if keep_alive { "keep-alive" } else { "new" }
            )),
        };
        if error.is_some() || !keep_alive {
            connection = None;
        }
        samples.push(Sample {
            started,
            ended: Instant::now(),
            error,
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    samples
}

#[test]
fn a_container_instance_whose_podman_client_died_is_adopted_by_its_name() {
    crate::steps_podman::podman();
    let server = Server::start(Backend::Sqlite);
    let _leftovers = KillLeftovers(server.data_dir());
    let image = build_image(&server.work().join("image"), "img1");
    let port = free_port();
    server.apply(&crate::deploy_containers::image_yaml(port));
    let id = server.run("deploy-image", &[&format!("image={image}")]);
    let first = server.wait_terminal(&id);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    let mut containers = Vec::new();
    for (index, instance) in group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .enumerate()
    {
        let name = format!("gantry-shop-web-v000-i{index}-{}", instance["port"]);
        containers.push((name.clone(), container_id(&name).expect("container runs")));
    }
    let clients = instance_pids(&server);
    let ports = instance_ports(&server);

    // The data plane and every `podman run` client die; the containers run on.
    let old = dataplane_pid(&server);
    kill9(old);
    for pid in &clients {
        kill9(*pid);
    }
    wait_for_new_dataplane(&server, old, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_get(port).map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "not served again:\n{}",
            dataplane_log(&server)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(port, "/").1.starts_with("img1 "));
    assert_eq!(
        instance_ports(&server),
        ports,
        "the instances were started again, not adopted:\n{}",
        dataplane_log(&server)
    );
    for (name, id) in &containers {
        assert_eq!(
            container_id(name).as_ref(),
            Some(id),
            "container {name} was replaced, not adopted:\n{}",
            dataplane_log(&server)
        );
    }
}

fn container_id(name: &str) -> Option<String> {
    let out = std::process::Command::new("podman")
        .args([
            "container",
            "inspect",
            "--format",
            "{{.State.Running}} {{.Id}}",
            name,
        ])
        .output()
        .expect("podman container inspect");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    text.strip_prefix("true ").map(str::to_owned)
}

/// An image of gantry-testapp on the local base image, answering
/// `version` as its version.
fn build_image(dir: &std::path::Path, version: &str) -> String {
    crate::deploy_containers::build_testapp_image(
        dir,
        &format!("localhost/gantry-adopt-testapp:{version}"),
        version,
    )
}
