//! Red/black (blue/green): the new group at full size, enabled once healthy,
//! then the previous groups disabled (kept warm unless `scaleDown`).

use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};

use gantry_config::DeployStage;

use super::{FromSpec, Rollout, Strategy};
use crate::controller::FULL_WEIGHT;
use crate::error::DeployError;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedBlackOptions {
    /// Scale the disabled groups to 0 after `delay_before_scale_down`.
    #[serde(default)]
    pub scale_down: bool,
    /// Destroy the oldest groups beyond this many (0: keep all).
    #[serde(default)]
    pub max_remaining_server_groups: u32,
    #[serde(default, with = "crate::millis")]
    pub delay_before_disable: Duration,
    #[serde(default, with = "crate::millis")]
    pub delay_before_scale_down: Duration,
}

#[derive(Debug)]
pub(crate) struct RedBlack {
    pub options: RedBlackOptions,
}

impl FromSpec for RedBlack {
    fn from_spec(spec: &DeployStage) -> Self {
        RedBlack {
            options: RedBlackOptions {
                scale_down: spec.scales_down(),
                max_remaining_server_groups: spec.max_remaining_server_groups,
                delay_before_disable: spec.delay_before_disable.unwrap_or_default(),
                delay_before_scale_down: spec.delay_before_scale_down.unwrap_or_default(),
            },
        }
    }
}

impl Strategy for RedBlack {
    fn deploy<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            r.wait_healthy(r.request.size).await?;
            r.enable_new(FULL_WEIGHT).await?;
            (r.progress)(format!("{} enabled", r.group));
            r.pause("delayBeforeDisable", self.options.delay_before_disable)
                .await?;
            r.disable_previous().await
        }
        .boxed()
    }

    fn clean_up<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            if self.options.scale_down {
                r.pause("delayBeforeScaleDown", self.options.delay_before_scale_down)
                    .await?;
                r.scale_down_previous().await?;
            }
            let keep = self.options.max_remaining_server_groups as usize;
            if keep > 0 {
                // The new group counts among those that remain.
                let older = r.older_groups().await?;
                let excess = (older.len() + 1).saturating_sub(keep);
                for name in older.iter().take(excess) {
                    r.controller.destroy(name).await?;
                    (r.progress)(format!(
                        "{name} destroyed (maxRemainingServerGroups {keep})"
                    ));
                }
            }
            Ok(())
        }
        .boxed()
    }
}
