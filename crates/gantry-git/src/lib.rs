//! Git for Gantry: the repositories it hosts, smart HTTP for stock `git` clients, and the git
//! operations that triggers and stages need (list remote refs, check out a commit, tag, commit
//! and push).
//!
//! Everything here runs the real `git` binary; nothing parses pack files. Hosted repositories
//! are bare repositories in `DATA_DIR/repos/NAME.git`; whether anonymous clients may read one
//! is kept in its own git config (`gantry.public`), so a repository is entirely its directory.
//!
//! - `repos`: create, list, delete, and where each one lives.
//! - `smart_http`: runs `git http-backend` as a CGI program, streaming both bodies, and reports
//!   which refs a push changed (through the `post-receive` hook `repos` installs).
//! - `command`: running `git` with a clean environment and turning its failures into errors.
//! - `ops`: `ls-remote`, checking out a commit into a workspace, reading a file at a commit
//!   (fetched into a cache first for an external repository), commit details, tags,
//!   commit-and-push.
//! - `remote`: `Remote`, a repository to talk to with its `Credentials`, which reach git
//!   through a credential helper reading the environment, never on a command line.

#![forbid(unsafe_code)]

mod command;
mod ops;
mod remote;
mod repos;
mod smart_http;

pub use command::GitError;
pub use ops::{
    CommitInfo, RemoteRef, changed_files, checkout, clone_branch, commit_all, commit_info,
    copy_from, fetch_commit, head, ls_remote, push, read_file, tags_at, tags_with_commits,
};
pub use ops::{commit_messages_since, contains_commit, remote_branch};
pub use remote::{Credentials, Remote, cache_path};
pub use repos::{LocalPush, RepoError, RepoInfo, Repositories};
pub use smart_http::{CgiRequest, CgiResponse, RefUpdate, Service, serve_cgi};

#[cfg(test)]
mod tests;
