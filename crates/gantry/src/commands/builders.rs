//! `gantry builders build`: the local images that stand in for Cloud Build's common
//! builders, made from Debian's packages with `mmdebstrap` (no registry needed), so a
//! Cloud Build file runs without `--image-map` for them:
//!
//! - `localhost/gantry-builder-docker`: the docker CLI (entrypoint `docker`); its steps
//!   reach the host's engine only through the Docker API gate, which forwards image work
//!   and refuses the rest. Used for `gcr.io/cloud-builders/docker` once it exists.
//! - `localhost/gantry-builder-git`: git (entrypoint `git`), for `gcr.io/cloud-builders/git`.
//! - `localhost/gantry-builder-shell`: bash and coreutils, for the plain-shell builders
//!   `bash`, `ubuntu` and `debian` where this machine has no image of that name. Its
//!   entrypoint is the `bash` image's: arguments starting with `-` go to bash, others are
//!   run as a command (as `ubuntu` runs them).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use tokio::process::Command;

#[derive(Debug, Subcommand)]
pub enum BuildersCommand {
    /// Build the builder images from Debian's packages (mmdebstrap, with this machine's
    /// apt sources); again to update them.
    Build {
        /// Only these builders (docker, git, shell; repeatable). Default: all.
        #[arg(long = "only", value_name = "NAME")]
        only: Vec<String>,
        /// The images' names before the builder's (`PREFIXdocker:latest`); a file maps
        /// to builders under another name with `--image-map`.
        #[arg(
            long,
            default_value = "localhost/gantry-builder-",
            value_name = "PREFIX"
        )]
        prefix: String,
        /// podman or docker (default: podman, else docker).
        #[arg(long, env = "GANTRY_CONTAINER_ENGINE", value_name = "ENGINE")]
        container_engine: Option<String>,
    },
}

/// One builder: its name, the packages beyond a minimal Debian, its entrypoint, the files
/// its packages bring that it never uses (the docker daemon beside its CLI), and a shell
/// command run in its root last (`$1` is the root).
struct Builder {
    name: &'static str,
    packages: &'static [&'static str],
    entrypoint: Option<&'static str>,
    unused: &'static [&'static str],
    finish: &'static str,
}

/// The entrypoint of Docker Hub's `bash` image: options go to bash, a command runs as is.
const SHELL_ENTRYPOINT: &str = r#"printf '%s\n' '#!/bin/sh' 'if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then set -- bash "$@"; fi' 'exec "$@"' > "$1/usr/local/bin/gantry-entrypoint" && chmod 755 "$1/usr/local/bin/gantry-entrypoint""#;

const BUILDERS: &[Builder] = &[
    Builder {
        name: "docker",
        packages: &["docker.io", "ca-certificates"],
        entrypoint: Some("docker"),
        unused: &[
            "/usr/sbin/dockerd",
            "/usr/bin/containerd",
            "/usr/bin/containerd-shim-runc-v2",
            "/usr/bin/ctr",
            "/usr/sbin/runc",
            "/usr/bin/docker-proxy",
        ],
        finish: "true",
    },
    Builder {
        name: "git",
        packages: &["git", "ca-certificates", "openssh-client"],
        entrypoint: Some("git"),
        unused: &[],
        finish: "true",
    },
    Builder {
        name: "shell",
        packages: &["bash", "coreutils", "ca-certificates", "curl"],
        entrypoint: Some("/usr/local/bin/gantry-entrypoint"),
        unused: &[],
        finish: SHELL_ENTRYPOINT,
    },
];

pub async fn run(command: BuildersCommand) -> anyhow::Result<ExitCode> {
    let BuildersCommand::Build {
        only,
        prefix,
        container_engine,
    } = command;
    for name in &only {
        if !BUILDERS.iter().any(|b| b.name == name) {
            bail!("unknown builder {name:?}; the builders are docker, git and shell");
        }
    }
    let engine = gantry_container::ContainerEngine::detect(container_engine.as_deref())?;
    let suite = debian_suite()?;
    for builder in BUILDERS
        .iter()
        .filter(|b| only.is_empty() || only.iter().any(|n| n == b.name))
    {
        let image = format!("{prefix}{}:latest", builder.name);
        eprintln!(
            "building {image} from Debian {suite} ({})",
            builder.packages.join(", ")
        );
        let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
        let tarball = dir.path().join("rootfs.tar");
        let status = Command::new("mmdebstrap")
            .args(["--variant=minbase", "--quiet"])
            .arg(format!("--include={}", builder.packages.join(",")))
            // No documentation or caches in the image.
            .args([
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
            ])
            .arg(format!(
                "--customize-hook=rm -rf \"$1\"/var/cache/apt/* \"$1\"/var/lib/apt/lists/*{}",
                builder
                    .unused
                    .iter()
                    .map(|path| format!(" \"$1\"{path}"))
                    .collect::<String>()
            ))
            .arg(format!("--customize-hook={}", builder.finish))
            .arg(&suite)
            .arg(&tarball)
            .status()
            .await
            .context("cannot run mmdebstrap (install Debian's mmdebstrap package)")?;
        if !status.success() {
            bail!(
                "mmdebstrap could not make the {} builder's root ({status})",
                builder.name
            );
        }
        let mut import = Command::new(&engine.program);
        import.arg("import");
        if let Some(entrypoint) = builder.entrypoint {
            import.args(["--change", &format!("ENTRYPOINT [\"{entrypoint}\"]")]);
        }
        import
            .args(["--change", "WORKDIR /workspace"])
            .args(["--change", "LABEL io.gantry.builder=true"])
            .arg(&tarball)
            .arg(&image);
        let status = import
            .status()
            .await
            .context("cannot import the builder's root")?;
        if !status.success() {
            bail!(
                "{} import of {image} failed ({status})",
                engine.program.display()
            );
        }
        eprintln!("built {image}");
    }
    Ok(ExitCode::SUCCESS)
}

/// This machine's Debian release (`VERSION_CODENAME` of /etc/os-release), whose apt
/// sources mmdebstrap uses.
fn debian_suite() -> anyhow::Result<String> {
    let release =
        std::fs::read_to_string("/etc/os-release").context("cannot read /etc/os-release")?;
    release
        .lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|name| name.trim_matches('"').to_owned())
        .filter(|name| !name.is_empty())
        .context("/etc/os-release names no VERSION_CODENAME: builder images need a Debian machine")
}
