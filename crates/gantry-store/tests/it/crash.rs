//! A committed write survives kill -9 of the process that made it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use gantry_store::Store;

use crate::db::new_execution;

/// Set in the child process: the database it writes to.
const CHILD_URL_VAR: &str = "GANTRY_STORE_CRASH_CHILD_URL";

/// This test runs itself again as a child process that commits stage updates
/// as fast as it can, printing each commit's attempt number; it is killed with
/// SIGKILL mid-stream, and every attempt it reported must be in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commits_survive_kill_9() {
    if let Ok(url) = std::env::var(CHILD_URL_VAR) {
        return write_until_killed(&url).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
    let store = Store::open(&url).await.unwrap();
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    store.close().await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::sqlite_commits_survive_kill_9",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL_VAR, &url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe stays open until after the kill, so that the child is still
    // writing when it dies.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_reported = 0;
    for line in lines.by_ref() {
        if let Some(attempt) = line.unwrap().strip_prefix("committed ") {
            last_reported = attempt.parse().unwrap();
            if last_reported == 300 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(lines);
    assert_eq!(last_reported, 300, "the child stopped early");

    let store = Store::open(&url).await.unwrap();
    let stage = store.stage("e1", "build").await.unwrap().unwrap();
    assert!(
        stage.attempt >= last_reported,
        "attempt {} was reported committed, {} is stored",
        last_reported,
        stage.attempt
    );
}

async fn write_until_killed(url: &str) {
    let store = Store::open(url).await.unwrap();
    let mut stage = store.stage("e1", "build").await.unwrap().unwrap();
    loop {
        stage.attempt += 1;
        store.update_stage(&stage).await.unwrap();
        println!("committed {}", stage.attempt);
    }
}
