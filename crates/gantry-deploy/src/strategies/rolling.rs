//! Rolling red/black: the new group grows and takes traffic in
//! `targetPercentages` steps, each step waiting for health; the previous
//! groups keep their full capacity (pinned) until the last step. Between
//! steps the rollout may pause, wait for a promotion, or wait for a
//! judgment (Spinnaker runs a pipeline before each cleanup for this;
//! here the judgment is part of the deploy stage): a rejection rolls back.
//! With `maxUnavailable` the rollout goes in batches instead: each batch
//! adds that many new instances and, once they are healthy, takes as many
//! old ones down (the last batch takes the previous groups to 0).

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
    /// Instead of `target_percentages`: the instances added per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<Batch>,
    /// The share of the target size that may fail (unset: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fail_percentage: Option<u32>,
}

/// How many instances a step adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Batch {
    Instances(u32),
    Percent(u32),
}

impl RollingOptions {
    /// Each step's size and share of traffic (percent), for `target` instances.
    pub fn plan(&self, target: u32) -> Vec<(u32, u32)> {
        let share = |size: u32| (u64::from(size) * 100).div_ceil(u64::from(target.max(1))) as u32;
        match self.max_unavailable {
            Some(batch) => {
                let step = match batch {
                    Batch::Instances(n) => n,
                    Batch::Percent(p) => instances_for(target, p),
                }
                .max(1);
                let mut plan = Vec::new();
                let mut size = 0;
                while size < target {
                    size = size.saturating_add(step).min(target);
                    plan.push((size, share(size)));
                }
                if plan.is_empty() {
                    plan.push((target, 100));
                }
                plan
            }
            None => self
                .target_percentages
                .iter()
                .map(|&p| (instances_for(target, p).min(target), p))
                .collect(),
        }
    }

    /// How many healthy instances a step of `size` needs: all of them,
    /// less the failures `max_fail_percentage` allows of the `target`.
    pub fn needed(&self, size: u32, target: u32) -> u32 {
        let allowed = self.max_fail_percentage.map_or(0, |p| {
            (u64::from(target) * u64::from(p.min(100)) / 100) as u32
        });
        size.saturating_sub(allowed).max(1).min(size)
    }
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
                max_unavailable: spec.max_unavailable.map(|batch| match batch {
                    gantry_config::BatchSize::Instances(count) => Batch::Instances(count),
                    gantry_config::BatchSize::Percent(percent) => Batch::Percent(percent),
                }),
                max_fail_percentage: spec.max_fail_percentage,
            },
        }
    }
}

impl Strategy for Rolling {
    fn initial_size(&self, target: u32) -> u32 {
        self.options
            .plan(target)
            .first()
            .map_or(target, |&(size, _)| size)
    }

    fn deploy<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            let target = r.request.size;
            let steps = self.options.plan(target);
            // Steps finished before a restart are not run again: going back
            // to an earlier step would stop instances and take traffic back.
            let resumed = r.resumed_step();
            for (index, (size, percent)) in steps.iter().copied().enumerate().skip(resumed) {
                r.begin_step(index).await?;
                let placed = r
                    .update(
                        &r.group,
                        ServerGroupUpdate {
                            size: Some(size),
                            ..Default::default()
                        },
                    )
                    .await;
                let needed = self.options.needed(size, target);
                match placed {
                    Ok(()) => {}
                    // Some instances could not be placed: fine while the
                    // rest reach what maxFailPercentage allows.
                    Err(error) if needed < size => {
                        (r.progress)(format!("{} at step {}: {error}", r.group, index + 1));
                    }
                    Err(error) => return Err(error),
                }
                if let Err(error) = r.wait_healthy(needed).await {
                    return Err(match self.options.max_fail_percentage {
                        Some(p) => DeployError::Failed(format!(
                            "more than {p}% of the {target} instances of {} failed (fewer than {needed} of {size} healthy): {error}",
                            r.group
                        )),
                        None => error,
                    });
                }
                if percent >= 100 {
                    r.enable_new(FULL_WEIGHT).await?;
                    r.disable_previous().await?;
                } else {
                    r.shift_traffic(percent).await?;
                }
                // In batches, each batch's new instances, once healthy,
                // take as many old ones down: capacity never drops below
                // the size, and no more than a batch is in transition.
                if self.options.max_unavailable.is_some() {
                    r.shrink_previous(target.saturating_sub(size)).await?;
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
                        steps[index + 1].1
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

    /// Batches took old capacity down: it comes back before the new
    /// group goes.
    fn abort<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, ()> {
        async move {
            if self.options.max_unavailable.is_some()
                && let Err(error) = r.restore_previous().await
            {
                (r.progress)(format!(
                    "cannot give the previous groups their size back: {error}"
                ));
            }
            super::abort_to_previous(r).await;
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
