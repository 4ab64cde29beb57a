//! `gantry agent --stdio`: what an SSH channel runs to reach the agent.
//! It relays its standard input to the agent's socket and the answers to
//! its standard output, and starts the agent first when none runs (after
//! a bootstrap, or when the host's processes were all killed), so the
//! host comes back into use as soon as it answers SSH again.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UnixStream;

use super::server::socket_path;

/// Relays stdin and stdout to the agent of `dir`, started with `program
/// agent serve --dir DIR` if needed.
pub async fn relay(dir: &Path, program: &Path) -> std::io::Result<()> {
    let stream = connect_or_start(dir, program).await?;
    let (mut from_agent, mut to_agent) = stream.into_split();
    let upstream = async {
        tokio::io::copy(&mut tokio::io::stdin(), &mut to_agent).await?;
        // End of our input: the agent sees the end of the connection.
        drop(to_agent);
        Ok::<_, std::io::Error>(())
    };
    let mut stdout = tokio::io::stdout();
    let downstream = tokio::io::copy(&mut from_agent, &mut stdout);
    let (up, down) = tokio::join!(upstream, downstream);
    up?;
    down.map(|_| ())
}

async fn connect_or_start(dir: &Path, program: &Path) -> std::io::Result<UnixStream> {
    if let Ok(stream) = UnixStream::connect(socket_path(dir)).await {
        return Ok(stream);
    }
    start_agent(dir, program)?;
    let mut last = None;
    for _ in 0..100 {
        match UnixStream::connect(socket_path(dir)).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the agent did not start")))
}

/// Starts the agent in a session of its own, so that it outlives this
/// channel and the SSH connection.
fn start_agent(dir: &Path, program: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))?;
    std::process::Command::new(program)
        .args(["agent", "serve", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()?;
    Ok(())
}
