//! Integration tests: the real `gantry serve` on a free port, driven through
//! the real CLI and the HTTP API.
//!
//! Engine scenarios run on SQLite and, when `GANTRY_TEST_POSTGRES_URL` names
//! a PostgreSQL server (any database on it; each test creates its own), on
//! PostgreSQL too.

mod deploy_support;
mod fleet_support;
mod harness;
mod webhook_target;
mod workspace_links;

mod dataplane_recovery;
mod deploy_clusters;
mod deploy_containers;
mod deploy_details;
mod deploy_images;
mod deploy_judgment;
mod deploy_reads;
mod deploy_resume;
mod deploy_rollouts;
mod deploy_waits;

mod api;
mod api_shapes;
mod apt;
mod apt_local;
mod auth;
mod bounds_api;
mod bounds_lb;
mod cloudbuild_compat;
mod engine;
mod files;
mod fleet_deploys;
mod fleet_drain;
mod fleet_hosts;
mod fleet_images;
mod fleet_packages;
mod fleet_recovery;
mod git_concurrency;
mod git_config;
mod git_credentials;
mod git_cron;
mod git_gitops;
mod git_push;
mod git_release;
mod git_support;
mod git_webhooks;
mod gitops_chains;
mod isolation;
mod prune_images;
mod roles;
mod runner_process;
mod runners;
mod runners_dispatch;
mod runners_docker;
mod runners_limits;
mod runners_local;
mod runners_network;
mod runners_restarts;
mod runners_steps;
mod secrets_at_rest;
mod small_faults;
mod steps_bake;
mod steps_cloudbuild;
mod steps_cloudbuild_artifacts;
mod steps_containers;
mod steps_docker;
mod steps_engine_cli;
mod steps_podman;
mod steps_secrets;
mod trigger_deliveries;
mod ui_browser;
mod ui_history;
mod ui_session;
mod webhook_replay;
