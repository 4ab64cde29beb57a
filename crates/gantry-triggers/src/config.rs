//! A `git` trigger's `config:`: the pipeline file in the repository, read at the pushed commit
//! (`git cat-file` on the hosted repository, or on the fetch cache of an external one), so
//! that pipelines live with the code. Two kinds of file:
//!
//! - a `gantry.yaml`: its pipeline named like the triggered one, or its only pipeline; its
//!   `stages` and `parameters` replace the applied pipeline's for this execution (the name,
//!   triggers and concurrency stay those of the applied pipeline, which owns the execution);
//! - a Cloud Build file (a top-level `steps:` and no `pipelines:`): one `run` stage whose
//!   `config:` names it, so the steps come from the same checkout, translated as for any
//!   `run` stage with a Cloud Build file; unless the applied pipeline has a `run` stage with
//!   that `config:` itself, which then runs it among its other stages (the file is checked).
//!
//! A file that is missing or invalid at the commit is reported, not dropped: the execution is
//! recorded and fails with a reason naming the file, the commit and every problem.

use gantry_config::{GitTrigger, Pipeline, Stage};
use gantry_git::Remote;
use serde_json::{Value, json};

use crate::Triggers;
use crate::push::{Push, Source};

/// The stage a Cloud Build file becomes.
const CLOUD_BUILD_STAGE: &str = "build";

impl Triggers {
    /// What an execution started through `trigger` runs instead of the applied `pipeline`:
    /// `Ok(None)` without `config:`, `Err` with the reason the file cannot be run.
    pub(crate) async fn pipeline_at_commit(
        &self,
        pipeline: &Pipeline,
        trigger: &GitTrigger,
        push: &Push,
    ) -> Result<Option<Pipeline>, String> {
        let Some(path) = trigger.config.as_deref() else {
            return Ok(None);
        };
        let commit = &push.update.new;
        let text = self
            .file_at(trigger, push, path)
            .await
            .map_err(|reason| format!("pipeline file {path:?} at commit {commit}: {reason}"))?;
        let spec = if is_cloud_build(&text) {
            if runs_file(pipeline, path) {
                // The applied pipeline runs the file as one of its stages (followed by a
                // gitCommit, say): it keeps its stages, and the file is checked now.
                return gantry_cloudbuild::parse(path, &text)
                    .map(|_| None)
                    .map_err(|problems| {
                        format!("pipeline file {path:?} at commit {commit} cannot run:\n{problems}")
                    });
            }
            cloud_build_pipeline(pipeline, path, &text)
        } else {
            gantry_pipeline(pipeline, path, &text)
        };
        spec.map(Some).map_err(|problems| {
            format!("pipeline file {path:?} at commit {commit} cannot run:\n{problems}")
        })
    }

    /// The text of `path` at the pushed commit.
    async fn file_at(
        &self,
        trigger: &GitTrigger,
        push: &Push,
        path: &str,
    ) -> Result<String, String> {
        let commit = &push.update.new;
        let repo = match (&push.source, &push.url) {
            (Source::Hosted(name), _) => self.repos.existing(name).map_err(|e| e.to_string())?,
            (_, Some(url)) => {
                let credentials = match &trigger.credentials {
                    Some(name) => Some(self.credentials(name).await?),
                    None => None,
                };
                let remote = Remote::new(url.as_str()).with_credentials(credentials);
                let cache =
                    gantry_git::cache_path(&self.orchestrator.data_dir().join("git-cache"), url);
                gantry_git::fetch_commit(&cache, &remote, &push.update.name, commit)
                    .await
                    .map_err(|e| e.to_string())?;
                cache
            }
            (_, None) => return Err("the push names no repository to read it from".to_owned()),
        };
        gantry_git::read_file(&repo, commit, path)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no such file in the commit".to_owned())
    }
}

/// A Cloud Build file has top-level `steps` and no `pipelines`. Text that is not a YAML
/// mapping is taken for a `gantry.yaml`, whose parser reports where it goes wrong.
fn is_cloud_build(text: &str) -> bool {
    match serde_saphyr::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map.contains_key("steps") && !map.contains_key("pipelines"),
        _ => false,
    }
}

/// The applied pipeline with the stages and parameters of the file's pipeline.
fn gantry_pipeline(applied: &Pipeline, path: &str, text: &str) -> Result<Pipeline, String> {
    let document = gantry_config::parse_document(path, text).map_err(|d| d.to_string())?;
    let names: Vec<&str> = document.pipelines.iter().map(|p| p.name.as_str()).collect();
    let chosen = match document.pipelines.iter().find(|p| p.name == applied.name) {
        Some(pipeline) => pipeline,
        None if document.pipelines.len() == 1 => &document.pipelines[0],
        None if names.is_empty() => return Err(format!("{path}: it defines no pipeline")),
        None => {
            return Err(format!(
                "{path}: it defines pipelines {} and none is named {:?}",
                names.join(", "),
                applied.name
            ));
        }
    };
    Ok(Pipeline {
        stages: chosen.stages.clone(),
        parameters: chosen.parameters.clone(),
        ..applied.clone()
    })
}

/// The applied pipeline with one `run` stage running the Cloud Build file. The file is
/// checked here, so that a broken one fails the execution with its lines before anything
/// starts; the stage reads it again from the workspace, a checkout of the same commit.
/// Whether one of the pipeline's `run` stages runs the Cloud Build file at `path`.
fn runs_file(pipeline: &Pipeline, path: &str) -> bool {
    pipeline.stages.iter().any(|stage| {
        matches!(&stage.kind, gantry_config::StageKind::Run(run)
            if run.config.as_deref().map(|c| c.trim_start_matches("./")) == Some(path.trim_start_matches("./")))
    })
}

fn cloud_build_pipeline(applied: &Pipeline, path: &str, text: &str) -> Result<Pipeline, String> {
    gantry_cloudbuild::parse(path, text).map_err(|e| e.to_string())?;
    let stage: Stage = serde_json::from_value(json!({
        "id": CLOUD_BUILD_STAGE,
        "type": "run",
        "config": path,
    }))
    .map_err(|e| format!("internal error building the stage: {e}"))?;
    Ok(Pipeline {
        stages: vec![stage],
        parameters: Vec::new(),
        ..applied.clone()
    })
}

/// The pipeline an execution runs with a trigger's Cloud Build `substitutions` given to
/// every `run` stage with a `config:` file (a stage's own substitutions win). `None` (the
/// applied pipeline as it is) when the trigger has none.
pub(crate) fn with_substitutions(
    spec: Option<Pipeline>,
    applied: &Pipeline,
    substitutions: &std::collections::BTreeMap<String, String>,
) -> Option<Pipeline> {
    if substitutions.is_empty() {
        return spec;
    }
    let mut pipeline = spec.unwrap_or_else(|| applied.clone());
    for stage in &mut pipeline.stages {
        if let gantry_config::StageKind::Run(run) = &mut stage.kind
            && run.config.is_some()
        {
            for (name, value) in substitutions {
                run.substitutions
                    .entry(name.clone())
                    .or_insert_with(|| value.clone());
            }
        }
    }
    Some(pipeline)
}
