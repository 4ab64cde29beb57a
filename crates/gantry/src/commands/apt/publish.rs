//! `gantry apt publish …`.

use gantry_wire::apt::{PublishBody, Source, SourceKind, UpdatePublication};

use super::backend::AptBackend;
use super::{PublishCommand, PublishOptions};

/// `url`: the server's address (`GANTRY_URL`), for the `deb` line to print.
pub(super) async fn run(
    api: &impl AptBackend,
    command: PublishCommand,
    url: &str,
) -> anyhow::Result<()> {
    match command {
        PublishCommand::Repo {
            name,
            prefix,
            options,
        } => publish_sources(api, SourceKind::Repo, &name, prefix, options, url).await?,
        PublishCommand::Snapshot {
            name,
            prefix,
            options,
        } => publish_sources(api, SourceKind::Snapshot, &name, prefix, options, url).await?,
        PublishCommand::List => {
            for p in api.publications().await?.publications {
                let sources: Vec<String> = p
                    .sources
                    .iter()
                    .map(|s| format!("{{{}: [{}]}}", s.component, s.name))
                    .collect();
                println!(
                    "  * {}/{} [{}] publishes {}",
                    p.prefix,
                    p.distribution,
                    p.architectures.join(", "),
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
                        .snapshots
                        .into_iter()
                        .map(|s| s.name)
                        .collect();
                    if args.len() > 1 && !snapshots.contains(&args[0]) {
                        (Some(args[0].clone()), args[1..].to_vec())
                    } else {
                        (None, args)
                    }
                }
            };
            let body = UpdatePublication {
                snapshots: Some(snapshots),
            };
            api.republish(prefix.as_deref(), &distribution, &body)
                .await?;
            println!(
                "Publish for snapshot {distribution} has been successfully switched to new snapshot."
            );
        }
        PublishCommand::Update {
            distribution,
            prefix,
        } => {
            let body = UpdatePublication::default();
            api.republish(prefix.as_deref(), &distribution, &body)
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
    api: &impl AptBackend,
    kind: SourceKind,
    names: &str,
    prefix: Option<String>,
    options: PublishOptions,
    url: &str,
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
    let body = PublishBody {
        prefix,
        distribution: options.distribution.clone(),
        source_kind: kind,
        sources,
        architectures: options.architectures,
        skip_signing: options.skip_signing,
        key: options.gpg_key,
        acquire_by_hash: Some(!options.no_acquire_by_hash),
        xz: options.xz,
        origin: options.origin,
        label: options.label,
    };
    let published = api.publish(body).await?;
    println!(
        "{} {} has been successfully published.\nNow you can add following line to apt sources:\n  deb {}/apt/{} {} {}",
        if kind == SourceKind::Repo {
            "Local repo"
        } else {
            "Snapshot"
        },
        names.join(","),
        url.trim_end_matches('/'),
        match published.prefix.as_str() {
            "." => "",
            p => p,
        },
        options.distribution,
        components.join(" ")
    );
    Ok(())
}
