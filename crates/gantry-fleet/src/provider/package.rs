//! A server group's package installed on a host by the host's own
//! `apt-get`, at the exact version, from the server's published APT tree.
//!
//! The host reaches the server only through its SSH connection: the
//! server's sshd-side relay listens on the host's loopback for the length
//! of the install, and apt sees the repository under a fixed name
//! (`http://gantry-server/apt/…`) with that relay as its HTTP proxy for
//! that name, so nothing on the host names the changing port once the
//! install is over. The relay reaches the server's APT gate
//! (`apt_gate.rs`), never the API: only reads of `/apt/…` pass it. The
//! source file is there only during the install: an administrator's later
//! `apt-get update` does not try a server it cannot reach.
//!
//! apt-get resolves every dependency before dpkg touches anything, so a
//! host lacking one fails with nothing changed; should dpkg stop half way
//! (a full disk), the script puts back the version that was installed
//! (or removes the package it had just begun to install).

use std::net::SocketAddr;

use gantry_deploy::model::HostPackage;

use crate::error::FleetError;
use crate::ssh::SshConnection;

/// The name apt knows the server's repository by on hosts.
const SERVER_NAME: &str = "gantry-server";

/// Installs `package` on the host (as root: directly, or with `sudo -n`
/// for another user) from the APT gate at `gate`. Nothing is done when
/// that version is installed.
pub async fn install(
    connection: &SshConnection,
    gate: SocketAddr,
    package: &HostPackage,
) -> Result<(), FleetError> {
    let what = format!(
        "installing {} {} with apt-get",
        package.name, package.version
    );
    check_names(package).map_err(FleetError::Invalid)?;
    let port = connection.forward_here(gate).await?;
    let script = script(package, port);
    let result = connection
        .run(
            &what,
            "if [ \"$(id -u)\" = 0 ]; then exec sh -s; else exec sudo -n sh -s; fi",
            Some(script.as_bytes()),
        )
        .await;
    connection.close_forward(port, gate).await;
    result.map(|_| ())
}

/// Package names and versions go into a shell script: only what Debian
/// allows in them (policy 5.6.1, 5.6.12) passes.
fn check_names(package: &HostPackage) -> Result<(), String> {
    let fits = |text: &str, extra: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    let path_fits =
        |text: &str| text.is_empty() || fits(text, "._-/") && !text.split('/').any(|s| s == "..");
    if !fits(&package.name, "+-.") || !fits(&package.version, "+-.~:") {
        return Err(format!(
            "package {:?} version {:?} is not a Debian package name and version",
            package.name, package.version
        ));
    }
    if !fits(&package.distribution, "._-/")
        || !fits(&package.component, "._-")
        || !path_fits(&package.prefix)
    {
        return Err(format!(
            "publication {:?} {:?} {:?} has characters apt sources cannot hold",
            package.prefix, package.distribution, package.component
        ));
    }
    Ok(())
}

fn script(package: &HostPackage, port: u16) -> String {
    let HostPackage {
        name,
        version,
        prefix,
        distribution,
        component,
        signed_by,
    } = package;
    let url = if prefix.is_empty() {
        format!("http://{SERVER_NAME}/apt")
    } else {
        format!("http://{SERVER_NAME}/apt/{prefix}")
    };
    let (key, options) = match signed_by {
        Some(armored) => (
            format!(
                "mkdir -p /etc/apt/keyrings\ncat >/etc/apt/keyrings/gantry-server.asc <<'GANTRY_KEY'\n{}\nGANTRY_KEY\n",
                armored.trim()
            ),
            "signed-by=/etc/apt/keyrings/gantry-server.asc",
        ),
        None => (String::new(), "trusted=yes"),
    };
    format!(
        r#"set -u
pkg='{name}'; version='{version}'
state() {{ dpkg-query -W -f='${{db:Status-Abbrev}}${{Version}}' "$pkg" 2>/dev/null || true; }}
[ "$(state)" = "ii $version" ] && exit 0
previous="$(dpkg-query -W -f='${{Version}}' "$pkg" 2>/dev/null || true)"
{key}list=/etc/apt/sources.list.d/gantry-server.list
log="$(mktemp)"
trap 'rm -f "$list" "$log"' EXIT
echo "deb [{options}] {url} {distribution} {component}" >"$list"
proxy="Acquire::http::Proxy::{SERVER_NAME}=http://127.0.0.1:{port}"
export DEBIAN_FRONTEND=noninteractive
explain() {{
  grep -E '^(E|W): |Depends:|[Nn]o space' "$log" | grep -v '^W: .*sandbox' | head -20 >&2
}}
if ! apt-get -q -o "$proxy" -o Dir::Etc::SourceList="$list" -o Dir::Etc::SourceParts=- \
     -o APT::Get::List-Cleanup=0 --error-on=any update >"$log" 2>&1; then
  echo "apt-get update from the server's repository failed:" >&2; explain; exit 1
fi
if ! apt-get -q -y -o "$proxy" --allow-downgrades -o Dpkg::Options::=--force-confold \
     install "$pkg=$version" >"$log" 2>&1; then
  echo "apt-get install $pkg=$version failed:" >&2; explain
  # dpkg may have stopped half way: back to what was there.
  case "$(state)" in
    "ii $previous"|"") ;;
    *) if [ -n "$previous" ]; then
         apt-get -q -y -o "$proxy" --allow-downgrades install "$pkg=$previous" >/dev/null 2>&1 ||
           echo "and $pkg $previous could not be put back" >&2
       else
         dpkg --purge "$pkg" >/dev/null 2>&1 || echo "and the half-installed $pkg could not be removed" >&2
       fi ;;
  esac
  exit 1
fi
[ "$(state)" = "ii $version" ] || {{ echo "dpkg shows $pkg as $(state), not $version installed" >&2; exit 1; }}
"#
    )
}

#[cfg(test)]
mod tests;
