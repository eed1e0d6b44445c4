//! How the workspace's binaries (`flexbridge`, `flex-emulator`,
//! `flexbridge-bench`) hear that they should stop: Ctrl-C (SIGINT) or
//! SIGTERM, whichever comes first. One helper, so the three stop alike.

use tokio_util::sync::CancellationToken;

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    CtrlC,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Self::CtrlC => "Ctrl-C",
            Self::Terminate => "SIGTERM",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Resolves on the first Ctrl-C or SIGTERM. A signal that cannot be
/// listened for is logged and never resolves (the other still can).
pub async fn signal() -> Signal {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => Signal::CtrlC,
        () = terminate => Signal::Terminate,
    }
}

/// A token cancelled on the first Ctrl-C or SIGTERM (call inside a tokio
/// runtime: it spawns the listener).
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let signal = signal().await;
        tracing::info!(%signal, "signal received; shutting down");
        cancel.cancel();
    });
    token
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sigterm_cancels_the_token() {
        let token = on_signal();
        // Let the listener install its handler before the signal is sent.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let pid = std::process::id();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(5), token.cancelled())
            .await
            .expect("the token was cancelled");
    }
}
