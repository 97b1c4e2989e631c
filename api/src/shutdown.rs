//! Graceful drain on SIGTERM (and SIGINT), so a rolling restart behind a load balancer
//! fails no request:
//!
//! 1. the instance turns not ready (`/health/ready` answers 503 `draining`), background jobs
//!    stop taking new work, and every answer carries `Connection: close`, so the proxy
//!    drops each kept-alive connection after its current request instead of sending the
//!    next one on a connection that is about to close;
//! 2. it keeps listening and answering for `shutdown.drain_seconds` — longer than the
//!    proxy's upstream keep-alive timeout, so by the end the proxy has no idle connection
//!    to this instance left (each was either used and closed, or timed out on the proxy's
//!    side);
//! 3. it stops listening (the proxy now gets "connection refused", which it retries on
//!    another instance even for a POST, since nothing was sent), lets running requests
//!    finish for up to `shutdown.grace_seconds`, and exits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::dev::ServerHandle;

use crate::state::AppState;

/// Waits for SIGTERM or SIGINT, drains, then stops `servers`.
pub async fn drain_on_signal(state: Arc<AppState>, servers: Vec<ServerHandle>) {
    wait_for_signal().await;
    let drain = Duration::from_secs(state.config.shutdown.drain_seconds);
    tracing::info!(
        drain_seconds = drain.as_secs(),
        "shutting down: draining (not ready, connections closed after each answer)"
    );
    state.draining.store(true, Ordering::SeqCst);
    tokio::time::sleep(drain).await;
    tracing::info!("drain over: no longer listening; finishing running requests");
    for server in servers {
        server.stop(true).await;
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; graceful drain disabled");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
