//! `gantry apt db cleanup`.

use gantry_wire::apt::{CleanupBody, CleanupReport};

use super::DbCommand;
use super::backend::AptBackend;

pub(super) async fn run(api: &impl AptBackend, command: DbCommand) -> anyhow::Result<()> {
    let DbCommand::Cleanup { dry_run, verbose } = command;
    let report = api.cleanup(&CleanupBody { dry_run }).await?;
    print!("{}", cleanup_text(&report, verbose));
    Ok(())
}

/// What a cleanup did, in aptly's words where it has some.
fn cleanup_text(report: &CleanupReport, verbose: bool) -> String {
    let dry_run = report.dry_run;
    let (deleting, deleted, freed) = if dry_run {
        (
            "Would delete",
            "would be deleted",
            "Disk space that would be freed",
        )
    } else {
        ("Deleting", "deleted", "Disk space freed")
    };
    let packages = &report.packages_deleted;
    let mut text = format!("{deleting} unreferenced packages ({})...\n", packages.len());
    if verbose {
        for p in packages {
            text += &format!("  [-] {} {deleted}\n", p.key);
        }
    }
    text += &format!(
        "{deleting} unreferenced files: {} pack(s), {} pool file(s), {} abandoned pack(s)\n",
        report.packs_deleted, report.pool_files_deleted, report.abandoned_packs_deleted
    );
    text += &format!(
        "Packs rewritten (half dead or more): {}\n",
        report.packs_rewritten
    );
    if report.packs_kept_with_dead_bytes > 0 {
        text += &format!(
            "Packs kept (less than half dead): {}, {} of dead space left in them\n",
            report.packs_kept_with_dead_bytes,
            human_bytes(report.dead_bytes_left)
        );
    }
    text += &format!("{freed}: {}\n", human_bytes(report.bytes_freed));
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
