//! Stage types. Each lives in its own file: its spec (the fields it adds), a unit struct
//! implementing [`StageType`] (secrets, signals, rendering) and the check of its fields. The
//! one list of types is [`with_stage_types!`](crate::with_stage_types) in `registry.rs`:
//! `StageKind`, the table of checks and the engine's dispatch all come from it, so adding a
//! stage type is adding its file, its `mod` line and its line in that list.
//!
//! The deploy family's specs stay in `model.rs` and their checks in `deploy.rs` and
//! `server_group.rs`; `deploy_family.rs` gives them their `StageType`s.

pub mod bake;
pub mod check_preconditions;
mod deploy;
pub mod deploy_family;
pub mod find_image;
pub mod git;
pub mod manual_judgment;
pub mod package_deb;
pub mod pipeline;
pub mod prune_images;
mod registry;
pub mod run;
mod server_group;
mod stage_type;
pub mod wait;
pub mod webhook;

use serde_json::Value as Json;

pub use bake::{BakeStage, RegistryAccess};
pub use find_image::FindImageStage;
pub use git::{Bump, GitCommitStage, GitPromoteStage, GitTarget, ReleaseStage};
pub use manual_judgment::ManualJudgmentStage;
pub use package_deb::{PackageDebStage, PublishDebStage};
pub use pipeline::PipelineStage;
pub use prune_images::PruneImagesStage;
pub(crate) use registry::STAGE_TYPES;
pub use registry::StageKind;
pub use run::{OnInterrupt, RunStage, Step, StepVolume};
pub(crate) use stage_type::CheckStageType;
pub use stage_type::{SecretName, Signal, StageType};
pub use wait::WaitStage;
pub use webhook::{StatusUrlResolution, WebhookStage};

use crate::check::{Checker, Fields, check_identifier, did_you_mean};
use crate::yaml::Node;

/// The check of one stage type's fields, by its `type:` name (one entry per line of the
/// registry).
pub(crate) struct StageCheck {
    /// The `type:` value, as in `StageKind`'s serde name.
    pub name: &'static str,
    /// Reads the fields this type adds to a stage, after the common ones, reporting every
    /// problem. Strings that are whole CEL conditions go to [`StageFields::conditions`].
    pub check: for<'n> fn(&mut StageFields<'n>, &mut Checker<'_>),
}

/// A stage's mapping while it is being checked.
pub(crate) struct StageFields<'n> {
    pub fields: Fields<'n>,
    /// Strings holding one CEL condition each (`if:`, precondition expressions), with the
    /// text to parse; every other string of the stage is a template.
    pub conditions: Vec<(String, &'n Node)>,
    /// Strings that are names, never rendered (`id`, `type`, `dependsOn` entries).
    pub literals: Vec<&'n Node>,
}

/// What the pipeline checks need to know of a stage.
pub(crate) struct CheckedStage<'n> {
    pub node: &'n Node,
    /// The id, when given as a string (an id that is not an identifier is reported but still
    /// names the stage, so that `dependsOn` on it does not report twice).
    pub id: Option<(&'n str, &'n Node)>,
    pub depends_on: Vec<(&'n str, &'n Node)>,
    pub conditions: Vec<(String, &'n Node)>,
    pub literals: Vec<&'n Node>,
    pub json: Json,
}

/// Checks one entry of `stages:`; `index` (from 0) names it until its id is known.
pub(crate) fn check_stage<'n>(
    cx: &mut Checker<'_>,
    node: &'n Node,
    index: usize,
) -> Option<CheckedStage<'n>> {
    let fields = Fields::new(cx, node, format!("stage {}", index + 1))?;
    let mut stage = StageFields {
        fields,
        conditions: Vec::new(),
        literals: Vec::new(),
    };
    let f = &mut stage.fields;

    let id = f.required_string(cx, "id");
    if let Some((id, id_node)) = id {
        stage.literals.push(id_node);
        f.rename(format!("stage {id:?}"));
        check_identifier(cx, id_node, id, "stage id", "stages");
    }
    f.string(cx, "name");
    let depends_on = f.strings(cx, "dependsOn").unwrap_or_default();
    stage
        .literals
        .extend(depends_on.iter().map(|(_, node)| *node));
    if let Some((text, node)) = f.text(cx, "if") {
        stage.conditions.push((text, node));
    }
    f.duration(cx, "timeout");
    f.count(cx, "retries");
    f.bool(cx, "failPipeline");
    f.bool(cx, "continuePipeline");
    if f.get("continueOnFailure").is_some() {
        // `continueOnFailure` is another name for `continuePipeline`, as in Spinnaker.
        if let Some(key) = f.key("continuePipeline") {
            cx.error(
                key.span.start,
                "give one of \"continuePipeline\" and \"continueOnFailure\", not both",
            );
        }
        f.bool(cx, "continueOnFailure");
    }
    f.bool(cx, "completeOtherBranchesThenFail");

    let mut known_type = false;
    if let Some((name, type_node)) = f.required_string(cx, "type") {
        stage.literals.push(type_node);
        let names: Vec<&str> = STAGE_TYPES.iter().map(|t| t.name).collect();
        match STAGE_TYPES.iter().find(|t| t.name == name) {
            Some(stage_type) => {
                known_type = true;
                (stage_type.check)(&mut stage, cx);
            }
            None => {
                let hint = match did_you_mean(name, &names) {
                    hint if !hint.is_empty() => hint,
                    _ => format!("; known types: {}", names.join(", ")),
                };
                cx.error(
                    type_node.span.start,
                    format!("unknown stage type {name:?}{hint}"),
                );
            }
        }
    }

    let StageFields {
        fields,
        conditions,
        literals,
    } = stage;
    let json = fields.finish(cx, known_type);
    Some(CheckedStage {
        node,
        id,
        depends_on,
        conditions,
        literals,
        json,
    })
}

#[cfg(test)]
mod tests;
