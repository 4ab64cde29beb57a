//! A package as hosts install it: the exact version a query names, and
//! the publication of its repository that serves it to `apt-get`.

use super::{Apt, SourceKind};
use crate::AptError;
use crate::names::DEFAULT_PREFIX;

/// Where and what `apt-get` on a host installs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInstall {
    pub name: String,
    pub version: String,
    /// The publication's path under `/apt/` (empty for the default prefix).
    pub prefix: String,
    pub distribution: String,
    pub component: String,
    /// The armored public key of a signed publication.
    pub signed_by: Option<String>,
}

impl Apt {
    /// The newest package of `repo` matching `query` (`hello (= 1.2.3)`)
    /// and a publication of `repo` hosts can install it from. A repository
    /// published nowhere is an error naming the command that publishes it.
    pub async fn host_install(&self, repo: &str, query: &str) -> Result<HostInstall, AptError> {
        let newest = self.newest_match(repo, query).await?;
        let publication = self
            .publications()
            .await?
            .into_iter()
            .find(|p| {
                p.spec.source_kind == SourceKind::Repo
                    && p.spec.sources.iter().any(|s| s.name == repo)
            })
            .ok_or_else(|| {
                AptError::Invalid(format!(
                    "repository {repo:?} is not published, so hosts cannot install from it: \
                     run `gantry apt publish repo {repo} --distribution NAME`"
                ))
            })?;
        let component = publication
            .spec
            .sources
            .iter()
            .find(|s| s.name == repo)
            .map(|s| s.component.clone())
            .unwrap_or_else(|| "main".to_owned());
        let signed_by = if publication.spec.skip_signing {
            None
        } else {
            let armored = self
                .keyring()
                .export_public(publication.spec.key.as_deref())?;
            Some(String::from_utf8_lossy(&armored).into_owned())
        };
        let prefix = if publication.prefix == DEFAULT_PREFIX {
            String::new()
        } else {
            publication.prefix.clone()
        };
        Ok(HostInstall {
            name: newest.name,
            version: newest.version,
            prefix,
            distribution: publication.distribution,
            component,
            signed_by,
        })
    }
}
