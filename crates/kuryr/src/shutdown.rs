//! How the serving subcommands stop: SIGTERM or SIGINT flips one watch
//! channel that every server task waits on.

use anyhow::{Context, Result};
use tokio::sync::watch;

/// Resolves once `rx` says stop.
pub(crate) async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Waits for SIGTERM or SIGINT.
pub(crate) async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
