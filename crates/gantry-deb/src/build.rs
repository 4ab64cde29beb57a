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
    /// Stored as they are (`dpkg-deb -Znone`): for contents that are
    /// compressed already.
    None,
}

impl Compression {
    /// What follows `.tar` in the members' names.
    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::None => "",
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
            Compression::None => data.to_vec(),
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
    for entry in entries {
        let name = format!("./{}", entry.relative);
        match entry.kind {
            Kind::Dir => {
                installed_kib += 1;
                append_dir(&mut data, &format!("{name}/"), options.mtime)?;
            }
            Kind::Symlink(target) => {
                installed_kib += 1;
                let mut header = header(tar::EntryType::Symlink, 0o777, 0, options.mtime);
                header
                    .set_link_name(&target)
                    .map_err(|e| invalid_path(&entry.path, e))?;
                append(&mut data, header, &name, &[][..])?;
            }
            Kind::File { executable, bytes } => {
                installed_kib += (bytes.len() as u64).div_ceil(1024);
                md5sums.push_str(&format!(
                    "{}  {}\n",
                    hex::encode(Md5::digest(&bytes)),
                    entry.relative
                ));
                let mode = if executable { 0o755 } else { 0o644 };
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
        &format!("control.tar{extension}"),
        options.mtime,
        &options.compression.compress(&control_tar),
    );
    ar::write_member(
        &mut out,
        &format!("data.tar{extension}"),
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
    /// A regular file, read while the tree was walked.
    File {
        executable: bool,
        bytes: Vec<u8>,
    },
    Symlink(PathBuf),
}

struct Entry {
    path: PathBuf,
    relative: String,
    kind: Kind,
}

/// Every entry under `root`, sorted by relative path, parents first.
///
/// A symbolic link in the tree is packaged as a link, never followed: the walk opens each
/// directory and file relative to its parent's descriptor with `O_NOFOLLOW`, so a link put
/// in the place of a directory or file (even while the walk runs) cannot make the package
/// carry what lies outside `root`. Files are opened with `O_NONBLOCK` (a FIFO cannot hang
/// the build) and only regular files are read.
fn walk(root: &Path) -> Result<Vec<Entry>, DebError> {
    let top = std::fs::File::open(root).map_err(DebError::io(root))?;
    if !top.metadata().map_err(DebError::io(root))?.is_dir() {
        return Err(invalid_path(root, "not a directory"));
    }
    let mut entries = Vec::new();
    walk_dir(&top, root, "", &mut entries)?;
    entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(entries)
}

/// Adds the entries of the open directory `dir` (`dir_path` in messages) to `entries`,
/// entering each subdirectory as it is met: only the descriptors of one branch are open at
/// a time, however wide the tree.
fn walk_dir(
    dir: &std::fs::File,
    dir_path: &Path,
    prefix: &str,
    entries: &mut Vec<Entry>,
) -> Result<(), DebError> {
    use std::os::unix::fs::MetadataExt;
    let listing = std::fs::read_dir(descriptor_path(dir)).map_err(DebError::io(dir_path))?;
    for item in listing {
        let item = item.map_err(DebError::io(dir_path))?;
        let path = dir_path.join(item.file_name());
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            return Err(invalid_path(&path, "file name is not UTF-8"));
        };
        if prefix.is_empty() && name == "DEBIAN" {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let kind = match open_beneath(dir, &name) {
            Ok(file) => {
                let meta = file.metadata().map_err(DebError::io(&path))?;
                if meta.is_dir() {
                    walk_dir(&file, &path, &format!("{relative}/"), entries)?;
                    Kind::Dir
                } else if meta.is_file() {
                    let mut bytes = Vec::with_capacity(meta.len() as usize);
                    std::io::Read::read_to_end(&mut &file, &mut bytes)
                        .map_err(DebError::io(&path))?;
                    Kind::File {
                        executable: meta.mode() & 0o111 != 0,
                        bytes,
                    }
                } else {
                    return Err(invalid_path(&path, "not a file, directory or symlink"));
                }
            }
            // ELOOP: `O_NOFOLLOW` met a link, which is packaged as what it is.
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                Kind::Symlink(read_link_beneath(dir, &name).map_err(DebError::io(&path))?)
            }
            Err(error) => return Err(DebError::io(&path)(error)),
        };
        entries.push(Entry {
            path,
            relative,
            kind,
        });
    }
    Ok(())
}

/// The path naming the open directory `dir` itself, whatever its name has become.
fn descriptor_path(dir: &std::fs::File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
}

/// Opens `name` in the directory `dir` without following a link in its place.
fn open_beneath(dir: &std::fs::File, name: &str) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated and `dir` is an open descriptor.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just opened and nothing else owns it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// The target of the link `name` in the directory `dir`.
fn read_link_beneath(dir: &std::fs::File, name: &str) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStringExt;
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    let mut buffer = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer's length is passed; the kernel writes at most that many bytes.
    let length = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if length < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buffer.truncate(length as usize);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buffer)))
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
