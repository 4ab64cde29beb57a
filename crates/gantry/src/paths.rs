//! Where Gantry keeps its data by default.

use std::path::PathBuf;

/// The data directory of a server that runs as root.
pub const SYSTEM_DATA_DIR: &str = "/var/lib/gantry";

/// `--data-dir`, else `$GANTRY_DATA_DIR` (clap reads it into the flag), else
/// `$XDG_DATA_HOME/gantry`, else, for root, `/var/lib/gantry` (unless
/// `$HOME/.local/share/gantry` exists from before that default), else
/// `$HOME/.local/share/gantry`.
///
/// Root's own home is closed to other users (0700), and host steps run as
/// the step user: their workspaces must sit below directories that user can
/// search, as a system service's `/var/lib` is.
pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let nonempty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(xdg) = nonempty("XDG_DATA_HOME") {
        return Ok(xdg.join("gantry"));
    }
    let home = nonempty("HOME").map(|home| home.join(".local/share/gantry"));
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    if root && !home.as_ref().is_some_and(|dir| dir.exists()) {
        return Ok(PathBuf::from(SYSTEM_DATA_DIR));
    }
    if let Some(home) = home {
        return Ok(home);
    }
    anyhow::bail!("cannot choose a data directory: set --data-dir, GANTRY_DATA_DIR or HOME")
}
