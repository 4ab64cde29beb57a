//! `gantry serve`: opens the store, creates the first admin token, starts the
//! engine and serves the API until SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gantry_api::AppState;
use gantry_engine::{Engine, EngineConfig};
use gantry_store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::args::ServeArgs;

/// How long open connections may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(args: ServeArgs, data_dir: PathBuf) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    // Take every descriptor the system allows before anything opens one,
    // and keep a reserve of them that connections cannot take: a flood of
    // clients must never fail a step with `Too many open files`.
    let fd_budget = gantry_listen::FdBudget::for_process()
        .context("cannot read or raise the file descriptor limit")?;
    let admission = gantry_listen::Admission::new(
        gantry_listen::Limits {
            max_connections: args.listener.max_connections,
            max_per_address: args.listener.max_connections_per_address,
        },
        fd_budget.clone(),
    );
    info!(
        connections = fd_budget.capacity(),
        "file descriptors connections may take"
    );
    // Bind first, so that a busy port fails the start before anything is
    // created or resumed.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    let (sandbox, host_steps) = crate::step_isolation::prepare(&args.steps, &data_dir, &[])?;
    let database = args
        .database
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gantry.db").display()));

    let metrics = gantry_api::install_recorder().context("cannot install the metrics recorder")?;
    let store = Store::open(&database)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&database)))?;
    if let Some(path) = gantry_api::ensure_admin_token(&store, &data_dir).await? {
        info!(path = %path.display(), "first start: wrote the admin token");
    }
    let secrets = gantry_secrets::SecretStore::open(store.clone(), &data_dir)
        .context("cannot open the secret store")?;
    // Fleet hosts: their SSH connections, shared by the API's host routes.
    let fleet = std::sync::Arc::new(gantry_fleet::Fleet::new(
        store.clone(),
        secrets.clone(),
        std::env::current_exe().context("cannot find the gantry binary")?,
    ));
    let apt = gantry_apt::Apt::open(store.clone(), &data_dir.join("apt"), &secrets)
        .await
        .context("cannot open the APT repositories")?;
    // Runners: the registry and the dispatcher (with its lease clock),
    // started before the engine so that resumed stages find their runners;
    // the API's runner routes reach them as an extension.
    let dispatcher = gantry_runners::server::Dispatcher::start(
        store.clone(),
        gantry_runners::protocol::timing(),
    )
    .await
    .context("cannot start the runner dispatcher")?;
    // Services only stages use: the engine reaches them through the stage types alone.
    let deploy = deploy_controller(&data_dir, &fleet, listener.local_addr()?)?.with_limits(
        gantry_deploy::Limits {
            max_size: args.max_deploy_size,
        },
    );
    let stages = gantry_stages::BuiltInStages::new(gantry_stages::StageServices {
        apt: Some(apt.clone()),
        deploy: Some(deploy.clone()),
        image_map: crate::commands::build::image_map_entries(&args.image_map)?,
        registry_map: gantry_cloudbuild::RegistryMap::parse(&args.registry_map)
            .map_err(anyhow::Error::msg)?,
        insecure_registries: gantry_cloudbuild::InsecureRegistries(
            args.insecure_registries.clone(),
        ),
    })?;
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            runners: Some(gantry_engine::RunnerPool {
                dispatcher: dispatcher.clone(),
                wait: args.runner_wait,
                local_runner: (args.local_runner == "on")
                    .then(|| crate::local_runner::NAME.to_owned()),
            }),
            data_dir: data_dir.clone(),
            git: gantry_git::Repositories::new(data_dir.join("repos")),
            containers: crate::commands::build::container_engine(args.container_engine.as_deref())?,
            secrets: Some(secrets),
            sandbox,
            host_steps,
            stage_types: gantry_engine::StageRegistry::new(stages),
        },
    )
    .await
    .context("cannot start the engine")?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;

    let shutdown = CancellationToken::new();
    // Published APT trees, public like any apt mirror (apt clients send no
    // token).
    let body_limits = gantry_api::BodyLimits {
        unauthenticated_timeout: args.listener.unauthenticated_body_timeout,
        unauthenticated_budget: usize::try_from(args.listener.unauthenticated_body_budget)
            .unwrap_or(usize::MAX),
        upload_limit: args.listener.upload_limit,
    };
    // One trigger service: the API's webhook and git routes and the kinds' background work
    // share its watch of the pipelines.
    let triggers = gantry_triggers::Triggers::new(
        std::sync::Arc::new(crate::trigger_orchestrator::EngineOrchestrator(
            engine.clone(),
        )),
        engine.store().clone(),
        engine.git().clone(),
    );
    let runners = gantry_runners::server::RunnerRegistry::new(store.clone(), dispatcher);
    if args.local_runner == "on" {
        let place = crate::local_runner::Place::prepare(
            args.local_runner_user.as_deref(),
            args.local_runner_dir.as_deref(),
            &data_dir,
        )?;
        // The server's own address; one bound to every address is reached
        // on loopback.
        let mut own = address;
        if own.ip().is_unspecified() {
            own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        crate::local_runner::start(
            crate::local_runner::LocalRunner {
                url: format!("http://{own}"),
                data_dir: data_dir.clone(),
                place,
                registry: runners.clone(),
                host_steps: args.steps.host_steps.clone(),
                container_engine: args.container_engine.clone(),
            },
            shutdown.clone(),
        );
    }
    let app = gantry_api::router(AppState::with_services(
        engine.clone(),
        triggers.clone(),
        metrics,
        shutdown.clone(),
        body_limits,
        gantry_api::Services {
            apt: Some(apt.clone()),
            deploy: Some(deploy),
        },
    ))
    .layer(axum::Extension(runners))
    .layer(axum::Extension(gantry_api::DataplaneControl(
        std::sync::Arc::new(StopOwnDataplane(data_dir.clone())),
    )))
    .layer(axum::Extension(fleet))
    .nest_service("/apt", crate::apt_files::router(apt.clone()));
    tokio::spawn(wait_for_signal(shutdown.clone()));
    // Every trigger kind follows its events (pushes, schedules, endings, landed packages).
    triggers.start(shutdown.clone());
    info!(%address, data_dir = %data_dir.display(), database = %redact(&database), "gantry listening");

    gantry_api::serve(
        listener,
        app,
        admission,
        gantry_api::ListenerConfig {
            timeouts: gantry_api::Timeouts {
                header: args.listener.header_timeout,
                keep_alive: args.listener.keep_alive_timeout,
                body: args.listener.body_timeout,
            },
            drain: DRAIN_TIMEOUT,
        },
        shutdown.clone(),
    )
    .await;
    info!("stopping the engine");
    engine.shutdown().await;
    apt.keyring().stop_agent();
    store.close().await;
    info!("stopped");
    Ok(())
}

/// The providers' controller: `local`, whose data plane is started on
/// first use as `gantry dataplane` and survives this process, and `ssh`,
/// whose instances run on fleet hosts behind that same data plane.
fn deploy_controller(
    data_dir: &std::path::Path,
    fleet: &std::sync::Arc<gantry_fleet::Fleet>,
    api_address: std::net::SocketAddr,
) -> anyhow::Result<gantry_deploy::DeployController> {
    use gantry_dataplane::local::{LocalConfig, LocalProvider};
    use gantry_deploy::providers::ProviderRegistry;
    let exe = std::env::current_exe().context("cannot find the gantry binary")?;
    let provider = std::sync::Arc::new(LocalProvider::new(LocalConfig {
        data_dir: data_dir.to_path_buf(),
        dataplane_command: vec![
            exe.display().to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "dataplane".into(),
        ],
    }));
    // Started again the moment it dies, and at once when the recorded
    // desired state has load balancers or server groups (after a reboot).
    provider.watch_dataplane();
    // One line per provider a cluster may name with `provider:`.
    let ssh =
        gantry_fleet::SshProvider::new(fleet.clone(), provider.clone(), &data_dir.join("fleet"))
            .context("cannot open the fleet journal")?;
    // Hosts install packages from the APT trees the API listener serves.
    ssh.install_packages_from(api_address);
    // Replaces lost instances of fleet hosts that stop answering.
    ssh.watch_hosts();
    let providers = ProviderRegistry::new()
        .register(gantry_deploy::providers::Provider::from_both(
            LocalProvider::NAME,
            provider,
        ))
        .register(ssh.provider());
    Ok(gantry_deploy::DeployController::new(providers))
}

/// `gantry dataplane`: serves load balancers and runs instances until told
/// to stop through its socket or until the data directory is removed. It
/// runs in its own session (started with setsid), so signals to the
/// server's process group do not reach it.
pub async fn dataplane(data_dir: PathBuf) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    gantry_dataplane::run(&data_dir)
        .await
        .with_context(|| format!("data plane for {}", data_dir.display()))
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

/// The database URL without its password, for logs and error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `POST /api/v1/dataplane/stop`: the data plane of this server's data
/// directory, stopped as `gantry dataplane stop --data-dir` stops it.
struct StopOwnDataplane(PathBuf);

impl gantry_api::StopDataplane for StopOwnDataplane {
    fn stop(&self) -> futures::future::BoxFuture<'_, Result<bool, gantry_api::ApiError>> {
        Box::pin(async move {
            match gantry_dataplane::stop(&self.0).await {
                Ok(gantry_dataplane::Stopped::Stopped) => Ok(true),
                Ok(gantry_dataplane::Stopped::NotRunning) => Ok(false),
                Err(error) => Err(gantry_api::ApiError::internal(error.to_string())),
            }
        })
    }
}
