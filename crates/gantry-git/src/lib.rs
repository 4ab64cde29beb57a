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
//! - `ops`: `ls-remote`, checking out a commit into a workspace, reading a file at a commit,
//!   commit details, tags, commit-and-push.

mod command;
mod ops;
mod repos;
mod smart_http;

pub use command::GitError;
pub use ops::{
    CommitInfo, RemoteRef, changed_files, checkout, clone_branch, commit_all, commit_info,
    copy_from, head, ls_remote, read_file, tags_at, tags_with_commits,
};
pub use repos::{LocalPush, RepoError, RepoInfo, Repositories};
pub use smart_http::{CgiRequest, CgiResponse, RefUpdate, Service, serve_cgi};

#[cfg(test)]
mod tests;
