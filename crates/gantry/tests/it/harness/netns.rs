//! A network namespace joined to this machine by a veth pair, for a process
//! (a runner, a fleet host's agent) whose network a test takes away.
//!
//! Each namespace gets a name and a /30 of 198.18.0.0/15 (the benchmarking
//! range, routed nowhere) of its own, so tests in parallel do not collide;
//! the traffic stays inside the pair. The namespace and the host's end of
//! the pair are removed when the guard is dropped, a failing test included.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace with a veth pair to this machine.
pub struct NetNs {
    /// The namespace's name (`ip netns`).
    pub name: String,
    /// This machine's end of the pair and its address.
    pub host_dev: String,
    pub host_ip: Ipv4Addr,
    /// The namespace's end of the pair and its address.
    pub inner_dev: String,
    pub inner_ip: Ipv4Addr,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl NetNs {
    /// Creates the namespace, the pair and their addresses, both ends up.
    pub fn create() -> NetNs {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Interface names have at most 15 bytes: `gt` + 8 hex digits + `h`.
        let tag = format!("{:08x}", (pid << 8) ^ n);
        let (host_ip, inner_ip) = free_subnet(pid.wrapping_mul(31).wrapping_add(n));
        let net = NetNs {
            name: format!("gantry-it-{tag}"),
            host_dev: format!("gt{tag}h"),
            host_ip,
            inner_dev: format!("gt{tag}n"),
            inner_ip,
        };
        // From here on the guard removes whatever was made.
        ip(&["netns", "add", &net.name]);
        ip(&[
            "link",
            "add",
            &net.host_dev,
            "type",
            "veth",
            "peer",
            "name",
            &net.inner_dev,
        ]);
        ip(&["link", "set", &net.inner_dev, "netns", &net.name]);
        ip(&[
            "addr",
            "add",
            &format!("{host_ip}/30"),
            "dev",
            &net.host_dev,
        ]);
        ip(&["link", "set", &net.host_dev, "up"]);
        net.ip_inside(&[
            "addr",
            "add",
            &format!("{inner_ip}/30"),
            "dev",
            &net.inner_dev,
        ]);
        net.ip_inside(&["link", "set", &net.inner_dev, "up"]);
        net.ip_inside(&["link", "set", "lo", "up"]);
        net
    }

    /// A command that runs `program` inside the namespace `name` (`ip
    /// netns exec` execs it: the child's pid is the program's own).
    pub fn command_in(name: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", name, program]);
        command
    }

    /// Takes the network away: the namespace's end of the pair goes down,
    /// so the packets its processes send go nowhere and those sent to it
    /// are dropped, while connections already open are not told.
    pub fn cut(&self) {
        self.ip_inside(&["link", "set", &self.inner_dev, "down"]);
    }

    /// Brings the network back.
    pub fn restore(&self) {
        self.ip_inside(&["link", "set", &self.inner_dev, "up"]);
    }

    fn ip_inside(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Removing the namespace removes its end of the pair, and with it
        // this machine's; the host's end is removed too in case the
        // namespace was never made.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_dev])
            .output();
    }
}

/// A /30 in 198.18.0.0/15 no interface of this machine has an address in,
/// starting from `seed`: its first and second host addresses.
fn free_subnet(seed: u32) -> (Ipv4Addr, Ipv4Addr) {
    let taken = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .output()
            .expect("ip addr show")
            .stdout,
    )
    .into_owned();
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    // 2^17 addresses: 32768 subnets of four.
    for i in 0..32_768 {
        let subnet = base + ((seed.wrapping_add(i) % 32_768) << 2);
        let (host, inner) = (Ipv4Addr::from(subnet + 1), Ipv4Addr::from(subnet + 2));
        if !taken.contains(&format!("inet {host}/")) && !taken.contains(&format!("inet {inner}/")) {
            return (host, inner);
        }
    }
    panic!("no free /30 in 198.18.0.0/15");
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
