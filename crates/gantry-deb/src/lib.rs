//! Debian binary packages (`.deb`): building them from a directory, reading
//! and checking them, and Debian versions compared exactly as dpkg compares
//! them.
//!
//! A `.deb` is an `ar` archive of three members in this order:
//! `debian-binary` (`2.0\n`), `control.tar.{gz,xz}` (the `control` file,
//! `md5sums` and maintainer scripts) and `data.tar.{gz,xz}` (the files to
//! install). [`build`] writes one deterministically: the same inputs give
//! the same bytes (fixed mtimes, `root:root` owners, sorted entries).
//! [`inspect`] reads one back and refuses, with an error that says which,
//! files that are not packages, truncated or corrupt archives and control
//! files without `Package` or `Version`.

mod ar;
mod build;
mod control;
mod error;
mod gzip;
mod inspect;
mod names;
mod stream;
mod version;

pub use build::{BuildOptions, Compression, build, build_to_file};
pub use control::{Control, parse_paragraphs};
pub use error::DebError;
pub use inspect::{Digests, Hasher, Package, extract_data, inspect, inspect_file};
pub use names::{validate_architecture, validate_name};
pub use stream::inspect_reader;
pub use version::{Version, compare_versions};

#[cfg(test)]
mod tests;
