//! `gantry apt …`: aptly's commands (`repo`, `snapshot`, `publish`) plus
//! `key`, all through the API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, segment};

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
    #[arg(long)]
    origin: Option<String>,
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an Ed25519 signing key.
    Generate {
        user_id: String,
    },
    /// Import an armored secret key from FILE.
    Import {
        file: PathBuf,
    },
    /// Print the armored public key (of ID, or the default key).
    ExportPublic {
        id: Option<String>,
    },
    List,
}

fn prefix_segment(prefix: Option<&str>) -> String {
    let prefix = prefix.unwrap_or(".").trim_matches('/');
    let prefix = if prefix.is_empty() { "." } else { prefix };
    // `:.` and not `.`, which URL normalisation would remove (aptly does the same).
    let encoded = prefix.replace('_', "__").replace('/', "_");
    segment(&format!(":{encoded}"))
}

fn print_packages(packages: &Value) {
    for p in packages.as_array().into_iter().flatten() {
        println!("  {}", p["key"].as_str().unwrap_or_default());
    }
}

pub async fn run(client: &Client, command: AptCommand) -> anyhow::Result<ExitCode> {
    match command {
        AptCommand::Repo(command) => repo(client, command).await?,
        AptCommand::Snapshot(command) => snapshot(client, command).await?,
        AptCommand::Publish(command) => publish(client, command).await?,
        AptCommand::Key(command) => key(client, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn repo(client: &Client, command: RepoCommand) -> anyhow::Result<()> {
    match command {
        RepoCommand::Create {
            name,
            distribution,
            component,
            comment,
        } => {
            client
                .post(
                    "/api/v1/apt/repos",
                    &json!({ "name": name, "distribution": distribution, "component": component, "comment": comment }),
                )
                .await?;
            println!("Local repo [{name}] successfully added.");
        }
        RepoCommand::List => {
            for repo in client.get("/api/v1/apt/repos").await?["repos"]
                .as_array()
                .into_iter()
                .flatten()
            {
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
            let shown = client
                .get(&format!("/api/v1/apt/repos/{}", segment(&name)))
                .await?;
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
            add_files(client, &name, &paths, force_replace).await?;
        }
        RepoCommand::Remove { name, query } => {
            let answer = client
                .delete(&format!(
                    "/api/v1/apt/repos/{}/packages?q={}",
                    segment(&name),
                    segment(&query)
                ))
                .await?;
            for p in answer["removed"].as_array().into_iter().flatten() {
                println!("[-] {} removed", p["key"].as_str().unwrap_or_default());
            }
        }
        RepoCommand::Copy {
            source,
            destination,
            query,
        } => {
            copy(client, &source, &destination, &query, false).await?;
        }
        RepoCommand::Move {
            source,
            destination,
            query,
        } => {
            copy(client, &source, &destination, &query, true).await?;
        }
        RepoCommand::Drop { name } => {
            client
                .delete(&format!("/api/v1/apt/repos/{}", segment(&name)))
                .await?;
            println!("Local repo `{name}` has been removed.");
        }
    }
    Ok(())
}

async fn copy(
    client: &Client,
    source: &str,
    destination: &str,
    query: &str,
    move_them: bool,
) -> anyhow::Result<()> {
    let answer = client
        .post(
            &format!("/api/v1/apt/repos/{}/copy", segment(source)),
            &json!({ "to": destination, "query": query, "move": move_them }),
        )
        .await?;
    let sign = if move_them { "[o]" } else { "[+]" };
    for p in answer["packages"].as_array().into_iter().flatten() {
        println!(
            "{sign} {} {}",
            p["key"].as_str().unwrap_or_default(),
            if move_them { "moved" } else { "copied" }
        );
    }
    Ok(())
}

async fn snapshot(client: &Client, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Create { name, repo, .. } => {
            client
                .post(
                    "/api/v1/apt/snapshots",
                    &json!({ "name": name, "repo": repo }),
                )
                .await?;
            println!("Snapshot {name} successfully created.");
        }
        SnapshotCommand::List => {
            for s in client.get("/api/v1/apt/snapshots").await?["snapshots"]
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    " * [{}]: {}",
                    s["name"].as_str().unwrap_or_default(),
                    s["description"].as_str().unwrap_or_default()
                );
            }
        }
        SnapshotCommand::Show { name } => {
            let s = client
                .get(&format!("/api/v1/apt/snapshots/{}", segment(&name)))
                .await?;
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
            let d = client
                .get(&format!(
                    "/api/v1/apt/snapshots/{}/diff/{}",
                    segment(&left),
                    segment(&right)
                ))
                .await?;
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
            client
                .post(
                    "/api/v1/apt/snapshots",
                    &json!({ "name": destination, "merge": sources, "latest": latest }),
                )
                .await?;
            println!("Snapshot {destination} successfully created.");
        }
        SnapshotCommand::Drop { name } => {
            client
                .delete(&format!("/api/v1/apt/snapshots/{}", segment(&name)))
                .await?;
            println!("Snapshot `{name}` has been dropped.");
        }
    }
    Ok(())
}

async fn publish(client: &Client, command: PublishCommand) -> anyhow::Result<()> {
    match command {
        PublishCommand::Repo {
            name,
            prefix,
            options,
        } => publish_sources(client, "repo", &name, prefix, options).await?,
        PublishCommand::Snapshot {
            name,
            prefix,
            options,
        } => publish_sources(client, "snapshot", &name, prefix, options).await?,
        PublishCommand::List => {
            for p in client.get("/api/v1/apt/publish").await?["publications"]
                .as_array()
                .into_iter()
                .flatten()
            {
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
                    let snapshots: Vec<String> =
                        client.get("/api/v1/apt/snapshots").await?["snapshots"]
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
            client
                .put(
                    &format!(
                        "/api/v1/apt/publish/{}/{}",
                        prefix_segment(prefix.as_deref()),
                        segment(&distribution)
                    ),
                    &json!({ "snapshots": snapshots }),
                )
                .await?;
            println!(
                "Publish for snapshot {distribution} has been successfully switched to new snapshot."
            );
        }
        PublishCommand::Update {
            distribution,
            prefix,
        } => {
            client
                .put(
                    &format!(
                        "/api/v1/apt/publish/{}/{}",
                        prefix_segment(prefix.as_deref()),
                        segment(&distribution)
                    ),
                    &json!({}),
                )
                .await?;
            println!("Publish for local repo {distribution} has been successfully updated.");
        }
        PublishCommand::Drop {
            distribution,
            prefix,
        } => {
            client
                .delete(&format!(
                    "/api/v1/apt/publish/{}/{}",
                    prefix_segment(prefix.as_deref()),
                    segment(&distribution)
                ))
                .await?;
            println!("Published repository has been removed successfully.");
        }
    }
    Ok(())
}

async fn publish_sources(
    client: &Client,
    kind: &str,
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
    let sources: Vec<Value> = components
        .iter()
        .zip(&names)
        .map(|(component, name)| json!({ "component": component, "name": name }))
        .collect();
    let published = client
        .post(
            "/api/v1/apt/publish",
            &json!({
                "prefix": prefix,
                "distribution": options.distribution,
                "sourceKind": kind,
                "sources": sources,
                "architectures": options.architectures,
                "skipSigning": options.skip_signing,
                "key": options.gpg_key,
                "acquireByHash": !options.no_acquire_by_hash,
                "origin": options.origin,
                "label": options.label,
            }),
        )
        .await?;
    println!(
        "{} {} has been successfully published.\nNow you can add following line to apt sources:\n  deb URL/apt/{} {} {}",
        if kind == "repo" {
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

async fn key(client: &Client, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate { user_id } => {
            let answer = client
                .post("/api/v1/apt/keys", &json!({ "userId": user_id }))
                .await?;
            for k in answer["keys"].as_array().into_iter().flatten() {
                println!("{}", k["fingerprint"].as_str().unwrap_or_default());
            }
        }
        KeyCommand::Import { file } => {
            let armored = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let answer = client
                .post("/api/v1/apt/keys", &json!({ "armored": armored }))
                .await?;
            for k in answer["keys"].as_array().into_iter().flatten() {
                println!("{}", k["fingerprint"].as_str().unwrap_or_default());
            }
        }
        KeyCommand::ExportPublic { id } => {
            let path = match id {
                Some(id) => format!("/api/v1/apt/keys/public?id={}", segment(&id)),
                None => "/api/v1/apt/keys/public".to_owned(),
            };
            print!("{}", client.get_text(&path).await?);
        }
        KeyCommand::List => {
            for k in client.get("/api/v1/apt/keys").await?["keys"]
                .as_array()
                .into_iter()
                .flatten()
            {
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

/// Uploads package files as one tar stream, built while it is sent: one
/// request and one transaction for all of them, and never the whole upload
/// in memory on either side.
async fn add_files(
    client: &Client,
    repo: &str,
    paths: &[PathBuf],
    force_replace: bool,
) -> anyhow::Result<()> {
    if paths.is_empty() {
        anyhow::bail!("no package files found (a directory is searched for *.deb)");
    }
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
    let answer = sent?;

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for p in &answer.report.added {
        writeln!(out, "[+] {} added", p.key)?;
    }
    for p in &answer.report.unchanged {
        writeln!(out, "[=] {} already in the repository", p.key)?;
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct AddAnswer {
    report: AddReport,
}

#[derive(serde::Deserialize)]
struct AddReport {
    added: Vec<Keyed>,
    unchanged: Vec<Keyed>,
}

#[derive(serde::Deserialize)]
struct Keyed {
    key: String,
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
