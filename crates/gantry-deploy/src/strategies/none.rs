//! `none`: the new group joins the cluster's traffic once healthy; nothing
//! else is touched.

use futures::future::{BoxFuture, FutureExt};

use gantry_config::DeployStage;

use super::{FromSpec, Rollout, Strategy};
use crate::controller::FULL_WEIGHT;
use crate::error::DeployError;

#[derive(Debug)]
pub(crate) struct NoStrategy;

impl FromSpec for NoStrategy {
    fn from_spec(_spec: &DeployStage) -> Self {
        NoStrategy
    }
}

impl Strategy for NoStrategy {
    fn deploy<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            r.wait_healthy(r.request.size).await?;
            r.enable_new(FULL_WEIGHT).await?;
            (r.progress)(format!("{} enabled", r.group));
            Ok(())
        }
        .boxed()
    }
}
