//! Where Gantry keeps its data by default.

use std::path::PathBuf;

/// `--data-dir`, else `$GANTRY_DATA_DIR` (clap reads it into the flag), else
/// `$XDG_DATA_HOME/gantry`, else `$HOME/.local/share/gantry`.
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
    if let Some(home) = nonempty("HOME") {
        return Ok(home.join(".local/share/gantry"));
    }
    anyhow::bail!("cannot choose a data directory: set --data-dir, GANTRY_DATA_DIR or HOME")
}
