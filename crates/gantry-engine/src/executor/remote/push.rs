//! A Cloud Build file's `images` pushed from the runner that built them. A docker step on
//! a runner builds into that runner's engine, so once the build's steps succeeded the
//! server queues a push job for that runner alone (`runner=NAME`): its payload names the
//! images, the registry account travels with the job's secrets (never in the jobs table,
//! never on a command line), and its result lists each image with the digest the
//! registry gave, or says why not.

use std::time::Duration;

use gantry_container::{ContainerEngine, Credentials};
use gantry_runners::agent::JobOutcome;
use gantry_runners::protocol::JobSecrets;
use gantry_runners::server::{Dispatcher, JobEvent, JobSpec, only_runner};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::wire::{
    ImageToPush, PushFailure, PushJob, PushJobResult, PushedImage, REGISTRY_CREDENTIALS, RunnerJob,
};
use crate::executor::StageSpec;
use crate::logs::Masker;

/// Queues the push of `images` on `runner` and waits for its result: `wait` bounds how
/// long the job may sit in the queue (the runner may be gone), `stop` cancels it.
pub(super) async fn push_on(
    dispatcher: &Dispatcher,
    runner: &str,
    stage: &StageSpec,
    images: Vec<ImageToPush>,
    credentials: Option<&Credentials>,
    wait: Duration,
    stop: &CancellationToken,
) -> Result<Vec<PushedImage>, PushFailure> {
    let payload = serde_json::to_value(RunnerJob::Push {
        push: PushJob {
            stage: stage.clone(),
            images,
        },
    })
    .map_err(|error| PushFailure::from(error.to_string()))?;
    let mut secrets = JobSecrets::default();
    if let Some(credentials) = credentials {
        secrets.0.insert(
            REGISTRY_CREDENTIALS.to_owned(),
            format!("{}:{}", credentials.user, credentials.password),
        );
    }
    let mut job = dispatcher
        .enqueue(JobSpec {
            payload,
            labels: vec![only_runner(runner)],
            secrets,
            workspace: None,
        })
        .await
        .map_err(|error| {
            PushFailure::from(format!(
                "cannot queue the push for runner {runner}: {error}"
            ))
        })?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut leased = false;
    loop {
        let event = tokio::select! {
            event = job.events.recv() => event,
            () = tokio::time::sleep_until(deadline), if !leased => {
                let _ = dispatcher.cancel(&job.id, "the runner did not take the push in time").await;
                return Err(format!(
                    "runner {runner}, which built them, did not take the push within {}",
                    crate::clock::humanize(wait)
                ).into());
            }
            () = stop.cancelled() => {
                let _ = dispatcher.cancel(&job.id, "the stage stopped").await;
                return Err("the push was stopped".to_owned().into());
            }
        };
        match event {
            Some(JobEvent::Leased { .. }) => leased = true,
            Some(JobEvent::Log { .. }) => {}
            Some(JobEvent::Finished { result, .. }) => {
                let result: PushJobResult = serde_json::from_value(result).map_err(|error| {
                    PushFailure::from(format!(
                        "runner {runner} sent a push result this server cannot read: {error}"
                    ))
                })?;
                return match result.error {
                    Some(error) => Err(PushFailure {
                        message: format!("{error} (on runner {runner})"),
                        unauthorized: result.unauthorized,
                    }),
                    None => Ok(result.pushed),
                };
            }
            Some(JobEvent::Lost { reason, .. }) => {
                dispatcher.give_up(&job.id);
                return Err(format!(
                    "runner {runner}, which built them, was lost while pushing them ({reason})"
                )
                .into());
            }
            Some(JobEvent::Canceled { reason }) => {
                return Err(format!("the push on runner {runner} was canceled: {reason}").into());
            }
            None => return Err("the runner dispatcher dropped the push".to_owned().into()),
        }
    }
}

/// A push job on the runner: done in `finish`, so that a cancel reaches it.
pub(super) struct PushRun {
    pub(super) engine: Option<ContainerEngine>,
    pub(super) job: PushJob,
    pub(super) credentials: Option<Credentials>,
    /// Masks the account's password in what goes back.
    pub(super) masker: Masker,
}

impl PushRun {
    /// Reads the job's registry account out of its secrets.
    pub(super) fn new(
        engine: Option<ContainerEngine>,
        job: PushJob,
        secrets: &JobSecrets,
    ) -> Result<PushRun, String> {
        let credentials = match secrets.0.get(REGISTRY_CREDENTIALS) {
            Some(text) => Some(
                Credentials::parse(text)
                    .ok_or("the push job's registry account is not user:password".to_owned())?,
            ),
            None => None,
        };
        let masker = Masker::default();
        masker.add(secrets.0.values().cloned());
        // The password alone too: an error may quote it without its user.
        masker.add(credentials.iter().map(|c| c.password.clone()));
        Ok(PushRun {
            engine,
            job,
            credentials,
            masker,
        })
    }

    pub(super) async fn finish(self, cancel: CancellationToken) -> JobOutcome {
        let mut result = PushJobResult::default();
        let Some(engine) = &self.engine else {
            result.error = Some(
                "this runner has no container engine (podman or docker) to push them".to_owned(),
            );
            return json!(result).into();
        };
        for image in &self.job.images {
            let pushed = tokio::select! {
                pushed = engine.push(&image.image, image.tls_verify, self.credentials.as_ref()) => pushed,
                () = cancel.cancelled() => {
                    result.error = Some(format!("the push of {} was canceled", image.image));
                    break;
                }
            };
            match pushed {
                Ok(digest) => {
                    tracing::info!(image = %image.image, %digest, stage = %self.job.stage.stage, "pushed an image of the build");
                    result.pushed.push(PushedImage {
                        image: image.image.clone(),
                        digest,
                    });
                }
                Err(error) => {
                    result.unauthorized =
                        matches!(error, gantry_container::ContainerError::Unauthorized { .. });
                    result.error = Some(self.masker.mask(&error.to_string()));
                    break;
                }
            }
        }
        json!(result).into()
    }
}
