//! The arguments of `gantry apt`: aptly's command tree.

use std::path::PathBuf;

use clap::Subcommand;

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
        /// Free text shown with the repository.
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
        /// The publication's prefix (default: none, or the leading argument).
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
    pub distribution: String,
    /// Architectures to publish, comma-separated (default: those of the packages).
    #[arg(long, value_delimiter = ',')]
    pub architectures: Vec<String>,
    /// The component, or one per source comma-separated (a snapshot publication of several).
    #[arg(long, default_value = "main")]
    pub component: String,
    /// Publish without InRelease/Release.gpg (apt refuses it unless told to trust it).
    #[arg(long)]
    pub skip_signing: bool,
    /// The signing key's id or fingerprint (default: the server's key).
    #[arg(long = "gpg-key")]
    pub gpg_key: Option<String>,
    /// Leave out `by-hash/` index copies (on by default: they keep clients
    /// that are mid-update consistent across a publish).
    #[arg(long)]
    pub no_acquire_by_hash: bool,
    /// Also write `Packages.xz` (about 4 % smaller than `.gz` for an index
    /// of digests, for ten times the CPU time).
    #[arg(long)]
    pub xz: bool,
    /// The Release file's Origin: field (what apt pinning matches on).
    #[arg(long)]
    pub origin: Option<String>,
    /// The Release file's Label: field.
    #[arg(long)]
    pub label: Option<String>,
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
