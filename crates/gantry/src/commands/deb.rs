//! `gantry deb build`: a `.deb` from a directory, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gantry_deb::{BuildOptions, Compression};

#[derive(Debug, Subcommand)]
pub enum DebCommand {
    /// Build a package whose files are the tree under DIR.
    Build {
        dir: PathBuf,
        /// The package's name (Package:).
        #[arg(long)]
        name: String,
        /// Its version (Version:), in dpkg's syntax, e.g. 1.4.2-1.
        #[arg(long)]
        version: String,
        /// Its architecture (Architecture:): all, amd64, arm64, …
        #[arg(long, default_value = "all")]
        arch: String,
        /// A dependency, e.g. 'libc6 (>= 2.36)' (repeatable).
        #[arg(long)]
        depends: Vec<String>,
        /// Maintainer:, e.g. 'Team <team@example.org>'.
        #[arg(long)]
        maintainer: Option<String>,
        /// Description: (its first line is the summary).
        #[arg(long)]
        description: Option<String>,
        /// A script dpkg runs before unpacking.
        #[arg(long, value_name = "FILE")]
        preinst: Option<PathBuf>,
        /// A script dpkg runs after unpacking (configure).
        #[arg(long, value_name = "FILE")]
        postinst: Option<PathBuf>,
        /// A script dpkg runs before removing.
        #[arg(long, value_name = "FILE")]
        prerm: Option<PathBuf>,
        /// A script dpkg runs after removing (or purging).
        #[arg(long, value_name = "FILE")]
        postrm: Option<PathBuf>,
        /// gzip (default), xz or none.
        #[arg(long, default_value = "gzip")]
        compression: String,
        /// Where to write it (default NAME_VERSION_ARCH.deb).
        #[arg(short = 'o', long = "output", value_name = "OUT.deb")]
        output: Option<PathBuf>,
    },
}

pub fn run(command: DebCommand) -> anyhow::Result<ExitCode> {
    let DebCommand::Build {
        dir,
        name,
        version,
        arch,
        depends,
        maintainer,
        description,
        preinst,
        postinst,
        prerm,
        postrm,
        compression,
        output,
    } = command;
    let mut options = BuildOptions::new(&name, &version);
    options.architecture = arch;
    options.depends = depends;
    if let Some(maintainer) = maintainer {
        options.maintainer = maintainer;
    }
    if let Some(description) = description {
        options.description = description;
    }
    options.compression = match compression.as_str() {
        "gzip" | "gz" => Compression::Gzip,
        "xz" => Compression::Xz,
        "none" => Compression::None,
        other => anyhow::bail!("unknown compression {other:?}: use gzip, xz or none"),
    };
    // Reproducible builds: SOURCE_DATE_EPOCH when set, else a fixed time.
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        options.mtime = epoch
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH {epoch:?} is not a number"))?;
    }
    for (script, path) in [
        ("preinst", preinst),
        ("postinst", postinst),
        ("prerm", prerm),
        ("postrm", postrm),
    ] {
        if let Some(path) = path {
            let body = std::fs::read(&path)
                .with_context(|| format!("cannot read {script} script {}", path.display()))?;
            options.scripts.push((script.to_owned(), body));
        }
    }
    let version_in_name = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
    let output = output.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{name}_{version_in_name}_{}.deb",
            options.architecture
        ))
    });
    gantry_deb::build_to_file(&dir, &options, &output)?;
    println!("{}", output.display());
    Ok(ExitCode::SUCCESS)
}
