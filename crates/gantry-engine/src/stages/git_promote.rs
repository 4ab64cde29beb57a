//! `gitPromote`: copies the files of one commit or branch onto another branch (`candidate` →
//! `production` after a successful deploy), commits and pushes. Re-running an earlier
//! execution promotes its files again, recording a new commit: the branch stays an honest
//! history of what ran.

use gantry_config::GitPromoteStage;

use super::git_commit::{default_message, finish, open, short};
use super::{Outcome, StageContext};

pub(crate) async fn run(ctx: &StageContext, spec: &GitPromoteStage) -> Outcome {
    let work = ctx.run_dir().join("git");
    let target = match open(ctx, &spec.target, &spec.to, &work).await {
        Ok(target) => target,
        Err(error) => return Outcome::Failed(error),
    };
    if let Err(error) = gantry_git::copy_from(&work, &spec.from, &spec.files).await {
        return Outcome::Failed(format!("gitPromote: {error}"));
    }
    let message = match &spec.message {
        Some(message) => message.clone(),
        None => {
            default_message(
                ctx,
                &format!("Promote {} to {}", short(&spec.from), spec.to),
            )
            .await
        }
    };
    finish(ctx, &target, &spec.to, &work, &message).await
}
