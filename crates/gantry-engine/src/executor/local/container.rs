//! What makes a container step: its container's name and labels, the
//! `podman run` command, and removing what a stage's containers leave.

use std::collections::BTreeMap;
use std::path::Path;

use gantry_container::{ContainerEngine, ContainerError, ContainerRun, VolumeMount, labels};

use crate::executor::StepSpec;

/// Where the step's `$GANTRY_OUTPUT` file's folder is mounted.
const RUN_DIR_MOUNT: &str = "/gantry";

/// Identifies a stage's containers and volumes on the engine.
#[derive(Clone, Debug)]
pub(crate) struct StageLabels {
    pub(crate) execution: String,
    pub(crate) stage: String,
}

impl StageLabels {
    fn pairs(&self) -> Vec<(&str, &str)> {
        // The most selective first: volume removal filters by it alone.
        vec![
            (labels::EXECUTION, &self.execution),
            (labels::STAGE, &self.stage),
            (labels::MANAGED, "true"),
        ]
    }

    /// The container of step `index`: one name per step, so that a re-run
    /// finds (and removes) the container of the interrupted run.
    pub(crate) fn container_name(&self, index: i64) -> String {
        format!(
            "gantry-{}-{}-{index}",
            sanitize(&self.execution),
            sanitize(&self.stage)
        )
    }

    /// A named volume of this stage: Cloud Build scopes volumes to a build,
    /// Gantry to a stage (a `run` stage is one build).
    pub(crate) fn volume_name(&self, name: &str) -> String {
        format!(
            "gantry-{}-{}-{name}",
            sanitize(&self.execution),
            sanitize(&self.stage)
        )
    }

    /// Removes the containers step `index` left behind; how many there were.
    pub(crate) async fn remove_step_containers(
        &self,
        engine: &ContainerEngine,
        index: i64,
    ) -> Result<usize, ContainerError> {
        let index = index.to_string();
        let mut pairs = self.pairs();
        pairs.push((labels::STEP, &index));
        engine.remove_labelled(&pairs).await
    }

    /// Removes every container of the stage.
    pub(crate) async fn remove_containers(
        &self,
        engine: &ContainerEngine,
    ) -> Result<(), ContainerError> {
        engine.remove_labelled(&self.pairs()).await.map(drop)
    }

    /// Removes every volume of the stage.
    pub(crate) async fn remove_volumes(
        &self,
        engine: &ContainerEngine,
    ) -> Result<(), ContainerError> {
        engine.remove_volumes(&self.pairs()).await.map(drop)
    }

    pub(crate) async fn create_volume(
        &self,
        engine: &ContainerEngine,
        name: &str,
    ) -> Result<(), ContainerError> {
        engine
            .create_volume(&self.volume_name(name), &self.pairs())
            .await
    }
}

/// The pieces of one container step's `run` command.
pub(crate) struct ContainerStep<'a> {
    pub(crate) labels: &'a StageLabels,
    pub(crate) index: i64,
    pub(crate) step: &'a StepSpec,
    pub(crate) image: &'a str,
    pub(crate) workspace: &'a Path,
    pub(crate) run_dir: &'a Path,
    /// Inside the container, e.g. `/workspace/app`.
    pub(crate) workdir: String,
    /// Plain variables, passed on the command line.
    pub(crate) env: BTreeMap<String, String>,
    /// Secret variables: only their names are on the command line, the
    /// values reach the engine through its own environment.
    pub(crate) secret_env: &'a BTreeMap<String, String>,
    /// Where the step's script is inside the container, when it has one:
    /// the shell reads it from there, never from its command line.
    pub(crate) script: Option<String>,
    /// The entrypoint and arguments that replace the step's own (a shell
    /// that reads the step's secrets, then runs its command).
    pub(crate) command: Option<(String, Vec<String>)>,
    /// Descriptors the engine hands on to the container (the script's).
    pub(crate) preserve_fds: u32,
}

impl ContainerStep<'_> {
    pub(crate) fn command(&self, engine: &ContainerEngine) -> tokio::process::Command {
        let step = self.step;
        let (entrypoint, args) = match (&self.script, &step.command) {
            _ if self.command.is_some() => {
                let (entrypoint, args) = self.command.clone().unwrap_or_default();
                (Some(entrypoint), args)
            }
            (Some(script), _) => (Some("sh".to_owned()), vec!["-e".to_owned(), script.clone()]),
            (None, Some(argv)) => (step.entrypoint.clone(), argv.clone()),
            (None, None) => (step.entrypoint.clone(), step.args.clone()),
        };
        let mut volumes = vec![
            VolumeMount::Bind {
                host: self.workspace.to_owned(),
                path: "/workspace".to_owned(),
            },
            VolumeMount::Bind {
                host: self.run_dir.to_owned(),
                path: RUN_DIR_MOUNT.to_owned(),
            },
        ];
        volumes.extend(step.volumes.iter().map(|v| VolumeMount::Named {
            name: self.labels.volume_name(&v.name),
            path: v.path.clone(),
        }));
        let index = self.index.to_string();
        let mut labels: Vec<(String, String)> = self
            .labels
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        labels.push((labels::STEP.to_owned(), index));
        let spec = ContainerRun {
            name: self.labels.container_name(self.index),
            image: self.image.to_owned(),
            labels,
            workdir: Some(self.workdir.clone()),
            env: self.env.clone().into_iter().collect(),
            env_names: self.secret_env.keys().cloned().collect(),
            volumes,
            entrypoint,
            args,
            preserve_fds: self.preserve_fds,
        };
        let mut command = engine.run_command(&spec);
        command.envs(self.secret_env);
        command
    }
}

/// A file of the stage's run directory as a container step sees it.
pub(crate) fn inside_run_dir(file_name: &str) -> String {
    format!("{RUN_DIR_MOUNT}/{file_name}")
}

/// `GANTRY_OUTPUT` as a container step sees it.
pub(crate) fn container_output_path(index: i64) -> String {
    format!("{RUN_DIR_MOUNT}/step-{index}.outputs")
}

/// Container and volume names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
