//! `hookline`: every Hookline function in one process, on the embedded store
//! and queue. `hookline serve` is the whole platform on one machine.

use clap::{Args, Parser, Subcommand};
use hookline::adapters::embedded::DataDir;
use hookline::apply::ApplyHandler;
use hookline::config::Settings;
use hookline::platform::APPLY_MAX_RECEIVES;
use hookline::ports::SystemClock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

mod control;
mod server;

// glibc's allocator was a quarter of the ingest path's CPU (frees on other
// threads than the allocation, as tokio's work stealing makes them).
// Counted per thread, for the memory budget of transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<mimalloc::MiMalloc> =
    hookline::alloc::Counting(mimalloc::MiMalloc);

#[derive(Parser)]
#[command(
    name = "hookline",
    version,
    about = "Hookline webhook platform on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform: HTTP faces, queue workers, embedded store.
    Serve(ServeArgs),
    /// Copy a data directory (store and queues) into DIR, consistently, while
    /// its server runs (or when none does); `hookline serve --data-dir DIR`
    /// starts from the copy.
    Backup(BackupArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// Where the copy goes: a new or empty directory.
    dir: PathBuf,
    /// The data directory to copy.
    #[arg(long, env = "HOOKLINE_DATA_DIR", default_value = "./.hookline")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where the embedded store keeps its file; survives restarts.
    #[arg(long, env = "HOOKLINE_DATA_DIR", default_value = "./.hookline")]
    data_dir: PathBuf,
    /// Let outbound calls reach private and loopback addresses
    /// (also HOOKLINE_ALLOW_PRIVATE_TARGETS=1).
    #[arg(long)]
    allow_private_targets: bool,
    /// Receive loops applying accepted work, each 10 messages at a time.
    /// A message waits mostly on store round trips, so many loops keep the
    /// store's commits full (a backlog applied about 3.4x as fast with 32 as
    /// with 2, see the README). 0 accepts and keeps everything queued, to be applied after a
    /// restart with workers (to take a burst first, or to measure ingest alone).
    #[arg(long, env = "HOOKLINE_APPLY_WORKERS", default_value_t = 32)]
    apply_workers: usize,
    /// Receive loops delivering events to webhooks, each 10 deliveries at a
    /// time (they wait on the endpoints, up to the delivery timeout).
    #[arg(long, env = "HOOKLINE_DELIVERY_WORKERS", default_value_t = 32)]
    delivery_workers: usize,
    /// Receive loops doing campaign runs' work (matching a page of
    /// profiles, posting a batch), each 10 messages at a time.
    #[arg(long, env = "HOOKLINE_CAMPAIGN_WORKERS", default_value_t = 4)]
    campaign_workers: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    // Applying is background work: its threads run at a lower priority, so
    // that under load the cores go to accepting requests first and applying
    // takes what is left (all of it when requests stop).
    let apply_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hookline-apply")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let done = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args, apply_runtime.handle())),
        Command::Backup(args) => control::backup(&args.data_dir, &args.dir).map(|done| {
            println!("{done}");
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Nice 10 for the calling thread (on Linux a thread has its own; elsewhere
/// it would be the whole process, so nothing is changed).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls about the calling thread.
        let done = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 10)
        };
        if done != 0 {
            let error = std::io::Error::last_os_error();
            tracing::debug!(%error, "apply threads keep their priority");
        }
    }
}

async fn serve(args: ServeArgs, apply_runtime: &tokio::runtime::Handle) -> Result<(), String> {
    let mut settings = Settings::from_env()?;
    settings.allow_private_targets |= args.allow_private_targets;
    let clock = Arc::new(SystemClock);
    let data = DataDir::open(&args.data_dir, APPLY_MAX_RECEIVES, clock.clone()).map_err(|e| {
        format!(
            "cannot open the data directory {}: {e}",
            args.data_dir.display()
        )
    })?;
    let data = Arc::new(data);
    let platform = data.platform(settings, clock);
    let configured = std::env::var("HOOKLINE_ADMIN_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let generated = hookline::accounts::ensure_default(&platform, configured.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(key) = generated {
        // Printed once, to the terminal only: it is stored hashed and cannot be shown again.
        println!("Admin key of the default account (shown once; keep it): {key}");
    }
    let configured = std::env::var("HOOKLINE_OPERATOR_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let generated = hookline::accounts::ensure_operator(&platform, configured.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(key) = generated {
        println!("Operator key (shown once; keep it): {key}");
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("hookline listening on http://{addr}");

    let (stop, stopped) = watch::channel(false);
    let handler = Arc::new(ApplyHandler::new(platform.clone()));
    if args.apply_workers == 0 {
        println!("apply workers: 0 (accepted requests stay queued until a start with workers)");
    }
    let workers: Vec<_> = (0..args.apply_workers)
        .map(|_| {
            apply_runtime.spawn(hookline::work::drive(
                platform.apply_queue.clone(),
                handler.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    let delivery = Arc::new(hookline::deliver::DeliveryHandler::new(platform.clone()));
    let mut delivering: Vec<_> = (0..args.delivery_workers)
        .map(|_| {
            tokio::spawn(hookline::work::drive(
                platform.delivery_queue.clone(),
                delivery.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    delivering.push(tokio::spawn(hookline::deliver::release_forever(
        platform.clone(),
        std::time::Duration::from_secs(5),
        stopped.clone(),
    )));
    delivering.push(apply_runtime.spawn(hookline::work::drain_dead_forever(
        platform.delivery_queue.clone(),
        delivery.clone(),
        stopped.clone(),
    )));
    let campaigns = Arc::new(hookline::scheduler::CampaignHandler::new(platform.clone()));
    for _ in 0..args.campaign_workers {
        delivering.push(tokio::spawn(hookline::work::drive(
            platform.campaign_queue.clone(),
            campaigns.clone(),
            stopped.clone(),
        )));
    }
    delivering.push(apply_runtime.spawn(hookline::work::drain_dead_forever(
        platform.campaign_queue.clone(),
        campaigns.clone(),
        stopped.clone(),
    )));
    delivering.push(tokio::spawn(hookline::scheduler::tick_forever(
        platform.clone(),
        platform.settings.scheduler_tick,
        stopped.clone(),
    )));
    let sweeper = apply_runtime.spawn(hookline::work::sweep_forever(
        platform.store.clone(),
        stopped.clone(),
    ));
    let drainer = apply_runtime.spawn(hookline::work::drain_dead_forever(
        platform.apply_queue.clone(),
        handler.clone(),
        stopped.clone(),
    ));
    let control = match control::listen(&args.data_dir) {
        Ok(listener) => Some(tokio::spawn(control::serve(
            listener,
            data.clone(),
            stopped.clone(),
        ))),
        Err(error) => {
            tracing::warn!(%error, "no control socket: `hookline backup` needs this server stopped");
            None
        }
    };
    let app = hookline::http::router(platform.clone());
    let mut limits = server::Limits::for_open_files(server::open_files());
    limits.header_timeout = platform.settings.header_timeout;
    // An answer may take as long to be read as a body to be sent.
    limits.write_timeout = platform.settings.request_timeout;
    if let Some(n) = platform.settings.max_connections {
        limits.max_connections = n;
    }
    server::serve(listener, app, limits, shutdown_signal()).await;
    // Requests are answered; let the worker finish the batch in hand, then
    // close the store (the writer commits what is queued before it stops).
    let _ = stop.send(true);
    for worker in workers.into_iter().chain(delivering) {
        let _ = worker.await;
    }
    let _ = drainer.await;
    let _ = sweeper.await;
    if let Some(control) = control {
        let _ = control.await;
        let _ = std::fs::remove_file(args.data_dir.join(control::SOCKET));
    }
    drop(handler);
    drop(delivery);
    drop(campaigns);
    drop(platform);
    drop(data);
    println!("hookline stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
