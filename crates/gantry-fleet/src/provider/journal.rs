//! The `ssh` provider's journal of what it is about to do on hosts, in
//! `DATA_DIR/fleet/journal.json`: an instance it is about to start (or to
//! stop) is written there, synced, before the host's agent is asked, and
//! settled once the data plane's targets say the same as the host. A
//! server killed between the two finds the entry when it starts again and
//! settles it with the host (`settle.rs`): the instance is adopted or
//! removed, never left running unknown to the server, never lost.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::FleetError;

/// What the provider was about to do to one instance on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub action: Action,
    pub host: String,
    pub group: String,
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Start,
    Stop,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    intents: Vec<Intent>,
}

pub struct Journal {
    path: PathBuf,
    saved: Mutex<Saved>,
}

impl Journal {
    /// Opens the journal in `dir` (created if needed); one that cannot be
    /// read is an error naming the file, never an empty journal.
    pub fn open(dir: &Path) -> Result<Journal, FleetError> {
        std::fs::create_dir_all(dir)
            .map_err(FleetError::io(format!("creating {}", dir.display())))?;
        let path = dir.join("journal.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                FleetError::Invalid(format!(
                    "the fleet journal {} is unreadable: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(FleetError::io(format!("reading {}", path.display()))(e)),
        };
        Ok(Journal {
            path,
            saved: Mutex::new(saved),
        })
    }

    /// Every unsettled intent, oldest first.
    pub fn pending(&self) -> Vec<Intent> {
        self.lock().intents.clone()
    }

    /// Records `intent` durably; it replaces any other about the same
    /// instance on the same host (a stop decided after a start).
    pub fn record(&self, intent: Intent) -> Result<(), FleetError> {
        let mut saved = self.lock();
        saved
            .intents
            .retain(|i| !(i.host == intent.host && i.id == intent.id));
        saved.intents.push(intent);
        self.write(&saved)
    }

    /// Forgets `intent`: the host and the data plane agree about it now.
    pub fn settle(&self, intent: &Intent) -> Result<(), FleetError> {
        let mut saved = self.lock();
        let before = saved.intents.len();
        saved.intents.retain(|i| i != intent);
        if saved.intents.len() == before {
            return Ok(());
        }
        self.write(&saved)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Temporary file, synced, renamed, and the directory synced: after a
    /// crash the journal is either the old or the new one, and on disk.
    fn write(&self, saved: &Saved) -> Result<(), FleetError> {
        let what = || format!("writing the fleet journal {}", self.path.display());
        let temporary = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(saved)
            .map_err(|e| FleetError::Invalid(format!("{}: {e}", what())))?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(FleetError::io(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, Intent, Journal};

    fn intent(action: Action, host: &str, id: &str) -> Intent {
        Intent {
            action,
            host: host.to_owned(),
            group: "shop-web-v001".to_owned(),
            id: id.to_owned(),
        }
    }

    #[test]
    fn recorded_intents_survive_a_reopen_until_settled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        let start = intent(Action::Start, "host-1", "g-i0");
        journal.record(start.clone()).expect("record");
        journal
            .record(intent(Action::Stop, "host-2", "g-i1"))
            .expect("record");
        let reopened = Journal::open(dir.path()).expect("reopen");
        assert_eq!(reopened.pending().len(), 2);
        reopened.settle(&start).expect("settle");
        let reopened = Journal::open(dir.path()).expect("reopen");
        assert_eq!(reopened.pending(), [intent(Action::Stop, "host-2", "g-i1")]);
    }

    #[test]
    fn a_stop_replaces_the_start_of_the_same_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        journal
            .record(intent(Action::Start, "host-1", "g-i0"))
            .expect("record");
        journal
            .record(intent(Action::Stop, "host-1", "g-i0"))
            .expect("record");
        assert_eq!(journal.pending(), [intent(Action::Stop, "host-1", "g-i0")]);
    }

    #[test]
    fn an_unreadable_journal_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("journal.json"), "{not json").expect("write");
        let error = Journal::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("journal.json"), "{error}");
    }
}
