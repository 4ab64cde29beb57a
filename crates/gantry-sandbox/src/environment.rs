//! The environment a confined process starts with: what any program needs
//! to run (a `PATH`, the locale, the time zone, proxies), never the
//! server's own variables (`GANTRY_DATA_DIR`, tokens, database URLs).

/// Variables a confined process keeps from the server's environment.
const KEPT: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Empties the command's environment, then puts back the variables of
/// [`KEPT`] and the locale's `LC_*` from the server's own; `home` becomes
/// `HOME` and `TMPDIR`. The caller adds the process's own variables after.
pub fn clean_environment(command: &mut std::process::Command, home: &std::path::Path) {
    command.env_clear();
    for (name, value) in std::env::vars_os() {
        let Some(text) = name.to_str() else {
            continue;
        };
        if KEPT.contains(&text) || text.starts_with("LC_") {
            command.env(&name, value);
        }
    }
    if std::env::var_os("PATH").is_none() {
        command.env("PATH", "/usr/local/bin:/usr/bin:/bin");
    }
    command.env("HOME", home).env("TMPDIR", home);
}

/// Gives the process `command` starts the ordinary umask, 022. The server
/// runs with 0077 so that everything it writes is its own; the code it
/// starts must not inherit that, or a build would package files nobody
/// else can read and an instance would write logs only root can open.
pub fn ordinary_umask(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe and cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
}
