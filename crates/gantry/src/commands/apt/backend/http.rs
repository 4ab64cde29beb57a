//! `gantry apt` against a server: the API's APT routes.

use std::path::PathBuf;

use anyhow::Context;
use gantry_wire::Dropped;
use gantry_wire::apt::{
    AddAnswer, AddReport, CleanupBody, CleanupReport, CopyBody, CreateRepo, CreateSnapshot,
    CreatedSnapshot, Diff, KeyBody, KeyList, PackageList, Publication, PublicationList,
    PublishBody, Removed, Repo, RepoList, RepoWithPackages, Snapshot, SnapshotList,
    UpdatePublication,
};

use super::AptBackend;
use crate::client::{Client, segment};

pub struct HttpApt {
    client: Client,
}

impl HttpApt {
    pub fn new(client: Client) -> HttpApt {
        HttpApt { client }
    }
}

impl AptBackend for HttpApt {
    async fn create_repo(&self, body: &CreateRepo) -> anyhow::Result<Repo> {
        self.client.post_as("/api/v1/apt/repos", body).await
    }

    async fn repos(&self) -> anyhow::Result<RepoList> {
        self.client.get_as("/api/v1/apt/repos").await
    }

    async fn repo(&self, name: &str) -> anyhow::Result<RepoWithPackages> {
        let path = format!("/api/v1/apt/repos/{}", segment(name));
        self.client.get_as(&path).await
    }

    /// Sends the files as one tar stream.
    async fn add(
        &self,
        repo: &str,
        paths: &[PathBuf],
        force_replace: bool,
    ) -> anyhow::Result<AddReport> {
        upload(&self.client, repo, paths, force_replace).await
    }

    async fn remove(&self, repo: &str, query: &str) -> anyhow::Result<Removed> {
        let path = format!(
            "/api/v1/apt/repos/{}/packages?q={}",
            segment(repo),
            segment(query)
        );
        self.client.delete_as(&path).await
    }

    async fn copy(&self, source: &str, body: &CopyBody) -> anyhow::Result<PackageList> {
        let path = format!("/api/v1/apt/repos/{}/copy", segment(source));
        self.client.post_as(&path, body).await
    }

    async fn drop_repo(&self, name: &str) -> anyhow::Result<Dropped> {
        let path = format!("/api/v1/apt/repos/{}", segment(name));
        self.client.delete_as(&path).await
    }

    async fn create_snapshot(&self, body: &CreateSnapshot) -> anyhow::Result<CreatedSnapshot> {
        self.client.post_as("/api/v1/apt/snapshots", body).await
    }

    async fn snapshots(&self) -> anyhow::Result<SnapshotList> {
        self.client.get_as("/api/v1/apt/snapshots").await
    }

    async fn snapshot(&self, name: &str) -> anyhow::Result<Snapshot> {
        let path = format!("/api/v1/apt/snapshots/{}", segment(name));
        self.client.get_as(&path).await
    }

    async fn diff(&self, left: &str, right: &str) -> anyhow::Result<Diff> {
        let path = format!(
            "/api/v1/apt/snapshots/{}/diff/{}",
            segment(left),
            segment(right)
        );
        self.client.get_as(&path).await
    }

    async fn drop_snapshot(&self, name: &str) -> anyhow::Result<Dropped> {
        let path = format!("/api/v1/apt/snapshots/{}", segment(name));
        self.client.delete_as(&path).await
    }

    async fn publish(&self, body: PublishBody) -> anyhow::Result<Publication> {
        self.client.post_as("/api/v1/apt/publish", &body).await
    }

    async fn publications(&self) -> anyhow::Result<PublicationList> {
        self.client.get_as("/api/v1/apt/publish").await
    }

    async fn republish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        body: &UpdatePublication,
    ) -> anyhow::Result<Publication> {
        let path = publication_path(prefix, distribution);
        self.client.put_as(&path, body).await
    }

    async fn drop_publication(
        &self,
        prefix: Option<&str>,
        distribution: &str,
    ) -> anyhow::Result<Dropped> {
        self.client
            .delete_as(&publication_path(prefix, distribution))
            .await
    }

    async fn cleanup(&self, body: &CleanupBody) -> anyhow::Result<CleanupReport> {
        self.client.post_as("/api/v1/apt/db/cleanup", body).await
    }

    async fn create_key(&self, body: KeyBody) -> anyhow::Result<KeyList> {
        self.client.post_as("/api/v1/apt/keys", &body).await
    }

    async fn keys(&self) -> anyhow::Result<KeyList> {
        self.client.get_as("/api/v1/apt/keys").await
    }

    async fn public_key(&self, id: Option<String>) -> anyhow::Result<String> {
        let path = match id {
            Some(id) => format!("/api/v1/apt/keys/public?id={}", segment(&id)),
            None => "/api/v1/apt/keys/public".to_owned(),
        };
        self.client.get_text(&path).await
    }
}

/// `/api/v1/apt/publish/PREFIX/DISTRIBUTION`, the prefix aptly-encoded:
/// `:.` and not `.` for the default, which URL normalisation would remove
/// (aptly does the same).
fn publication_path(prefix: Option<&str>, distribution: &str) -> String {
    let prefix = prefix.unwrap_or(".").trim_matches('/');
    let prefix = if prefix.is_empty() { "." } else { prefix };
    let encoded = prefix.replace('_', "__").replace('/', "_");
    format!(
        "/api/v1/apt/publish/{}/{}",
        segment(&format!(":{encoded}")),
        segment(distribution)
    )
}

/// Uploads package files as one tar stream, built while it is sent: one
/// request and one transaction for all of them, and never the whole upload
/// in memory on either side.
async fn upload(
    client: &Client,
    repo: &str,
    paths: &[PathBuf],
    force_replace: bool,
) -> anyhow::Result<AddReport> {
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
