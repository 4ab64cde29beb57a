//! Engine scenarios through the CLI and the API. Each is written once and
//! runs on SQLite (`engine::sqlite::NAME`) and PostgreSQL
//! (`engine::postgres::NAME`).

mod dag;
mod failures;
mod judgment;
mod outputs;
mod pipelines;
mod progress;
mod resume;
mod webhook;

use dag::*;
use failures::*;
use judgment::*;
use outputs::*;
use pipelines::*;
use progress::*;
use resume::*;
use webhook::*;

crate::on_both_backends! {
    dag_branches_run_in_parallel,
    step_outputs_flow_to_downstream_stages,
    secret_parameters_never_reach_the_logs,
    preconditions_pass_and_fail,
    judgment_continues_across_kill9,
    judgment_stops_across_restart,
    kill9_during_a_long_step_resumes_without_rerunning_completed_work,
    wait_resumes_with_its_remaining_time_and_can_be_skipped,
    cancel_kills_the_running_step,
    step_and_stage_timeouts_fail_the_stage,
    failed_stage_can_be_restarted,
    webhook_stages_against_a_local_server,
    child_pipelines_pass_parameters_and_results,
    run_follow_exit_codes,
    execution_show_json_shape,
    logs_follow_without_gaps_or_duplicates,
    followers_survive_a_server_restart,
    metrics_count_stages_and_executions,
}
