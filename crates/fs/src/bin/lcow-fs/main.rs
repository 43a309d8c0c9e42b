//! `lcow-fs`: the lcow file server on the host. `lcow-fs mount SRC MNT` serves directory SRC at
//! MNT through `/dev/fuse`, with the same FUSE server (and the same backends) that answers a
//! guest's virtio-fs requests, so the file-system suites run against it without a VM.
//! See `lcow-fs mount --help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
#[cfg(target_os = "linux")]
mod devfuse;
#[cfg(target_os = "linux")]
mod mount;
#[cfg(not(target_os = "linux"))]
#[path = "mount_unsupported.rs"]
mod mount;

#[derive(Debug, Parser)]
#[command(
    name = "lcow-fs",
    version,
    about = "The lcow file server: serves a host directory through FUSE",
    long_about = "The lcow file server: serves a host directory through FUSE with complete POSIX \
                  semantics (real locks, xattrs, hard links, device nodes), confined beneath \
                  the directory. The same server answers a guest's virtio-fs requests inside \
                  lcow-vmm.\n\n\
                  Exit status: 0 after a clean unmount, 1 on an error (stderr has the whole \
                  cause chain), 2 on a usage error. Logs go to stderr; RUST_LOG sets the filter \
                  (default: info)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve SRC at MNT through /dev/fuse until unmounted or until SIGINT or SIGTERM (Linux
    /// hosts).
    Mount(args::MountArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Mount(args) => mount::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lcow-fs: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
