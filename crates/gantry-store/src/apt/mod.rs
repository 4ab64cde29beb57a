//! APT repositories' metadata (see `gantry-apt`): packages known by their
//! SHA-256, the repositories and snapshots listing them, publications.
//! Package files live on disk (in packs); their paragraphs and where their
//! bytes are, here.
//!
//! The record types and the helpers the kinds share are here; the
//! queries live one record kind to a file: `packages.rs` (package files
//! and the packages of a source), `repos.rs`, `snapshots.rs` and
//! `publications.rs`.

mod packages;
mod publications;
mod repos;
mod snapshots;

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

use crate::model::Millis;
use crate::rows::{Row, values, violation};
use crate::store::{Backend, StoreError};

/// One package file, stored once whatever holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackageRecord {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub size: i64,
    /// The Packages paragraph without `Filename`.
    pub control: String,
    pub created_at: Millis,
    /// Where its bytes are; `None` for a file in the content pool (packages
    /// recorded before packs).
    pub location: Option<AptPackLocation>,
}

/// A package's bytes in a pack: `size` bytes from `offset` in
/// `DATA_DIR/apt/packs/PACK.pack`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackLocation {
    pub pack: String,
    pub offset: i64,
}

/// What it takes to read a package's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackageFile {
    pub sha256: String,
    pub size: i64,
    pub created_at: Millis,
    pub location: Option<AptPackLocation>,
}

/// An [`AptPackageRecord`] without its paragraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackageKey {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
    pub size: i64,
}

/// Where a publication's packages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AptSource<'a> {
    Repo(&'a str),
    Snapshot(&'a str),
}

/// One package as an index lists it: its paragraph and what names its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptParagraph {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub control: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptRepoRecord {
    pub name: String,
    pub distribution: String,
    pub component: String,
    pub comment: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSnapshotRecord {
    pub name: String,
    pub description: String,
    pub created_at: Millis,
}

/// A publication at `prefix`/dists/`distribution`; `spec` is gantry-apt's.
#[derive(Clone, Debug, PartialEq)]
pub struct AptPublicationRecord {
    pub prefix: String,
    pub distribution: String,
    pub spec: Value,
    pub updated_at: Millis,
}

const PACKAGE_COLUMNS: &str = "p.sha256, p.name, p.version, p.architecture, p.size, p.control, \
     p.created_at, p.pack, p.pack_offset";

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's
/// limits on bound parameters (32,766 and 65,535) at 7 columns a row.
pub(crate) const ROWS_PER_STATEMENT: usize = 100;

/// `(?, ?), (?, ?), …` for `rows` rows of `columns` parameters, as the
/// backend numbers them (see [`values`]).
pub(crate) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    values(backend, rows, &row)
}

/// Adds `(owner, sha256)` rows to a membership table (repository or
/// snapshot contents), skipping ones already there.
async fn insert_members(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &str,
    owner_column: &str,
    owner: &str,
    hashes: &[impl AsRef<str>],
) -> Result<(), StoreError> {
    for chunk in hashes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({owner_column}, sha256) VALUES {} ON CONFLICT ({owner_column}, sha256) DO NOTHING",
            placeholders(backend, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for sha256 in chunk {
            query = query.bind(owner).bind(sha256.as_ref());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn conflict_as(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    kind: &'static str,
    id: &str,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(error) => Err(match violation(&error, ErrorKind::UniqueViolation) {
            Some(_) => StoreError::Conflict {
                kind,
                id: id.to_owned(),
            },
            None => error.into(),
        }),
    }
}

/// The membership table of a source, its name column, and the name.
fn source_table(source: AptSource<'_>) -> (&'static str, &'static str, &str) {
    match source {
        AptSource::Repo(name) => ("apt_repo_packages", "repo", name),
        AptSource::Snapshot(name) => ("apt_snapshot_packages", "snapshot", name),
    }
}

fn package_from_row(row: &AnyRow) -> Result<AptPackageRecord, StoreError> {
    let row = Row::new(row, "apt_packages");
    Ok(AptPackageRecord {
        sha256: row.get("sha256")?,
        name: row.get("name")?,
        version: row.get("version")?,
        architecture: row.get("architecture")?,
        size: row.get("size")?,
        control: row.get("control")?,
        created_at: row.get("created_at")?,
        location: location_from_row(&row)?,
    })
}

fn location_from_row(row: &Row<'_>) -> Result<Option<AptPackLocation>, StoreError> {
    let pack: Option<String> = row.get("pack")?;
    let offset: Option<i64> = row.get("pack_offset")?;
    Ok(pack
        .zip(offset)
        .map(|(pack, offset)| AptPackLocation { pack, offset }))
}
