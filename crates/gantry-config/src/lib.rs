//! The `gantry.yaml` format: parsing with positions, validation that reports every problem at
//! once, and the typed model the engine runs.
//!
//! [`parse_document`] goes in three steps. `yaml` loads the text into a tree of nodes that
//! remember their byte offsets. The checks then walk that tree with one explicit reader per
//! mapping (`check::Fields`): each field is read by a typed getter that reports what is wrong
//! and copies the value into JSON, and whatever key no getter asked for is reported as unknown
//! with the expected names. Checks never stop at a problem, so one run reports them all. Only a
//! clean file goes on to the last step, where serde reads the JSON into the `model` types.
//!
//! The YAML comes from `granit-parser`, the event parser that `serde-saphyr` is built on. Each
//! event carries its span (line, column and byte offset), which is all a tree with positions
//! needs; serde-saphyr itself deserializes straight into types, stops at the first error, and
//! keeps positions only for fields declared as `Spanned<T>`, so it could neither report every
//! problem at once nor point at one in the middle of a string.
//!
//! Layout: `duration` the human durations (`90s`, `5m`) files use, `document` holds the top-level kinds (`pipelines:`; later `applications:`,
//! `loadBalancers:`, `repositories:`, each one more line in its `KINDS` table), `pipeline`
//! a pipeline and its parameters, `stages` one file per stage type (its spec, its check and its
//! [`StageType`]) listed once in [`with_stage_types!`], `graph` `dependsOn`, and `expressions` the `${{ … }}` and condition checks.

#![forbid(unsafe_code)]

mod check;
mod deploy;
mod diagnostic;
mod document;
pub mod duration;
mod expressions;
pub mod glob;
mod graph;
pub mod hosts;
mod model;
mod pipeline;
pub mod stages;
mod triggers;
mod yaml;

pub use deploy::model::*;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use hosts::Host;
pub use model::*;
pub use stages::{
    BakeStage, Bump, FindImageStage, GitCommitStage, GitPromoteStage, GitTarget,
    ManualJudgmentStage, OnInterrupt, PackageDebStage, PipelineStage, PruneImagesStage,
    PublishDebStage, RegistryAccess, ReleaseStage, RunStage, SecretName, Signal, StageType,
    StatusUrlResolution, Step, StepVolume, WaitStage, WebhookStage,
};
pub use triggers::{
    ArtifactTrigger, CronTrigger, GitTrigger, PipelineTrigger, Trigger, WebhookTrigger,
};

/// Parses and validates a `gantry.yaml`. `file` names it in diagnostics. Returns the document
/// only when nothing is wrong; otherwise every problem found, in file order.
pub fn parse_document(file: &str, text: &str) -> Result<Document, Diagnostics> {
    parse(check::Checker::new(file, text))
}

/// As [`parse_document`], for the server that applies the file: every `provider:` must also
/// name one of `providers`, the names its registry holds.
pub fn parse_document_for(
    file: &str,
    text: &str,
    providers: &[&str],
) -> Result<Document, Diagnostics> {
    let mut cx = check::Checker::new(file, text);
    cx.providers = Some(providers);
    parse(cx)
}

fn parse(mut cx: check::Checker<'_>) -> Result<Document, Diagnostics> {
    let text = cx.source;
    let (root, load_errors) = yaml::load(text);
    for error in load_errors {
        cx.error(error.at, error.message);
    }
    let json = document::check_document(&mut cx, root.as_ref());
    if !cx.is_clean() {
        return Err(cx.into_diagnostics());
    }
    match serde_json::from_value::<Document>(json) {
        Ok(document) => Ok(document),
        Err(error) => {
            // The checks above accept exactly what the model reads; reaching this is a bug in
            // them, reported rather than hidden.
            cx.error(
                0,
                format!("internal error reading the checked file: {error}"),
            );
            Err(cx.into_diagnostics())
        }
    }
}

#[cfg(test)]
mod tests;
