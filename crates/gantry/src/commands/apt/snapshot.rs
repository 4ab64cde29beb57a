//! `gantry apt snapshot …`.

use gantry_wire::apt::CreateSnapshot;

use super::backend::AptBackend;
use super::{SnapshotCommand, print_packages};

pub(super) async fn run(api: &impl AptBackend, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Create { name, repo, .. } => {
            let body = CreateSnapshot {
                name: name.clone(),
                repo: Some(repo),
                ..CreateSnapshot::default()
            };
            api.create_snapshot(&body).await?;
            println!("Snapshot {name} successfully created.");
        }
        SnapshotCommand::List => {
            for s in api.snapshots().await?.snapshots {
                println!(" * [{}]: {}", s.name, s.description);
            }
        }
        SnapshotCommand::Show { name } => {
            let s = api.snapshot(&name).await?;
            let packages = s.packages.unwrap_or_default();
            println!("Name: {}", s.name);
            println!("Description: {}", s.description);
            println!("Number of packages: {}", packages.len());
            println!("Packages:");
            print_packages(&packages);
        }
        SnapshotCommand::Diff { left, right } => {
            let d = api.diff(&left, &right).await?;
            for p in d.only_left {
                println!("- {}", p.key);
            }
            for p in d.only_right {
                println!("+ {}", p.key);
            }
            for (old, new) in d.changed {
                println!("! {} -> {}", old.key, new.key);
            }
        }
        SnapshotCommand::Merge {
            destination,
            sources,
            latest,
        } => {
            let body = CreateSnapshot {
                name: destination.clone(),
                repo: None,
                merge: Some(sources),
                latest,
            };
            api.create_snapshot(&body).await?;
            println!("Snapshot {destination} successfully created.");
        }
        SnapshotCommand::Drop { name } => {
            api.drop_snapshot(&name).await?;
            println!("Snapshot `{name}` has been dropped.");
        }
    }
    Ok(())
}
