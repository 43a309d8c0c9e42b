//! `lcow-ctl`: a small host tool for operators and tests (docs/architecture.md, "shim ↔ agent").
//!
//! It reaches the guest agent of a running `lcow-vmm` through the VM's hybrid-vsock socket
//! (`lcow-vmm run --vsock PATH`), the way the shim does, and offers the agent's operations on
//! the command line: `ping` (wait for the agent and greet it), `run` (a container from the
//! guest's test rootfs, with its stdio streamed and its exit status as ours), `exec`, `kill`, `wait`,
//! `stats`, `events`, `rm` and `shutdown`.

mod agent;
mod exec;
mod run;
mod share;
mod spec;
mod sys;
mod tty;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lcow_protocol::agent::{
    event, ContainerRequest, Empty, SignalProcessRequest, WaitProcessRequest,
};

use crate::agent::{ctx, rpc_message, CALL_TIMEOUT};

/// Talk to the guest agent of a running lcow VM.
#[derive(Debug, Parser)]
#[command(
    name = "lcow-ctl",
    version,
    about,
    long_about = None,
    after_help = "Exit status: run, exec and wait exit with the process's status (128 + N when \
                  signal N ended it); 125 when lcow-ctl itself fails (the message says why)."
)]
struct Cli {
    /// The VM's hybrid-vsock endpoint (`lcow-vmm run --vsock PATH`): a unix socket on Linux;
    /// on Windows a pipe name such as \\.\pipe\lcow-ID, whose port P is the pipe PATH-P.
    #[arg(long, value_name = "PATH")]
    vsock: PathBuf,
    /// How long to wait for the VM's socket and the agent to be ready, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    wait: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Wait for the agent, greet it, and print its version, kernel, capabilities and how long
    /// it took to answer.
    Ping,
    /// Run CMD in a new container on the guest's test rootfs; stream its stdio and exit with
    /// its status (128 + N when killed by signal N).
    Run(run::RunArgs),
    /// Run another process in a running container; exit with its status.
    Exec(exec::ExecArgs),
    /// Send a signal to a container's process (or an exec's, or all of them).
    Kill {
        /// The container.
        id: String,
        /// The signal: a number or a name (TERM, SIGKILL, ...).
        #[arg(default_value = "TERM")]
        signal: String,
        /// The exec instead of the container's init.
        #[arg(long)]
        exec: Option<String>,
        /// Every process of the container.
        #[arg(long)]
        all: bool,
    },
    /// Wait for a process to end; print and exit with its status.
    Wait {
        /// The container.
        id: String,
        /// The exec instead of the container's init.
        #[arg(long)]
        exec: Option<String>,
    },
    /// Print a container's cgroup figures.
    Stats {
        /// The container.
        id: String,
    },
    /// Print the agent's events (process exits, OOM kills) as they come, one per line.
    Events {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop at the first OOM event of this container.
        #[arg(long, value_name = "ID")]
        until_oom: Option<String>,
    },
    /// Remove a stopped container.
    Rm {
        /// The container.
        id: String,
    },
    /// Power the VM off cleanly.
    Shutdown,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lcow-ctl: {e:#}");
            ExitCode::from(125)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<u8> {
    if cli.command_needs_winch() {
        tty::block_winch().context("cannot block SIGWINCH")?;
    }
    let wait =
        Duration::try_from_secs_f64(cli.wait).context("--wait must be a non-negative number")?;
    let agent = agent::connect(&cli.vsock, wait)?;
    let client = &agent.client;
    let c = || ctx(CALL_TIMEOUT);
    match cli.command {
        Command::Ping => {
            println!(
                "agent {} (protocol {}) on {} ready after {} ms; capabilities: {}",
                agent.hello.agent_version,
                agent.hello.protocol_version,
                agent.hello.kernel,
                agent.ready_after.as_millis(),
                agent.hello.capabilities.join(", ")
            );
            Ok(0)
        }
        Command::Run(args) => run::run(&agent, args),
        Command::Exec(args) => exec::exec(&agent, args),
        Command::Kill {
            id,
            signal,
            exec,
            all,
        } => {
            let signal = parse_signal(&signal)?;
            client
                .signal_process(
                    c(),
                    &SignalProcessRequest {
                        container_id: id,
                        exec_id: exec.unwrap_or_default(),
                        signal,
                        all,
                        ..Default::default()
                    },
                )
                .map_err(|e| anyhow::anyhow!("kill failed: {}", rpc_message(&e)))?;
            Ok(0)
        }
        Command::Wait { id, exec } => {
            let status = client
                .wait_process(
                    ctx(Duration::ZERO),
                    &WaitProcessRequest {
                        container_id: id,
                        exec_id: exec.unwrap_or_default(),
                        ..Default::default()
                    },
                )
                .map_err(|e| anyhow::anyhow!("wait failed: {}", rpc_message(&e)))?;
            println!(
                "pid={} exit_status={} signal={}",
                status.pid, status.exit_status, status.signal
            );
            Ok(exit_code(status.exit_status))
        }
        Command::Stats { id } => {
            let s = client
                .stats(
                    c(),
                    &ContainerRequest {
                        container_id: id,
                        ..Default::default()
                    },
                )
                .map_err(|e| anyhow::anyhow!("stats failed: {}", rpc_message(&e)))?;
            println!("cpu_usage_usec={}", s.cpu_usage_usec);
            println!(
                "memory_usage={} memory_limit={}",
                s.memory_usage, s.memory_limit
            );
            println!(
                "memory_events_oom={} memory_events_oom_kill={}",
                s.memory_events_oom, s.memory_events_oom_kill
            );
            println!(
                "pids_current={} pids_limit={}",
                s.pids_current, s.pids_limit
            );
            Ok(0)
        }
        Command::Events { count, until_oom } => {
            let mut seen = 0u64;
            while count.is_none_or(|n| seen < n) {
                let e = client
                    .get_event(ctx(Duration::ZERO), &Empty::new())
                    .map_err(|e| anyhow::anyhow!("events failed: {}", rpc_message(&e)))?;
                seen += 1;
                match e.kind {
                    Some(event::Kind::Exited(x)) => println!(
                        "exit container={} exec={} pid={} exit_status={} signal={}",
                        x.container_id,
                        x.exec_id,
                        x.status.pid,
                        x.status.exit_status,
                        x.status.signal
                    ),
                    Some(event::Kind::Oom(o)) => {
                        println!("oom container={}", o.container_id);
                        if until_oom.as_deref() == Some(o.container_id.as_str()) {
                            break;
                        }
                    }
                    _ => println!("unknown event"),
                }
            }
            Ok(0)
        }
        Command::Rm { id } => {
            client
                .remove_container(
                    c(),
                    &ContainerRequest {
                        container_id: id,
                        ..Default::default()
                    },
                )
                .map_err(|e| anyhow::anyhow!("rm failed: {}", rpc_message(&e)))?;
            Ok(0)
        }
        Command::Shutdown => {
            client
                .shutdown(c(), &Empty::new())
                .map_err(|e| anyhow::anyhow!("shutdown failed: {}", rpc_message(&e)))?;
            Ok(0)
        }
    }
}

impl Cli {
    fn command_needs_winch(&self) -> bool {
        matches!(&self.command, Command::Run(r) if r.tty)
    }
}

/// A process status as our exit code: the status itself when it fits, else 255.
pub fn exit_code(status: u32) -> u8 {
    u8::try_from(status).unwrap_or(u8::MAX)
}

/// A signal number from `15`, `TERM` or `SIGTERM`.
fn parse_signal(text: &str) -> anyhow::Result<u32> {
    if let Ok(n) = text.parse::<u32>() {
        anyhow::ensure!((1..=64).contains(&n), "signal {n} is out of range 1-64");
        return Ok(n);
    }
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    LINUX_SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
        .ok_or_else(|| anyhow::anyhow!("unknown signal {text:?}"))
}

/// The signals `kill` knows by name, with their numbers in the guest (Linux x86-64's, whatever
/// the host is: Windows has none of them).
const LINUX_SIGNALS: &[(&str, u32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
    ("WINCH", 28),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn test_cli_definition_valid() {
        Cli::command().debug_assert();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn test_linux_signals_equal_libc_on_linux() {
        let libc_numbers = [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGKILL,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGTERM,
            libc::SIGCONT,
            libc::SIGSTOP,
            libc::SIGWINCH,
        ];
        for ((name, ours), theirs) in LINUX_SIGNALS.iter().zip(libc_numbers) {
            assert_eq!(i64::from(*ours), i64::from(theirs), "SIG{name}");
        }
    }

    #[test]
    fn test_parse_signal_names_and_numbers() {
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("int").unwrap(), 2);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("BOGUS").is_err());
    }

    #[test]
    fn test_exit_code_saturates() {
        assert_eq!(exit_code(3), 3);
        assert_eq!(exit_code(143), 143);
        assert_eq!(exit_code(300), 255);
    }

    #[test]
    fn test_cli_run_takes_command_after_dashes() {
        let cli = Cli::try_parse_from([
            "lcow-ctl",
            "--vsock",
            "/tmp/v.sock",
            "run",
            "--tty",
            "--",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        match cli.command {
            Command::Run(r) => {
                assert!(r.tty);
                assert_eq!(r.command, ["sh", "-c", "echo hi"]);
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}
