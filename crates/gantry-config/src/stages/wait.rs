//! `wait`: a pause of a given duration, which a person can skip through the API.

use std::time::Duration;

use super::{CheckStageType, SecretName, Signal, StageFields, StageType};
use crate::check::Checker;
use crate::duration;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitStage {
    #[serde(with = "duration")]
    pub duration: Duration,
}

/// The `wait` stage type.
pub struct Wait;

impl StageType for Wait {
    type Spec = WaitStage;
    const SIGNALS: &'static [Signal] = &[Signal::Skip];

    fn secret_names(_spec: &WaitStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for Wait {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if f.get("duration").is_some() {
        f.duration(cx, "duration");
    } else {
        f.require(cx, "duration");
    }
}
