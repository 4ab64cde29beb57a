//! Canary: the new group beside the current one, with `steps` that set its
//! traffic weight, pause, or run an analysis comparing it with the baseline
//! on the load balancer's own measurements. A failing analysis aborts:
//! weight back to 0, canary destroyed, stage failed. After the last step
//! the canary is promoted (full weight, the baseline disabled).

use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};

use gantry_config::{CanaryPause, DeployStage};

use super::{FromSpec, Rollout, Strategy, journal};
use crate::analysis::{self, AnalysisConfig, Verdict};
use crate::controller::FULL_WEIGHT;
use crate::error::DeployError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryOptions {
    pub steps: Vec<CanaryStep>,
    #[serde(default)]
    pub scale_down: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CanaryStep {
    SetWeight(u32),
    Pause(#[serde(with = "crate::millis")] Duration),
    /// Until a person promotes (`gantry promote EXECUTION --stage STAGE`).
    PauseUntilPromoted,
    Analysis(AnalysisConfig),
}

#[derive(Debug)]
pub(crate) struct Canary {
    pub options: CanaryOptions,
}

impl FromSpec for Canary {
    fn from_spec(spec: &DeployStage) -> Self {
        Canary {
            options: CanaryOptions {
                steps: spec.steps.iter().map(canary_step).collect(),
                scale_down: spec.scales_down(),
            },
        }
    }
}

fn canary_step(step: &gantry_config::CanaryStep) -> CanaryStep {
    use gantry_config::CanaryStep as Step;
    match step {
        Step::SetWeight(weight) => CanaryStep::SetWeight(*weight),
        Step::Pause(CanaryPause::For(duration)) => CanaryStep::Pause(*duration),
        Step::Pause(CanaryPause::UntilPromoted) => CanaryStep::PauseUntilPromoted,
        Step::Analysis(analysis) => CanaryStep::Analysis(AnalysisConfig {
            window: analysis.window,
            marginal: f64::from(analysis.marginal()),
            pass: f64::from(analysis.pass()),
            max_error_rate_increase: f64::from(analysis.max_error_rate_increase()),
            latency_tolerance: analysis::DEFAULT_LATENCY_TOLERANCE,
        }),
    }
}

impl Strategy for Canary {
    fn deploy<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            r.wait_healthy(r.request.size).await?;
            // Steps finished before a restart are not run again; the
            // weights they set are kept by the data plane.
            let resumed = r.resumed_step();
            for (index, step) in self.options.steps.iter().enumerate().skip(resumed) {
                r.begin_step(index).await?;
                match step {
                    CanaryStep::SetWeight(weight) => {
                        set_weight(r, *weight).await?;
                        (r.progress)(format!("canary {} at weight {weight}%", r.group));
                    }
                    CanaryStep::Pause(duration) => {
                        r.pause(&format!("pause at step {}", index + 1), *duration)
                            .await?
                    }
                    CanaryStep::PauseUntilPromoted => {
                        let why = format!(
                            "a promotion: canary {} paused at step {} of {} until promoted",
                            r.group,
                            index + 1,
                            self.options.steps.len()
                        );
                        r.wait_for_promotion(&why).await?
                    }
                    CanaryStep::Analysis(config) => analyze(r, index, config).await?,
                }
            }
            r.begin_step(self.options.steps.len()).await?;
            set_weight(r, FULL_WEIGHT).await?;
            r.disable_previous().await?;
            (r.progress)(format!("canary {} promoted", r.group));
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

async fn set_weight(r: &Rollout<'_>, weight: u32) -> Result<(), DeployError> {
    r.shift_traffic(weight).await
}

async fn analyze(
    r: &Rollout<'_>,
    index: usize,
    config: &AnalysisConfig,
) -> Result<(), DeployError> {
    (r.progress)(format!(
        "analysing canary {} for {}s",
        r.group,
        config.window.as_secs()
    ));
    // The data plane keeps measuring while the server restarts, so a
    // resumed analysis keeps its window's deadline too.
    r.pause(&format!("analysis at step {}", index + 1), config.window)
        .await?;
    let Some(baseline) = r.request.previous.last() else {
        return Err(DeployError::Failed(format!(
            "canary {}: no baseline server group to compare with",
            r.group
        )));
    };
    let canary = r.controller.samples(&r.group, config.window).await?;
    let base = r.controller.samples(baseline, config.window).await?;
    let report = analysis::judge(&canary, &base, config);
    (r.progress)(format!("canary analysis: {report}"));
    let compared = analysis::Compared {
        step: index + 1,
        canary: &r.group,
        baseline,
        ended_at: journal::now_millis(),
    };
    r.record_analysis(analysis::record(&compared, &canary, &base, config, &report))
        .await?;
    match report.verdict {
        Verdict::Pass => Ok(()),
        _ => Err(DeployError::Failed(format!(
            "canary {} failed its analysis: {report}",
            r.group
        ))),
    }
}
