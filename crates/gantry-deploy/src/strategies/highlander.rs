//! Highlander: red/black, then every older group of the cluster destroyed
//! ("there can be only one").

use futures::future::{BoxFuture, FutureExt};

use super::redblack::RedBlack;
use super::{Rollout, Strategy};
use crate::error::DeployError;

pub(crate) struct Highlander {
    pub redblack: RedBlack,
}

impl Strategy for Highlander {
    fn deploy<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        self.redblack.deploy(r)
    }

    fn clean_up<'a>(&'a self, r: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            for name in r.older_groups().await? {
                r.controller.destroy(&name).await?;
                (r.progress)(format!("{name} destroyed"));
            }
            Ok(())
        }
        .boxed()
    }
}
