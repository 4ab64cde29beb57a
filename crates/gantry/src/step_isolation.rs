//! `gantry serve`'s start for confined steps: find what the machine offers
//! (a step user when root, Landlock), say in one warning line what is
//! missing, and make the data directory private to the server (traversable
//! only, when a step user must reach its workspace in it).

use std::path::Path;

use anyhow::Context;
use gantry_engine::HostSteps;
use tracing::{info, warn};

use crate::args::StepIsolationArgs;

/// The sandbox for host steps and whether they run at all: they must not
/// reach `data_dir` (made private here) nor `also_protected`.
pub fn prepare(
    args: &StepIsolationArgs,
    data_dir: &Path,
    also_protected: &[std::path::PathBuf],
) -> anyhow::Result<(Option<gantry_sandbox::Sandbox>, HostSteps)> {
    let host_steps = match args.host_steps.as_str() {
        "off" => HostSteps::Off,
        _ => HostSteps::On,
    };
    let sandbox = gantry_sandbox::Sandbox::prepare(gantry_sandbox::SandboxConfig {
        user: args.step_user.clone(),
        protected: std::iter::once(data_dir.to_owned())
            .chain(also_protected.iter().cloned())
            .collect(),
    })
    .context("cannot prepare the confinement of host steps")?;
    match sandbox.warning() {
        Some(warning) if host_steps == HostSteps::On => warn!("{warning}"),
        _ => info!(
            user = sandbox.identity().map(|i| i.name.as_str()).unwrap_or("(the server's)"),
            landlock_abi = sandbox.landlock_abi().unwrap_or(0),
            host_steps = %args.host_steps,
            "host steps confined"
        ),
    }
    if let Some(identity) = sandbox.identity()
        && let Some(closed) = closed_ancestor(data_dir, identity.uid, identity.gid)
    {
        warn!(
            user = %identity.name,
            directory = %closed.display(),
            "host steps cannot reach their workspaces by absolute path: {} is not searchable by {}; \
             give the server a data directory below searchable directories (--data-dir {})",
            closed.display(),
            identity.name,
            crate::paths::SYSTEM_DATA_DIR
        );
    }
    let step_uid = sandbox.identity().map(|i| i.uid);
    let changed = crate::private_files::tighten(data_dir, step_uid, step_uid.is_some())
        .with_context(|| format!("cannot make {} private", data_dir.display()))?;
    if changed > 0 {
        info!(
            files = changed,
            "took the rights of group and others off the data directory"
        );
    }
    Ok((Some(sandbox), host_steps))
}

/// The first directory above `data_dir` that the user `uid`/`gid` cannot
/// search (cross), if any: steps reach their workspace by absolute path.
pub(crate) fn closed_ancestor(data_dir: &Path, uid: u32, gid: u32) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    data_dir.ancestors().skip(1).find_map(|dir| {
        let meta = std::fs::metadata(dir).ok()?;
        let mode = meta.mode();
        let searchable = if meta.uid() == uid {
            mode & 0o100 != 0
        } else if meta.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        (!searchable).then(|| dir.to_owned())
    })
}
