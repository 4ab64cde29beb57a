//! What reaches a step through a descriptor instead of a command line or
//! an environment: its script, and under podman the values of its secret
//! variables. An anonymous memory file holds them (never on disk, gone with
//! its last descriptor); the step's process gets it as [`SCRIPT_FD`], and
//! podman hands it on to the container (`--preserve-fds=1`), so that no
//! secret value lands in the container's config under
//! `/var/lib/containers`, as `--env NAME` with the value in podman's
//! environment would.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The descriptor a step's shell reads its script (or its secrets) from.
pub(crate) const SCRIPT_FD: i32 = 3;

/// Why a step's secrets cannot be delivered through the memory file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DeliveryError {
    #[error(
        "variable {0:?} holds a secret but is not a shell variable name (letters, digits and `_`)"
    )]
    BadName(String),
    #[error("the value of variable {0:?} holds a NUL byte")]
    NulInValue(String),
}

/// `export NAME='value'` lines, one per secret variable, for a shell to
/// read before the step's own script.
pub(crate) fn secret_preamble(secrets: &BTreeMap<String, String>) -> Result<String, DeliveryError> {
    let mut preamble = String::new();
    for (name, value) in secrets {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(DeliveryError::BadName(name.clone()));
        }
        // An empty value has nothing to quote; shlex quotes it as `''`.
        let quoted =
            shlex::try_quote(value).map_err(|_| DeliveryError::NulInValue(name.clone()))?;
        preamble.push_str(&format!("export {name}={quoted}\n"));
    }
    Ok(preamble)
}

/// The entrypoint and arguments that run `argv` after a shell has read the
/// secret variables from [`SCRIPT_FD`]: `/bin/sh -c '. /dev/fd/3; exec "$@"'
/// sh ARGV…` (the image needs `/bin/sh`).
pub(crate) fn wrap_with_secrets(argv: Vec<String>) -> (String, Vec<String>) {
    let mut args = vec![
        "-c".to_owned(),
        format!(". /dev/fd/{SCRIPT_FD}; exec \"$@\""),
        "sh".to_owned(),
    ];
    args.extend(argv);
    ("/bin/sh".to_owned(), args)
}

/// Makes `file` the descriptor [`SCRIPT_FD`] of the process `command`
/// starts (and of a container podman starts with `--preserve-fds=1`).
pub(crate) fn pass_fd(command: &mut tokio::process::Command, file: &OwnedFd) {
    let raw = file.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            let result = if raw == SCRIPT_FD {
                libc::fcntl(SCRIPT_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, SCRIPT_FD)
            };
            if result < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// An anonymous memory file holding `text`, read from its start by the
/// shell.
pub(crate) fn memory_file(text: &str) -> std::io::Result<OwnedFd> {
    use std::io::Write;
    // SAFETY: the name is a NUL-terminated literal.
    let fd = unsafe { libc::memfd_create(c"gantry-step-script".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(text.as_bytes())?;
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(secrets: &[(&str, &str)], expected: Result<&str, DeliveryError>) {
        let secrets = secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(secret_preamble(&secrets).as_deref(), expected.as_deref());
    }

    #[test]
    fn secret_values_are_quoted_for_the_shell() {
        check(&[], Ok(""));
        check(&[("TOKEN", "plain")], Ok("export TOKEN=plain\n"));
        check(
            &[("A", "it's $HOME `x`")],
            Ok("export A=\"it's \"'$HOME `x`'\n"),
        );
        check(
            &[("A", ""), ("B", "two words")],
            Ok("export A=''\nexport B='two words'\n"),
        );
    }

    #[test]
    fn a_name_the_shell_cannot_export_is_refused() {
        check(
            &[("MY-TOKEN", "x")],
            Err(DeliveryError::BadName("MY-TOKEN".into())),
        );
        check(&[("1A", "x")], Err(DeliveryError::BadName("1A".into())));
        check(&[("A", "x\0y")], Err(DeliveryError::NulInValue("A".into())));
    }

    #[test]
    fn a_wrapped_command_runs_after_the_shell_read_the_secrets() {
        let (entrypoint, args) = wrap_with_secrets(vec!["app".into(), "--flag".into()]);
        assert_eq!(entrypoint, "/bin/sh");
        assert_eq!(
            args,
            ["-c", ". /dev/fd/3; exec \"$@\"", "sh", "app", "--flag"]
        );
    }

    #[test]
    fn a_shell_reading_the_memory_file_sees_the_exported_secret() {
        let secrets = [("TOKEN".to_owned(), "a 'quoted' $HOME `value`".to_owned())].into();
        let text = secret_preamble(&secrets).unwrap() + "printf %s \"$TOKEN\"\n";
        let file = memory_file(&text).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let output = runtime.block_on(async {
            let mut command = tokio::process::Command::new("sh");
            command.arg(format!("/dev/fd/{SCRIPT_FD}"));
            pass_fd(&mut command, &file);
            command.output().await.unwrap()
        });
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "a 'quoted' $HOME `value`"
        );
    }
}
