//! What the machine offers for confinement, found once, and preparing a
//! command to run confined.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::SandboxError;
use crate::identity::{self, DEFAULT_USER, Identity, Kind};
use crate::landlock::{self, Grant, Ruleset};

/// How to confine.
#[derive(Clone, Debug, Default)]
pub struct SandboxConfig {
    /// The user confined processes run as when the server runs as root;
    /// `None` means [`DEFAULT_USER`], created at start if missing.
    pub user: Option<String>,
    /// Paths a confined process can neither read nor write (the data
    /// directory), except what [`Access::writable`] gives back.
    pub protected: Vec<PathBuf>,
}

/// What one confined process may write besides the machine's temporary
/// directories (its workspace, its private temporary directory).
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub writable: Vec<PathBuf>,
}

/// The confinement this machine offers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sandbox {
    identity: Option<Identity>,
    landlock: Option<u32>,
    protected: Vec<PathBuf>,
    /// Why the default user could not be had, for the start-up warning.
    problem: Option<String>,
}

/// Directories every confined process may write: the machine's own
/// temporary directories, and `/dev` (its nodes keep their own modes).
const SHARED_WRITABLE: &[&str] = &["/tmp", "/var/tmp", "/dev"];

impl Sandbox {
    /// Finds out what confinement the machine offers. A configured user
    /// that does not exist, or one configured while the server does not run
    /// as root, is an error; the default user that cannot be created is
    /// reported by [`Sandbox::warning`] instead.
    pub fn prepare(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        // A protected directory this process cannot enter is kept from its
        // confined processes (the same user or a lesser one, without
        // privileges) by its file modes; Landlock need not, and could not:
        // excluding it means listing its parent, which may be closed too.
        let protected = config
            .protected
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .filter(|p| !closed_to_this_process(p))
            .collect();
        let root = running_as_root();
        let mut problem = None;
        let identity = match (&config.user, root) {
            (Some(name), false) => return Err(SandboxError::NotRoot(name.clone())),
            (Some(name), true) => Some(identity::find_or_create(name, Kind::Steps)?),
            (None, true) => match identity::find_or_create(DEFAULT_USER, Kind::Steps) {
                Ok(identity) => Some(identity),
                Err(error) => {
                    problem = Some(error.to_string());
                    None
                }
            },
            (None, false) => None,
        };
        Ok(Sandbox {
            identity,
            landlock: landlock::abi(),
            protected,
            problem,
        })
    }

    /// The user confined processes run as, when they change user.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The kernel's Landlock ABI, when it has Landlock.
    pub fn landlock_abi(&self) -> Option<u32> {
        self.landlock
    }

    /// Whether confined processes are kept out of the protected paths by
    /// something other than file modes the server sets itself.
    pub fn isolates(&self) -> bool {
        self.identity.is_some() || self.landlock.is_some()
    }

    /// One line for the server's start when confinement is missing or
    /// partial; `None` when both a user and Landlock confine.
    pub fn warning(&self) -> Option<String> {
        let why = self
            .problem
            .as_ref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        match (&self.identity, self.landlock) {
            (Some(_), Some(_)) => None,
            (None, None) => Some(format!(
                "host steps run with the server's own rights: not root (no step user{why}) and no Landlock in this kernel; use --host-steps off to refuse them"
            )),
            (Some(identity), None) => Some(format!(
                "host steps run as {} without Landlock: file modes alone keep them out of the data directory",
                identity.name
            )),
            (None, Some(_)) => Some(format!(
                "host steps run as the server's own user under Landlock (no step user{why}): they could signal or use its sockets"
            )),
        }
    }

    /// Gives `path` and what is beneath it to the step user (no-op without
    /// one), removing every right of group and others.
    pub fn hand_over(&self, path: &Path) -> Result<(), SandboxError> {
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        identity::hand_over(path, identity).map_err(|source| SandboxError::HandOver {
            path: path.display().to_string(),
            source,
        })
    }

    /// Prepares `command` to run confined: as the step user (when there is
    /// one), with `no_new_privs`, and under a Landlock ruleset (when the
    /// kernel has Landlock) that reads everything but the protected paths
    /// and writes only `access.writable` and the machine's temporary
    /// directories. The caller sets the environment
    /// ([`crate::clean_environment`]).
    pub fn confine(
        &self,
        command: &mut std::process::Command,
        access: &Access,
    ) -> Result<(), SandboxError> {
        let ruleset = match self.landlock {
            Some(abi) => Some(Arc::new(self.ruleset(abi, access)?)),
            None => None,
        };
        let identity = self.identity.clone();
        let setup = move || -> std::io::Result<()> {
            if let Some(identity) = &identity {
                let groups = [identity.gid];
                // SAFETY: plain system calls on values owned by the closure.
                unsafe {
                    if libc::setgroups(1, groups.as_ptr()) != 0
                        || libc::setgid(identity.gid) != 0
                        || libc::setuid(identity.uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            // SAFETY: prctl with constant arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(ruleset) = &ruleset {
                landlock::restrict_self(ruleset.as_raw_fd())?;
            }
            Ok(())
        };
        // SAFETY: the closure only makes system calls (no allocation, no
        // lock), which is what may run between fork and exec.
        unsafe {
            command.pre_exec(setup);
        }
        Ok(())
    }

    /// Prepares the command of an instance the local provider starts
    /// (`sh -c COMMAND` in `dir`, its server group's directory): a clean
    /// environment whose `HOME` is `dir`, `dir` given to the step user, and
    /// [`Sandbox::confine`] with `dir` writable. Call it right after making
    /// the command, before setting the instance's own variables (it clears
    /// the environment).
    pub fn confine_instance(
        &self,
        command: &mut std::process::Command,
        dir: &Path,
    ) -> Result<(), SandboxError> {
        crate::clean_environment(command, dir);
        self.hand_over(dir)?;
        self.confine(
            command,
            &Access {
                writable: vec![dir.to_owned()],
            },
        )
    }

    fn ruleset(&self, abi: u32, access: &Access) -> Result<OwnedFd, SandboxError> {
        let error = |path: &Path| {
            let path = path.display().to_string();
            move |source| SandboxError::Ruleset { path, source }
        };
        let mut ruleset = Ruleset::new(abi).map_err(error(Path::new("/")))?;
        let root = Path::new("/");
        ruleset
            .allow_except(root, &self.protected, Grant::Read)
            .map_err(error(root))?;
        for shared in SHARED_WRITABLE {
            let shared = Path::new(shared);
            ruleset
                .allow_except(shared, &self.protected, Grant::Full)
                .map_err(error(shared))?;
        }
        for path in &access.writable {
            ruleset.allow(path, Grant::Full).map_err(error(path))?;
        }
        Ok(ruleset.into_fd())
    }
}

/// Whether `path` exists and this process may not search it (nor anything
/// beneath it).
fn closed_to_this_process(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `name` is a valid C string; access reads nothing else.
    let result = unsafe { libc::access(name.as_ptr(), libc::X_OK) };
    result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES)
}

/// Whether this process runs as root (its effective uid is 0): only then
/// can it start confined processes as another user.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}
