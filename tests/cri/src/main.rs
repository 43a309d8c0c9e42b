//! `lcow-cri-check`: drives containerd's CRI API the way the kubelet does and checks every
//! answer: a pod sandbox on a runtime handler (`lcow`), two containers sharing its VM, ExecSync,
//! container logs, statuses through every state, then the pod stopped and removed with nothing
//! left in containerd. Each check prints `ok: ...`; the first that fails ends the run (exit 1)
//! after the pod is stopped and removed, so that a failure leaves nothing behind either.
//!
//! tests/e2e/l2's `cri` segment runs it against a containerd whose CRI plugin maps the handler
//! to `io.containerd.lcow.v1` (tests/e2e/README.md).

mod client;
mod pod;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Runs a Kubernetes-style pod of two containers through containerd's CRI and checks each step.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// containerd's gRPC socket (the CRI services share it).
    #[arg(long)]
    socket: PathBuf,
    /// The CRI runtime handler the pod runs on (a `runtimes.<name>` table in containerd's CRI
    /// configuration).
    #[arg(long, default_value = "lcow")]
    handler: String,
    /// The image both containers run (already in containerd's `k8s.io` namespace); it needs
    /// `sh`, `cat` and `sleep`.
    #[arg(long)]
    image: String,
    /// Where the pod's container logs go (the kubelet's /var/log/pods/<pod>).
    #[arg(long)]
    log_dir: PathBuf,
    /// The longest any one CRI call may take (a pod sandbox boots a VM).
    #[arg(long, default_value_t = 180)]
    call_timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lcow-cri-check: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&cli)) {
        Ok(checks) => {
            println!(
                "cri: a pod of two containers on handler {}: {checks} checks passed",
                cli.handler
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<usize> {
    let timeout = Duration::from_secs(cli.call_timeout_secs);
    let mut cri = client::Cri::connect(&cli.socket, timeout).await?;
    let plan = pod::Plan {
        handler: cli.handler.clone(),
        image: cli.image.clone(),
        log_dir: cli.log_dir.clone(),
    };
    pod::run(&mut cri, &plan).await
}
