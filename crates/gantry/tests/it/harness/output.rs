//! What a CLI run printed, and waiting for a CLI process.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// What a CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert!(self.status.success(), "the command failed: {self:#?}");
        self
    }

    /// Asserts exit status 1 with a clean message (no panic, no debug dump)
    /// containing `needle`.
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Output {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit status 1: {self:#?}"
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}: {self:#?}"
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the CLI panicked: {self:#?}"
        );
        assert!(
            !self.stderr.contains("Error {") && !self.stderr.contains("{ kind:"),
            "the CLI printed a debug dump: {self:#?}"
        );
        self
    }
}

/// Waits for a CLI process (reading its output as it comes, so a full pipe
/// never blocks it); kills it and fails the test after `limit`.
pub fn wait_output(mut child: Child, what: &[&str], limit: Duration) -> Output {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gantry {what:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
