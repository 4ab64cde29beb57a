//! Stage types. Each lives in its own file as one [`StageType`]: the `type:` name and a check
//! of the fields the type adds. Adding a stage type is adding its file, its line in
//! [`STAGE_TYPES`] and its variant of `StageKind` in the model.

mod bake;
mod check_preconditions;
mod deploy;
mod find_image;
mod git;
mod manual_judgment;
mod package_deb;
mod pipeline;
mod run;
mod server_group;
mod wait;
mod webhook;

use serde_json::Value as Json;

use crate::check::{Checker, Fields, check_identifier, did_you_mean};
use crate::yaml::Node;

/// One stage type.
pub(crate) struct StageType {
    /// The `type:` value, as in `StageKind`'s serde name.
    pub name: &'static str,
    /// Reads the fields this type adds to a stage, after the common ones, reporting every
    /// problem. Strings that are whole CEL conditions go to [`StageFields::conditions`].
    pub check: for<'n> fn(&mut StageFields<'n>, &mut Checker<'_>),
}

pub(crate) const STAGE_TYPES: &[StageType] = &[
    run::TYPE,
    wait::TYPE,
    manual_judgment::TYPE,
    pipeline::TYPE,
    webhook::TYPE,
    check_preconditions::TYPE,
    deploy::TYPE,
    server_group::RESIZE,
    server_group::ENABLE,
    server_group::DISABLE,
    server_group::DESTROY,
    server_group::ROLLBACK,
    server_group::SCALE_DOWN,
    git::RELEASE,
    git::GIT_COMMIT,
    git::GIT_PROMOTE,
    package_deb::PACKAGE,
    package_deb::PUBLISH,
    bake::TYPE,
    find_image::TYPE,
];

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
