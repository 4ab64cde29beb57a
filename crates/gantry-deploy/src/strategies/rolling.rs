//! Rolling red/black: the new group grows and takes traffic in
//! `targetPercentages` steps, each step waiting for health; the previous
//! groups keep their full capacity (pinned) until the last step. Between
//! steps the rollout may pause, wait for a promotion, or wait for a
//! judgment (Spinnaker runs a pipeline before each cleanup for this;
//! here the judgment is part of the deploy stage): a rejection rolls back.

use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};

use gantry_config::DeployStage;

use super::{FromSpec, Rollout, Strategy};
use crate::controller::FULL_WEIGHT;
use crate::error::DeployError;
use crate::providers::ServerGroupUpdate;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingOptions {
    /// Increasing percentages of the target size and traffic, ending at 100.
    pub target_percentages: Vec<u32>,
    #[serde(default, with = "crate::millis")]
    pub pause_between: Duration,
    #[serde(default)]
    pub scale_down: bool,
    /// Between steps, wait for a person to promote (`gantry promote`).
    #[serde(default)]
    pub wait_for_promotion: bool,
    /// Between steps, wait for a person's judgment (`gantry approve` or
    /// `gantry reject`); a rejection rolls the deploy back.
    #[serde(default)]
    pub judgment_between_steps: bool,
}

#[derive(Debug)]
pub(crate) struct Rolling {
    pub options: RollingOptions,
}

fn instances_for(size: u32, percent: u32) -> u32 {
    (u64::from(size) * u64::from(percent)).div_ceil(100).max(1) as u32
}

impl FromSpec for Rolling {
    fn from_spec(spec: &DeployStage) -> Self {
        Rolling {
            options: RollingOptions {
                target_percentages: spec.target_percentages.clone(),
                pause_between: spec.pause_between.unwrap_or_default(),
                scale_down: spec.scales_down(),
                wait_for_promotion: spec.wait_for_promotion,
                judgment_between_steps: spec.judgment_between_steps.is_some(),
            },
        }
    }
}

impl Strategy for Rolling {
    fn initial_size(&self, target: u32) -> u32 {
        let first = self
            .options
            .target_percentages
            .first()
            .copied()
            .unwrap_or(100);
        instances_for(target, first).min(target)
    }

    fn deploy<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            let steps = &self.options.target_percentages;
            // Steps finished before a restart are not run again: going back
            // to an earlier step would stop instances and take traffic back.
            let resumed = r.resumed_step();
            for (index, percent) in steps.iter().copied().enumerate().skip(resumed) {
                r.begin_step(index).await?;
                let size = instances_for(r.request.size, percent).min(r.request.size);
                r.update(
                    &r.group,
                    ServerGroupUpdate {
                        size: Some(size),
                        ..Default::default()
                    },
                )
                .await?;
                r.wait_healthy(size).await?;
                if percent >= 100 {
                    r.enable_new(FULL_WEIGHT).await?;
                    r.disable_previous().await?;
                } else {
                    r.shift_traffic(percent).await?;
                }
                (r.progress)(format!("{} at {percent}% ({size} instances)", r.group));
                if index + 1 < steps.len() {
                    r.pause(
                        &format!("pauseBetween after step {}", index + 1),
                        self.options.pause_between,
                    )
                    .await?;
                    let next = format!(
                        "rolling step {} of {} ({percent}% → {}%)",
                        index + 2,
                        steps.len(),
                        steps[index + 1]
                    );
                    if self.options.wait_for_promotion {
                        r.wait_for_promotion(&format!("a promotion before {next}"))
                            .await?;
                    }
                    if self.options.judgment_between_steps {
                        r.wait_for_judgment(percent, &format!("a judgment before {next}"))
                            .await?;
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn clean_up<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            if self.options.scale_down {
                r.scale_down_previous().await?;
            }
            Ok(())
        }
        .boxed()
    }
}
