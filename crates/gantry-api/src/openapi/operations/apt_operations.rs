//! The APT operations (`gantry-apt`): repositories, snapshots, publications, signing keys
//! and the package database, aptly's API under `/api/v1/apt`.

use axum::http::Method;
use gantry_wire::{Dropped, apt};

use super::super::schema;
use super::{Operation, op};

/// The APT operations, in the order of the route table.
pub(super) fn all() -> Vec<Operation> {
    vec![
        // POST /api/v1/apt/repos
        op(Method::POST, "/api/v1/apt/repos", "aptCreateRepo", "apt", "Create a local APT repository")
            .body(schema::<apt::CreateRepo>)
            .answers(201, "ok", schema::<apt::Repo>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/repos
        op(Method::GET, "/api/v1/apt/repos", "aptListRepos", "apt", "List APT repositories")
            .answers(200, "ok", schema::<apt::RepoList>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/repos/{name}
        op(Method::GET, "/api/v1/apt/repos/{name}", "aptShowRepo", "apt", "Show an APT repository and its packages")
            .answers(200, "ok", schema::<apt::RepoWithPackages>)
            .errors(&[400, 401, 403, 404, 409]),
        // DELETE /api/v1/apt/repos/{name}
        op(Method::DELETE, "/api/v1/apt/repos/{name}", "aptDropRepo", "apt", "Drop an APT repository")
            .answers(200, "ok", schema::<Dropped>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/repos/{name}/packages
        op(Method::GET, "/api/v1/apt/repos/{name}/packages", "aptListPackages", "apt", "Packages of a repository matching a query")
            .answers(200, "ok", schema::<apt::PackageList>)
            .errors(&[400, 401, 403, 404, 409]),
        // POST /api/v1/apt/repos/{name}/packages
        op(Method::POST, "/api/v1/apt/repos/{name}/packages", "aptAddPackage", "apt", "Upload a .deb (raw body) into a repository")
            // One .deb as `application/octet-stream` (any type but a tar's); several as one
            // `application/x-tar`, which OpenAPI tools cannot generate, hence undocumented here
            // but in the description.
            .description("The body is one .deb file; with `Content-Type: application/x-tar`, a tar of several, added all or none.")
            .raw_body(&["application/octet-stream"])
            .answers(200, "ok", schema::<apt::AddAnswer>)
            .errors(&[400, 401, 403, 404, 409, 413]),
        // DELETE /api/v1/apt/repos/{name}/packages
        op(Method::DELETE, "/api/v1/apt/repos/{name}/packages", "aptRemovePackages", "apt", "Remove the packages matching a query")
            .answers(200, "ok", schema::<apt::Removed>)
            .errors(&[400, 401, 403, 404, 409]),
        // POST /api/v1/apt/repos/{name}/copy
        op(Method::POST, "/api/v1/apt/repos/{name}/copy", "aptCopyPackages", "apt", "Copy or move packages to another repository")
            .body(schema::<apt::CopyBody>)
            .answers(200, "ok", schema::<apt::PackageList>)
            .errors(&[400, 401, 403, 404, 409]),
        // POST /api/v1/apt/snapshots
        op(Method::POST, "/api/v1/apt/snapshots", "aptCreateSnapshot", "apt", "Create a snapshot from a repository or by merging snapshots")
            .body(schema::<apt::CreateSnapshot>)
            .answers(201, "ok", schema::<apt::CreatedSnapshot>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/snapshots
        op(Method::GET, "/api/v1/apt/snapshots", "aptListSnapshots", "apt", "List snapshots")
            .answers(200, "ok", schema::<apt::SnapshotList>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/snapshots/{name}
        op(Method::GET, "/api/v1/apt/snapshots/{name}", "aptShowSnapshot", "apt", "Show a snapshot")
            .answers(200, "ok", schema::<apt::Snapshot>)
            .errors(&[400, 401, 403, 404, 409]),
        // DELETE /api/v1/apt/snapshots/{name}
        op(Method::DELETE, "/api/v1/apt/snapshots/{name}", "aptDropSnapshot", "apt", "Drop a snapshot")
            .answers(200, "ok", schema::<Dropped>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/snapshots/{name}/diff/{other}
        op(Method::GET, "/api/v1/apt/snapshots/{name}/diff/{other}", "aptDiffSnapshots", "apt", "Difference between two snapshots")
            .answers(200, "ok", schema::<apt::Diff>)
            .errors(&[400, 401, 403, 404, 409]),
        // POST /api/v1/apt/publish
        op(Method::POST, "/api/v1/apt/publish", "aptPublish", "apt", "Publish a repository or snapshots")
            .body(schema::<apt::PublishBody>)
            .answers(201, "ok", schema::<apt::Publication>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/publish
        op(Method::GET, "/api/v1/apt/publish", "aptListPublications", "apt", "List publications")
            .answers(200, "ok", schema::<apt::PublicationList>)
            .errors(&[400, 401, 403, 404, 409]),
        // PUT /api/v1/apt/publish/{prefix}/{distribution}
        op(Method::PUT, "/api/v1/apt/publish/{prefix}/{distribution}", "aptUpdatePublication", "apt", "Update (repos) or switch (snapshots) a publication")
            .body(schema::<apt::UpdatePublication>)
            .answers(200, "ok", schema::<apt::Publication>)
            .errors(&[400, 401, 403, 404, 409]),
        // DELETE /api/v1/apt/publish/{prefix}/{distribution}
        op(Method::DELETE, "/api/v1/apt/publish/{prefix}/{distribution}", "aptDropPublication", "apt", "Drop a publication")
            .answers(200, "ok", schema::<Dropped>)
            .errors(&[400, 401, 403, 404, 409]),
        // POST /api/v1/apt/keys
        op(Method::POST, "/api/v1/apt/keys", "aptCreateKey", "apt", "Generate or import a signing key")
            .body(schema::<apt::KeyBody>)
            .answers(201, "ok", schema::<apt::KeyList>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/keys
        op(Method::GET, "/api/v1/apt/keys", "aptListKeys", "apt", "List signing keys")
            .answers(200, "ok", schema::<apt::KeyList>)
            .errors(&[400, 401, 403, 404, 409]),
        // GET /api/v1/apt/keys/public
        op(Method::GET, "/api/v1/apt/keys/public", "aptPublicKey", "apt", "Export a public signing key (armored)")
            .text(200, "ok", None)
            .errors(&[400, 401, 403, 404, 409]),
        // POST /api/v1/apt/db/cleanup
        op(Method::POST, "/api/v1/apt/db/cleanup", "aptDbCleanup", "apt", "Delete the packages no repository, snapshot or kept publication refers to, and free their bytes (aptly's `db cleanup`)")
            .description("Runs under the APT lock. Packs none of whose packages remain are removed; packs half dead or more are rewritten; others are kept (see `deadBytesLeft`). With `dryRun`, nothing changes and the answer says what would go.")
            .body(schema::<apt::CleanupBody>)
            .answers(200, "what was (or would be) deleted", schema::<apt::CleanupReport>)
            .errors(&[400, 401, 403, 404, 409]),
    ]
}
