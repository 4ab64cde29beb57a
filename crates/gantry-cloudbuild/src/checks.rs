//! What a run would refuse in a Cloud Build file once every step is read:
//! `waitFor` naming no earlier step, an id used twice, a `dir` outside the
//! workspace, a step allowed longer than the build, volumes Cloud Build
//! refuses.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::parse::BuildFile;

/// Cloud Build's timeout of a build that sets none.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// One problem of the step at index `step`, at its field `key`.
pub(crate) struct Problem {
    pub(crate) step: usize,
    pub(crate) key: &'static str,
    pub(crate) message: String,
}

/// Every problem of the steps of `build`.
pub(crate) fn steps(build: &BuildFile) -> Vec<Problem> {
    let steps = &build.steps;
    let build_timeout = build.timeout;
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (index, step) in steps.iter().enumerate() {
        let mut report = |key: &'static str, message: String| {
            problems.push(Problem {
                step: index,
                key,
                message,
            })
        };
        let label = match &step.id {
            Some(id) => format!("step {} ({id:?}) ", index + 1),
            None => format!("step {} ", index + 1),
        };
        for wanted in step.wait_for.iter().flatten() {
            if wanted != "-" && !ids.contains(wanted.as_str()) {
                let later = steps[index + 1..]
                    .iter()
                    .any(|s| s.id.as_deref() == Some(wanted));
                let why = if later {
                    "which comes later in the file; a step can only wait for earlier ones"
                } else if step.id.as_deref() == Some(wanted) {
                    "itself"
                } else {
                    "which is not the id of any step"
                };
                report("waitFor", format!("{label}waits for {wanted:?}, {why}"));
            }
        }
        if let Some(id) = &step.id {
            if id == "-" {
                report(
                    "id",
                    format!(
                        "{label}cannot be called \"-\", which waitFor uses for the build's start"
                    ),
                );
            } else if !ids.insert(id.as_str()) {
                let first = steps
                    .iter()
                    .position(|s| s.id.as_ref() == Some(id))
                    .unwrap_or(0);
                report(
                    "id",
                    format!(
                        "{label}has the id {id:?} of step {} too; ids must be unique",
                        first + 1
                    ),
                );
            }
        }
        if let Some(dir) = &step.dir
            && let Some(why) = outside_workspace(dir)
        {
            report(
                "dir",
                format!(
                    "{label}dir {dir:?} {why}; gantry build runs steps inside /workspace, so give a path relative to it"
                ),
            );
        }
        let limit = build_timeout.unwrap_or(DEFAULT_BUILD_TIMEOUT);
        if let Some(timeout) = step.timeout
            && timeout > limit
        {
            let whose = match build_timeout {
                Some(_) => "the build's timeout".to_owned(),
                None => "Cloud Build's default build timeout (no top-level \"timeout\")".to_owned(),
            };
            report(
                "timeout",
                format!(
                    "{label}timeout {}s is longer than {whose}, {}s; Cloud Build refuses it",
                    timeout.as_secs(),
                    limit.as_secs()
                ),
            );
        }
        for (name, path) in &step.volumes {
            if !path.starts_with('/') {
                report(
                    "volumes",
                    format!("{label}volume {name:?}: path {path:?} must be absolute"),
                );
            } else if path.trim_end_matches('/') == "/workspace" {
                report(
                    "volumes",
                    format!(
                        "{label}volume {name:?} cannot be mounted on /workspace, which holds the source"
                    ),
                );
            }
        }
    }
    problems
}

/// Why `dir` would leave the workspace, if it does.
fn outside_workspace(dir: &str) -> Option<&'static str> {
    if dir.starts_with('/') {
        return Some("is absolute");
    }
    let mut depth = 0i32;
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return Some("leaves the workspace");
        }
    }
    None
}
