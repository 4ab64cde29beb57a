//! Starts and stops real `gantry serve` processes and drives them.
//!
//! - `server.rs`: starting, stopping and restarting a server.
//! - `drive.rs`: driving it through the CLI and the API, and waiting for
//!   executions.
//! - `output.rs`: what a CLI run printed.
//! - `steps.rs`: what steps leave behind (files, lines, pids).
//! - `postgres.rs`: a PostgreSQL database per test.
//! - `netns.rs`: a network namespace joined by a veth pair, whose network a
//!   test takes away.

mod drive;
mod netns;
mod output;
mod postgres;
mod server;
mod steps;

pub use drive::{millis, stage};
pub use netns::NetNs;
pub use output::{Output, wait_output};
pub use steps::{alive, lines, read_pid, wait_for_file};

use std::process::Child;
use std::time::Duration;

use self::postgres::PgDatabase;

pub const BIN: &str = env!("CARGO_BIN_EXE_gantry");
/// How long an execution may take to reach the state a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named scenario `fn NAME(server: &mut Server)` once per backend:
/// `sqlite::NAME` and `postgres::NAME`; `env = &[(NAME, VALUE)];` first
/// gives the servers that environment.
#[macro_export]
macro_rules! on_both_backends {
    (env = $env:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let mut server = $crate::harness::Server::try_start_with_env($crate::harness::Backend::Sqlite, $env)
                        .expect("a server on SQLite");
                    super::$name(&mut server);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(mut server) =
                        $crate::harness::Server::try_start_with_env($crate::harness::Backend::Postgres, $env)
                    {
                        super::$name(&mut server);
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(env = &[]; $($name),*);
    };
}

/// A running server with its own data directory (and database).
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub token: String,
    port: u16,
    /// The address it listens on (the loopback address unless a test asked
    /// for another).
    ip: std::net::IpAddr,
    root: tempfile::TempDir,
    database: Option<PgDatabase>,
    /// Extra environment of `gantry serve` (kept across restarts).
    env: Vec<(String, String)>,
}
