//! Which runner may take which job: labels, and jobs for one runner only.

use gantry_store::RunnerRecord;

/// Whether a runner with `runner_labels` may take a job needing `job_labels`.
pub(super) fn fits(job_labels: &[String], runner_labels: &[String]) -> bool {
    job_labels.iter().all(|l| runner_labels.contains(l))
}

/// The label a job for one runner only carries among its labels; no
/// runner label can hold `=`.
pub fn only_runner(name: &str) -> String {
    format!("runner={name}")
}

/// [`fits`], and a job for one runner only goes to that runner.
pub(super) fn fits_runner(job_labels: &[String], runner: &RunnerRecord) -> bool {
    job_labels.iter().all(|l| match l.strip_prefix("runner=") {
        Some(name) => name == runner.name,
        None => runner.labels.contains(l),
    })
}
