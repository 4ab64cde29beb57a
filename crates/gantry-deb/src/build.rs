//! Building a `.deb` from a directory tree. The output is deterministic:
//! entries sorted by path, owners `root:root`, every mtime set to
//! `BuildOptions::mtime`, modes normalised to 0755 (directories and
//! executables) or 0644, compressors without timestamps.

use std::io::Write;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::DebError;
use crate::ar;
use crate::control::Control;
use crate::names::{validate_architecture, validate_name};
use crate::version::Version;

/// What goes into the control file and the control archive.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub maintainer: String,
    pub description: String,
    pub depends: Vec<String>,
    pub section: Option<String>,
    pub priority: Option<String>,
    pub homepage: Option<String>,
    /// Maintainer scripts by name (`preinst`, `postinst`, `prerm`, `postrm`).
    pub scripts: Vec<(String, Vec<u8>)>,
    /// The mtime of every member and entry (seconds since the epoch):
    /// `SOURCE_DATE_EPOCH` when the caller has one.
    pub mtime: u64,
    pub compression: Compression,
}

impl BuildOptions {
    pub fn new(name: &str, version: &str) -> BuildOptions {
        BuildOptions {
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: "all".to_owned(),
            maintainer: "Gantry <gantry@localhost>".to_owned(),
            description: format!("{name} packaged by gantry"),
            depends: Vec::new(),
            section: None,
            priority: None,
            homepage: None,
            scripts: Vec::new(),
            mtime: 0,
            compression: Compression::Gzip,
        }
    }
}

/// How `control.tar` and `data.tar` are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
}

impl Compression {
    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Xz => "xz",
        }
    }

    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::Gzip => {
                let mut encoder = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).expect("writing to memory");
                encoder.finish().expect("writing to memory")
            }
            Compression::Xz => {
                let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
                encoder.write_all(data).expect("writing to memory");
                encoder.finish().expect("writing to memory")
            }
        }
    }
}

const SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm", "config"];

/// Builds the package bytes from the tree at `root` (a `DEBIAN` folder at
/// its top, dpkg-deb's control folder, is left out of the data).
pub fn build(root: &Path, options: &BuildOptions) -> Result<Vec<u8>, DebError> {
    let control = control_fields(options)?;
    let entries = walk(root)?;

    let mut data = tar::Builder::new(Vec::new());
    let mut md5sums = String::new();
    let mut installed_kib = 0u64;
    append_dir(&mut data, "./", options.mtime)?;
    for entry in &entries {
        let name = format!("./{}", entry.relative);
        match &entry.kind {
            Kind::Dir => {
                installed_kib += 1;
                append_dir(&mut data, &format!("{name}/"), options.mtime)?;
            }
            Kind::Symlink(target) => {
                installed_kib += 1;
                let mut header = header(tar::EntryType::Symlink, 0o777, 0, options.mtime);
                header
                    .set_link_name(target)
                    .map_err(|e| invalid_path(&entry.path, e))?;
                append(&mut data, header, &name, &[][..])?;
            }
            Kind::File { executable } => {
                let bytes = std::fs::read(&entry.path).map_err(DebError::io(&entry.path))?;
                installed_kib += (bytes.len() as u64).div_ceil(1024);
                md5sums.push_str(&format!(
                    "{}  {}\n",
                    hex::encode(Md5::digest(&bytes)),
                    entry.relative
                ));
                let mode = if *executable { 0o755 } else { 0o644 };
                let header = header(
                    tar::EntryType::Regular,
                    mode,
                    bytes.len() as u64,
                    options.mtime,
                );
                append(&mut data, header, &name, &bytes[..])?;
            }
        }
    }
    let data = data.into_inner().map_err(DebError::io(root))?;

    let mut control = control;
    control.set("Installed-Size", installed_kib.max(1).to_string());
    reorder_installed_size(&mut control);

    let mut control_tar = tar::Builder::new(Vec::new());
    append_dir(&mut control_tar, "./", options.mtime)?;
    let mut members: Vec<(&str, Vec<u8>, u32)> = vec![
        ("control", control.to_text().into_bytes(), 0o644),
        ("md5sums", md5sums.into_bytes(), 0o644),
    ];
    for (name, body) in &options.scripts {
        if !SCRIPTS.contains(&name.as_str()) {
            return Err(DebError::InvalidField {
                field: name.clone(),
                reason: "is not a maintainer script (preinst, postinst, prerm, postrm, config)",
            });
        }
        members.push((name.as_str(), body.clone(), 0o755));
    }
    members.sort_by(|a, b| a.0.cmp(b.0));
    for (name, body, mode) in members {
        let header = header(
            tar::EntryType::Regular,
            mode,
            body.len() as u64,
            options.mtime,
        );
        append(&mut control_tar, header, &format!("./{name}"), &body[..])?;
    }
    let control_tar = control_tar.into_inner().map_err(DebError::io(root))?;

    let extension = options.compression.extension();
    let mut out = ar::MAGIC.to_vec();
    ar::write_member(&mut out, "debian-binary", options.mtime, b"2.0\n");
    ar::write_member(
        &mut out,
        &format!("control.tar.{extension}"),
        options.mtime,
        &options.compression.compress(&control_tar),
    );
    ar::write_member(
        &mut out,
        &format!("data.tar.{extension}"),
        options.mtime,
        &options.compression.compress(&data),
    );
    Ok(out)
}

/// Builds and writes the package to `out` through a temporary file and a
/// rename, so a failed build leaves nothing half-written.
pub fn build_to_file(root: &Path, options: &BuildOptions, out: &Path) -> Result<(), DebError> {
    let bytes = build(root, options)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.partial",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("deb")
    ));
    std::fs::write(&temp, &bytes).map_err(DebError::io(&temp))?;
    std::fs::rename(&temp, out).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        DebError::io(out)(e)
    })
}

fn control_fields(options: &BuildOptions) -> Result<Control, DebError> {
    validate_name(&options.name)?;
    Version::parse(&options.version)?;
    validate_architecture(&options.architecture)?;
    let mut control = Control::new();
    let mut set = |name: &str, value: &str| -> Result<(), DebError> {
        Control::check_value(name, value)?;
        control.set(name, value);
        Ok(())
    };
    set("Package", &options.name)?;
    set("Version", &options.version)?;
    set("Architecture", &options.architecture)?;
    set("Maintainer", &options.maintainer)?;
    if let Some(section) = &options.section {
        set("Section", section)?;
    }
    if let Some(priority) = &options.priority {
        set("Priority", priority)?;
    }
    if !options.depends.is_empty() {
        set("Depends", &options.depends.join(", "))?;
    }
    if let Some(homepage) = &options.homepage {
        set("Homepage", homepage)?;
    }
    let description = options.description.trim();
    set(
        "Description",
        if description.is_empty() {
            &options.name
        } else {
            description
        },
    )?;
    Ok(control)
}

/// dpkg puts `Installed-Size` after `Maintainer`; keep that familiar order.
fn reorder_installed_size(control: &mut Control) {
    let size = control.get("Installed-Size").unwrap_or("1").to_owned();
    let fields: Vec<(String, String)> = control
        .fields()
        .filter(|(n, _)| *n != "Installed-Size")
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let mut rebuilt = Control::new();
    for (name, value) in fields {
        let after_maintainer = name == "Maintainer";
        rebuilt.set(&name, value);
        if after_maintainer {
            rebuilt.set("Installed-Size", size.clone());
        }
    }
    *control = rebuilt;
}

enum Kind {
    Dir,
    File { executable: bool },
    Symlink(PathBuf),
}

struct Entry {
    path: PathBuf,
    relative: String,
    kind: Kind,
}

/// Every entry under `root`, sorted by relative path, parents first.
fn walk(root: &Path) -> Result<Vec<Entry>, DebError> {
    let mut entries = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let listing = std::fs::read_dir(&dir).map_err(DebError::io(&dir))?;
        for item in listing {
            let item = item.map_err(DebError::io(&dir))?;
            let path = item.path();
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                return Err(invalid_path(&path, "file name is not UTF-8"));
            };
            if prefix.is_empty() && name == "DEBIAN" {
                continue;
            }
            let relative = format!("{prefix}{name}");
            let meta = std::fs::symlink_metadata(&path).map_err(DebError::io(&path))?;
            let kind = if meta.is_dir() {
                pending.push((path.clone(), format!("{relative}/")));
                Kind::Dir
            } else if meta.file_type().is_symlink() {
                Kind::Symlink(std::fs::read_link(&path).map_err(DebError::io(&path))?)
            } else if meta.is_file() {
                use std::os::unix::fs::PermissionsExt;
                Kind::File {
                    executable: meta.permissions().mode() & 0o111 != 0,
                }
            } else {
                return Err(invalid_path(&path, "not a file, directory or symlink"));
            };
            entries.push(Entry {
                path,
                relative,
                kind,
            });
        }
    }
    entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(entries)
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    let _ = header.set_username("root");
    let _ = header.set_groupname("root");
    header
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, name: &str, mtime: u64) -> Result<(), DebError> {
    append(
        builder,
        header(tar::EntryType::Directory, 0o755, 0, mtime),
        name,
        &[][..],
    )
}

/// Appends with the name written as is (`./usr/bin/x`, as dpkg-deb writes
/// it); the tar crate's path setter would drop the leading `./`.
fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    mut header: tar::Header,
    name: &str,
    data: &[u8],
) -> Result<(), DebError> {
    let bytes = name.as_bytes();
    let io = DebError::io(name);
    if bytes.len() < 100 {
        let gnu = header.as_gnu_mut().expect("a GNU header");
        gnu.name = [0; 100];
        gnu.name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        builder.append(&header, data).map_err(io)
    } else {
        builder.append_data(&mut header, name, data).map_err(io)
    }
}

fn invalid_path(path: &Path, reason: impl std::fmt::Display) -> DebError {
    DebError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.to_string()),
    }
}
