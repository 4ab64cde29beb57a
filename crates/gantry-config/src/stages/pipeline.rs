//! `pipeline`: starts another pipeline with parameters, and by default waits for its result.

use std::collections::BTreeMap;

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;
use crate::model::yes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineStage {
    pub pipeline: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub wait_for_completion: bool,
}

/// The `pipeline` stage type.
pub struct Pipeline;

impl StageType for Pipeline {
    type Spec = PipelineStage;

    fn secret_names(_spec: &PipelineStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for Pipeline {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if let Some((name, node)) = f.required_string(cx, "pipeline")
        && name.trim().is_empty()
    {
        cx.error(node.span.start, "\"pipeline\" names no pipeline");
    }
    f.text_map(cx, "parameters");
    f.bool(cx, "waitForCompletion");
}
