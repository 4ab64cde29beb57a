//! `gantry apt …`: aptly's commands (`repo`, `snapshot`, `publish`, `db
//! cleanup`) plus `key`, through a server's API or (`--local`) on a data
//! directory directly (`backend.rs`).

mod backend;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gantry_apt::{PublicationSpec, Source, SourceKind};
use serde_json::Value;

use crate::client::{Client, segment};
use backend::{Added, Backend};

/// `gantry apt [--local] COMMAND`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LOCAL_HELP)]
pub struct AptArgs {
    /// Work on the data directory (--data-dir, GANTRY_DATA_DIR) in this
    /// process instead of asking a server, like aptly does; safe beside a
    /// server using the same directory, which then serves what was published.
    #[arg(long)]
    pub local: bool,
    /// With --local: the server's database, if not DATA_DIR/gantry.db.
    #[arg(long, value_name = "URL", requires = "local")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: AptCommand,
}

const LOCAL_HELP: &str = "\
Without --local every command goes to the server at GANTRY_URL. With --local
it opens DATA_DIR/gantry.db and DATA_DIR/apt itself, through the same code the
server runs: one process, no HTTP, as fast as a tool working on its own files.
A server on the same data directory keeps working meanwhile (changes take a lock
on DATA_DIR/apt/lock; the database is shared in WAL mode) and serves at /apt/
what a local publish wrote. What a local add lands starts the pipelines with
artifact triggers when a server runs on that database (now or later).";

#[derive(Debug, Subcommand)]
pub enum AptCommand {
    /// Local package repositories (aptly's `repo`).
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Frozen copies of a repository's package list.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Signed `dists/` trees served at /apt/PREFIX/.
    #[command(subcommand)]
    Publish(PublishCommand),
    /// The signing keys of publications.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The package store as a whole (aptly's `db`).
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Delete the packages no repository, snapshot or kept publication
    /// refers to, and free their bytes: packs left with nothing alive are
    /// removed, packs half dead or more are rewritten.
    Cleanup {
        /// Change nothing; say what would go.
        #[arg(long)]
        dry_run: bool,
        /// List the packages deleted.
        #[arg(long)]
        verbose: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create an empty repository.
    Create {
        name: String,
        /// The distribution its publications default to.
        #[arg(long)]
        distribution: Option<String>,
        /// The component its publications default to (main).
        #[arg(long)]
        component: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Every repository with its package count.
    List,
    /// One repository's settings.
    Show {
        name: String,
        /// List its packages too.
        #[arg(long)]
        with_packages: bool,
    },
    /// Add package files (or every .deb of a directory).
    Add {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Replace a package of the same name, version and architecture whose file differs.
        #[arg(long)]
        force_replace: bool,
    },
    /// Remove the packages matching a query, e.g. 'hello (<< 1.2)'.
    Remove { name: String, query: String },
    /// Copy the packages matching a query to another repository.
    Copy {
        source: String,
        destination: String,
        query: String,
    },
    /// Move the packages matching a query to another repository.
    Move {
        source: String,
        destination: String,
        query: String,
    },
    /// Delete a repository (refused while a publication uses it).
    Drop { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// `snapshot create NAME from repo REPO`.
    Create {
        name: String,
        #[arg(value_parser = ["from"])]
        from: String,
        #[arg(value_parser = ["repo"])]
        kind: String,
        repo: String,
    },
    /// Every snapshot.
    List,
    /// One snapshot and its packages.
    Show { name: String },
    /// The packages only in one of two snapshots, or in both with other versions.
    Diff { left: String, right: String },
    /// A new snapshot holding the packages of several.
    Merge {
        destination: String,
        #[arg(required = true)]
        sources: Vec<String>,
        /// Keep only the newest version of each package.
        #[arg(long)]
        latest: bool,
    },
    /// Delete a snapshot (refused while a publication uses it).
    Drop { name: String },
}

#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// Publish a repository.
    Repo {
        name: String,
        prefix: Option<String>,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// Publish snapshots (comma-separated components take one snapshot each).
    Snapshot {
        name: String,
        prefix: Option<String>,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// Every publication: prefix, distribution, sources.
    List,
    /// Point a snapshot publication at other snapshots, atomically.
    Switch {
        distribution: String,
        /// `[PREFIX] SNAPSHOT…`: a leading argument that is not a snapshot is the prefix.
        #[arg(required = true)]
        args: Vec<String>,
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Publish a repository publication's current packages again.
    Update {
        distribution: String,
        prefix: Option<String>,
    },
    /// Remove a publication's tree.
    Drop {
        distribution: String,
        prefix: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct PublishOptions {
    /// The distribution (`dists/D`), e.g. stable.
    #[arg(long)]
    distribution: String,
    /// Architectures to publish, comma-separated (default: those of the packages).
    #[arg(long, value_delimiter = ',')]
    architectures: Vec<String>,
    #[arg(long, default_value = "main")]
    component: String,
    /// Publish without InRelease/Release.gpg (apt refuses it unless told to trust it).
    #[arg(long)]
    skip_signing: bool,
    /// The signing key's id or fingerprint (default: the server's key).
    #[arg(long = "gpg-key")]
    gpg_key: Option<String>,
    /// Leave out `by-hash/` index copies (on by default: they keep clients
    /// that are mid-update consistent across a publish).
    #[arg(long)]
    no_acquire_by_hash: bool,
    /// Also write `Packages.xz` (about 4 % smaller than `.gz` for an index
    /// of digests, for ten times the CPU time).
    #[arg(long)]
    xz: bool,
    #[arg(long)]
    origin: Option<String>,
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an Ed25519 signing key.
    Generate { user_id: String },
    /// Import an armored secret key from FILE.
    Import { file: PathBuf },
    /// Print the armored public key (of ID, or the default key).
    ExportPublic { id: Option<String> },
    /// Every signing key: fingerprint and user ID.
    List,
}

fn print_packages(packages: &Value) {
    for p in packages.as_array().into_iter().flatten() {
        println!("  {}", p["key"].as_str().unwrap_or_default());
    }
}

/// Runs one command against the server at `url` or, with `--local`, on the
/// data directory (`data_dir`: the `--data-dir` flag, if given).
pub async fn run(args: AptArgs, url: &str, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let api = if args.local {
        Backend::local(&crate::paths::data_dir(data_dir)?, args.database.as_deref()).await?
    } else {
        Backend::Remote(Client::new(url, crate::paths::data_dir(data_dir))?)
    };
    match args.command {
        AptCommand::Repo(command) => repo(&api, command).await?,
        AptCommand::Snapshot(command) => snapshot(&api, command).await?,
        AptCommand::Publish(command) => publish(&api, command).await?,
        AptCommand::Key(command) => key(&api, command).await?,
        AptCommand::Db(command) => db(&api, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn repo(api: &Backend, command: RepoCommand) -> anyhow::Result<()> {
    match command {
        RepoCommand::Create {
            name,
            distribution,
            component,
            comment,
        } => {
            api.create_repo(
                &name,
                distribution.as_deref(),
                component.as_deref(),
                comment.as_deref(),
            )
            .await?;
            println!("Local repo [{name}] successfully added.");
        }
        RepoCommand::List => {
            for repo in api.repos().await?.as_array().into_iter().flatten() {
                println!(
                    " * [{}] (packages: {})",
                    repo["name"].as_str().unwrap_or_default(),
                    repo["packages"]
                );
            }
        }
        RepoCommand::Show {
            name,
            with_packages,
        } => {
            let shown = api.repo(&name).await?;
            let repo = &shown["repo"];
            println!("Name: {}", repo["name"].as_str().unwrap_or_default());
            println!("Comment: {}", repo["comment"].as_str().unwrap_or_default());
            println!(
                "Default Distribution: {}",
                repo["distribution"].as_str().unwrap_or_default()
            );
            println!(
                "Default Component: {}",
                repo["component"].as_str().unwrap_or_default()
            );
            println!("Number of packages: {}", repo["packages"]);
            if with_packages {
                println!("Packages:");
                print_packages(&shown["packages"]);
            }
        }
        RepoCommand::Add {
            name,
            files,
            force_replace,
        } => {
            let mut paths = Vec::new();
            for file in files {
                if file.is_dir() {
                    let mut found: Vec<PathBuf> = std::fs::read_dir(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
                        .collect();
                    found.sort();
                    paths.extend(found);
                } else {
                    paths.push(file);
                }
            }
            add_files(api, &name, &paths, force_replace).await?;
        }
        RepoCommand::Remove { name, query } => {
            let removed = api.remove(&name, &query).await?;
            for p in removed.as_array().into_iter().flatten() {
                println!("[-] {} removed", p["key"].as_str().unwrap_or_default());
            }
        }
        RepoCommand::Copy {
            source,
            destination,
            query,
        } => {
            copy(api, &source, &destination, &query, false).await?;
        }
        RepoCommand::Move {
            source,
            destination,
            query,
        } => {
            copy(api, &source, &destination, &query, true).await?;
        }
        RepoCommand::Drop { name } => {
            api.drop_repo(&name).await?;
            println!("Local repo `{name}` has been removed.");
        }
    }
    Ok(())
}

async fn copy(
    api: &Backend,
    source: &str,
    destination: &str,
    query: &str,
    move_them: bool,
) -> anyhow::Result<()> {
    let packages = api.copy(source, destination, query, move_them).await?;
    let sign = if move_them { "[o]" } else { "[+]" };
    for p in packages.as_array().into_iter().flatten() {
        println!(
            "{sign} {} {}",
            p["key"].as_str().unwrap_or_default(),
            if move_them { "moved" } else { "copied" }
        );
    }
    Ok(())
}

async fn db(api: &Backend, command: DbCommand) -> anyhow::Result<()> {
    let DbCommand::Cleanup { dry_run, verbose } = command;
    let report = api.cleanup(dry_run).await?;
    print!("{}", cleanup_text(&report, verbose));
    Ok(())
}

/// What a cleanup did, in aptly's words where it has some.
fn cleanup_text(report: &Value, verbose: bool) -> String {
    let count = |field: &str| report[field].as_u64().unwrap_or_default();
    let dry_run = report["dryRun"].as_bool().unwrap_or_default();
    let (deleting, deleted, freed) = if dry_run {
        (
            "Would delete",
            "would be deleted",
            "Disk space that would be freed",
        )
    } else {
        ("Deleting", "deleted", "Disk space freed")
    };
    let packages = report["packagesDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut text = format!("{deleting} unreferenced packages ({})...\n", packages.len());
    if verbose {
        for p in &packages {
            text += &format!(
                "  [-] {} {deleted}\n",
                p["key"].as_str().unwrap_or_default()
            );
        }
    }
    text += &format!(
        "{deleting} unreferenced files: {} pack(s), {} pool file(s), {} abandoned pack(s)\n",
        count("packsDeleted"),
        count("poolFilesDeleted"),
        count("abandonedPacksDeleted")
    );
    text += &format!(
        "Packs rewritten (half dead or more): {}\n",
        count("packsRewritten")
    );
    if count("packsKeptWithDeadBytes") > 0 {
        text += &format!(
            "Packs kept (less than half dead): {}, {} of dead space left in them\n",
            count("packsKeptWithDeadBytes"),
            human_bytes(count("deadBytesLeft"))
        );
    }
    text += &format!("{freed}: {}\n", human_bytes(count("bytesFreed")));
    if dry_run {
        text += "Dry run: nothing was changed.\n";
    }
    text
}

/// `1.5 MiB (1572864 bytes)`.
fn human_bytes(bytes: u64) -> String {
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for next in ["KiB", "MiB", "GiB", "TiB"] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit == "bytes" {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {unit} ({bytes} bytes)")
    }
}

async fn snapshot(api: &Backend, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Create { name, repo, .. } => {
            api.snapshot_from_repo(&name, &repo).await?;
            println!("Snapshot {name} successfully created.");
        }
        SnapshotCommand::List => {
            for s in api.snapshots().await?.as_array().into_iter().flatten() {
                println!(
                    " * [{}]: {}",
                    s["name"].as_str().unwrap_or_default(),
                    s["description"].as_str().unwrap_or_default()
                );
            }
        }
        SnapshotCommand::Show { name } => {
            let s = api.snapshot(&name).await?;
            println!("Name: {}", s["name"].as_str().unwrap_or_default());
            println!(
                "Description: {}",
                s["description"].as_str().unwrap_or_default()
            );
            println!(
                "Number of packages: {}",
                s["packages"].as_array().map_or(0, Vec::len)
            );
            println!("Packages:");
            print_packages(&s["packages"]);
        }
        SnapshotCommand::Diff { left, right } => {
            let d = api.diff(&left, &right).await?;
            for p in d["only_left"].as_array().into_iter().flatten() {
                println!("- {}", p["key"].as_str().unwrap_or_default());
            }
            for p in d["only_right"].as_array().into_iter().flatten() {
                println!("+ {}", p["key"].as_str().unwrap_or_default());
            }
            for pair in d["changed"].as_array().into_iter().flatten() {
                println!(
                    "! {} -> {}",
                    pair[0]["key"].as_str().unwrap_or_default(),
                    pair[1]["key"].as_str().unwrap_or_default()
                );
            }
        }
        SnapshotCommand::Merge {
            destination,
            sources,
            latest,
        } => {
            api.merge(&destination, &sources, latest).await?;
            println!("Snapshot {destination} successfully created.");
        }
        SnapshotCommand::Drop { name } => {
            api.drop_snapshot(&name).await?;
            println!("Snapshot `{name}` has been dropped.");
        }
    }
    Ok(())
}

async fn publish(api: &Backend, command: PublishCommand) -> anyhow::Result<()> {
    match command {
        PublishCommand::Repo {
            name,
            prefix,
            options,
        } => publish_sources(api, SourceKind::Repo, &name, prefix, options).await?,
        PublishCommand::Snapshot {
            name,
            prefix,
            options,
        } => publish_sources(api, SourceKind::Snapshot, &name, prefix, options).await?,
        PublishCommand::List => {
            for p in api.publications().await?.as_array().into_iter().flatten() {
                let sources: Vec<String> = p["sources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        format!(
                            "{{{}: [{}]}}",
                            s["component"].as_str().unwrap_or_default(),
                            s["name"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                let archs: Vec<&str> = p["architectures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "  * {}/{} [{}] publishes {}",
                    p["prefix"].as_str().unwrap_or_default(),
                    p["distribution"].as_str().unwrap_or_default(),
                    archs.join(", "),
                    sources.join(", ")
                );
            }
        }
        PublishCommand::Switch {
            distribution,
            args,
            prefix,
        } => {
            let (prefix, snapshots) = match prefix {
                Some(prefix) => (Some(prefix), args),
                None => {
                    let snapshots: Vec<String> = api
                        .snapshots()
                        .await?
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s["name"].as_str().map(str::to_owned))
                        .collect();
                    if args.len() > 1 && !snapshots.contains(&args[0]) {
                        (Some(args[0].clone()), args[1..].to_vec())
                    } else {
                        (None, args)
                    }
                }
            };
            api.republish(prefix.as_deref(), &distribution, Some(snapshots))
                .await?;
            println!(
                "Publish for snapshot {distribution} has been successfully switched to new snapshot."
            );
        }
        PublishCommand::Update {
            distribution,
            prefix,
        } => {
            api.republish(prefix.as_deref(), &distribution, None)
                .await?;
            println!("Publish for local repo {distribution} has been successfully updated.");
        }
        PublishCommand::Drop {
            distribution,
            prefix,
        } => {
            api.drop_publication(prefix.as_deref(), &distribution)
                .await?;
            println!("Published repository has been removed successfully.");
        }
    }
    Ok(())
}

async fn publish_sources(
    api: &Backend,
    kind: SourceKind,
    names: &str,
    prefix: Option<String>,
    options: PublishOptions,
) -> anyhow::Result<()> {
    let names: Vec<&str> = names.split(',').collect();
    let components: Vec<&str> = options.component.split(',').collect();
    if names.len() != components.len() {
        anyhow::bail!(
            "{} components given for {} sources: give one component per source",
            components.len(),
            names.len()
        );
    }
    let sources = components
        .iter()
        .zip(&names)
        .map(|(component, name)| Source {
            component: (*component).to_owned(),
            name: (*name).to_owned(),
        })
        .collect();
    let spec = PublicationSpec {
        source_kind: kind,
        sources,
        architectures: options.architectures,
        skip_signing: options.skip_signing,
        key: options.gpg_key,
        acquire_by_hash: !options.no_acquire_by_hash,
        xz: options.xz,
        origin: options.origin,
        label: options.label,
    };
    let published = api
        .publish(prefix.as_deref(), &options.distribution, spec)
        .await?;
    println!(
        "{} {} has been successfully published.\nNow you can add following line to apt sources:\n  deb URL/apt/{} {} {}",
        if kind == SourceKind::Repo {
            "Local repo"
        } else {
            "Snapshot"
        },
        names.join(","),
        match published["prefix"].as_str() {
            Some(".") | None => String::new(),
            Some(p) => p.to_owned(),
        },
        options.distribution,
        components.join(" ")
    );
    Ok(())
}

async fn key(api: &Backend, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate { user_id } => {
            let keys = api.create_key(Some(user_id), None).await?;
            for k in keys.as_array().into_iter().flatten() {
                println!("{}", k["fingerprint"].as_str().unwrap_or_default());
            }
        }
        KeyCommand::Import { file } => {
            let armored = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let keys = api.create_key(None, Some(armored)).await?;
            for k in keys.as_array().into_iter().flatten() {
                println!("{}", k["fingerprint"].as_str().unwrap_or_default());
            }
        }
        KeyCommand::ExportPublic { id } => {
            print!("{}", api.public_key(id).await?);
        }
        KeyCommand::List => {
            for k in api.keys().await?.as_array().into_iter().flatten() {
                println!(
                    "{} {}",
                    k["fingerprint"].as_str().unwrap_or_default(),
                    k["user_id"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// Adds package files and prints what became of each.
async fn add_files(
    api: &Backend,
    repo: &str,
    paths: &[PathBuf],
    force_replace: bool,
) -> anyhow::Result<()> {
    if paths.is_empty() {
        anyhow::bail!("no package files found (a directory is searched for *.deb)");
    }
    let answer = api.add(repo, paths, force_replace).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for p in &answer.added {
        writeln!(out, "[+] {} added", p.key)?;
    }
    for p in &answer.unchanged {
        writeln!(out, "[=] {} already in the repository", p.key)?;
    }
    Ok(())
}

/// Uploads package files as one tar stream, built while it is sent: one
/// request and one transaction for all of them, and never the whole upload
/// in memory on either side.
async fn upload(
    client: &Client,
    repo: &str,
    paths: &[PathBuf],
    force_replace: bool,
) -> anyhow::Result<Added> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let paths = paths.to_vec();
    let packer = tokio::task::spawn_blocking(move || pack(&paths, sender));
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|piece| (piece, receiver)) },
    ));
    let sent: anyhow::Result<AddAnswer> = client
        .post_bytes_as(
            &format!(
                "/api/v1/apt/repos/{}/packages?forceReplace={force_replace}",
                segment(repo)
            ),
            body,
            "application/x-tar",
        )
        .await;
    // A file that cannot be read explains a failed upload better than the
    // upload's own error.
    packer.await.context("the upload packer failed")??;
    Ok(sent?.report)
}

#[derive(serde::Deserialize)]
struct AddAnswer {
    report: Added,
}

/// Writes `paths` as a tar archive into `sender`, a piece at a time. Fails
/// only on a file it cannot read; when the server stops reading (it refused
/// the upload), its answer says why.
fn pack(
    paths: &[PathBuf],
    sender: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> anyhow::Result<()> {
    let mut builder = tar::Builder::new(Pieces {
        sender: sender.clone(),
        piece: Vec::new(),
    });
    for path in paths {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                let _ = sender
                    .blocking_send(Err(std::io::Error::other("a package file is unreadable")));
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("upload.deb");
        if builder
            .append_data(&mut header, file_name, &bytes[..])
            .is_err()
        {
            return Ok(());
        }
    }
    if let Ok(mut pieces) = builder.into_inner() {
        let _ = pieces.send();
    }
    Ok(())
}

/// Collects tar output into pieces of about a megabyte for the request body.
struct Pieces {
    sender: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    piece: Vec<u8>,
}

impl Pieces {
    fn send(&mut self) -> std::io::Result<()> {
        let piece = std::mem::take(&mut self.piece);
        self.sender
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::other("the upload was cut short"))
    }
}

impl std::io::Write for Pieces {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.piece.extend_from_slice(buf);
        if self.piece.len() >= 1 << 20 {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
