//! Highlander: red/black, then every older group of the cluster destroyed
//! ("there can be only one").

use futures::future::{BoxFuture, FutureExt};

use gantry_config::DeployStage;

use super::redblack::RedBlack;
use super::{FromSpec, Rollout, Strategy};
use crate::error::DeployError;

#[derive(Debug)]
pub(crate) struct Highlander {
    pub redblack: RedBlack,
}

impl FromSpec for Highlander {
    /// Red/black's options: highlander differs only in its clean-up.
    fn from_spec(spec: &DeployStage) -> Self {
        Highlander {
            redblack: RedBlack::from_spec(spec),
        }
    }
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
