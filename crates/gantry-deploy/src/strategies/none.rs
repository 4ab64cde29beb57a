//! `none`: the new group joins the cluster's traffic once healthy; nothing
//! else is touched.

use futures::future::{BoxFuture, FutureExt};

use super::{Rollout, Strategy};
use crate::controller::FULL_WEIGHT;
use crate::error::DeployError;

pub(crate) struct NoStrategy;

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
