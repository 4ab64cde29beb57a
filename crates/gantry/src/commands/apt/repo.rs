//! `gantry apt repo …`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use gantry_wire::apt::{CopyBody, CreateRepo};

use super::backend::AptBackend;
use super::{RepoCommand, print_packages};

pub(super) async fn run(api: &impl AptBackend, command: RepoCommand) -> anyhow::Result<()> {
    match command {
        RepoCommand::Create {
            name,
            distribution,
            component,
            comment,
        } => {
            let body = CreateRepo {
                name: name.clone(),
                distribution,
                component,
                comment,
            };
            api.create_repo(&body).await?;
            println!("Local repo [{name}] successfully added.");
        }
        RepoCommand::List => {
            for repo in api.repos().await?.repos {
                println!(" * [{}] (packages: {})", repo.name, repo.packages);
            }
        }
        RepoCommand::Show {
            name,
            with_packages,
        } => {
            let shown = api.repo(&name).await?;
            let repo = &shown.repo;
            println!("Name: {}", repo.name);
            println!("Comment: {}", repo.comment);
            println!("Default Distribution: {}", repo.distribution);
            println!("Default Component: {}", repo.component);
            println!("Number of packages: {}", repo.packages);
            if with_packages {
                println!("Packages:");
                print_packages(&shown.packages);
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
            for p in api.remove(&name, &query).await?.removed {
                println!("[-] {} removed", p.key);
            }
        }
        RepoCommand::Copy {
            source,
            destination,
            query,
        } => {
            copy(api, source, destination, query, false).await?;
        }
        RepoCommand::Move {
            source,
            destination,
            query,
        } => {
            copy(api, source, destination, query, true).await?;
        }
        RepoCommand::Drop { name } => {
            api.drop_repo(&name).await?;
            println!("Local repo `{name}` has been removed.");
        }
    }
    Ok(())
}

async fn copy(
    api: &impl AptBackend,
    source: String,
    to: String,
    query: String,
    move_them: bool,
) -> anyhow::Result<()> {
    let body = CopyBody {
        to,
        query,
        move_them,
    };
    let packages = api.copy(&source, &body).await?.packages;
    let sign = if move_them { "[o]" } else { "[+]" };
    let done = if move_them { "moved" } else { "copied" };
    for p in packages {
        println!("{sign} {} {done}", p.key);
    }
    Ok(())
}

/// Adds package files and prints what became of each.
async fn add_files(
    api: &impl AptBackend,
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
