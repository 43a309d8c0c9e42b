//! lcow-agent: PID 1 of the guest (docs/architecture.md, `guest/agent`).
//!
//! The guest kernel boots straight into an initramfs whose `/init` is this binary. It mounts
//! the guest's filesystems and cgroup v2 (`init.rs`), reaps every process (`reaper.rs`), and
//! serves the host — containerd-shim-lcow-v1 or lcow-ctl, reaching it through the VMM's
//! hybrid vsock — the ttrpc service of `crates/protocol/protos/agent.proto` on vsock port
//! 1024 (`service.rs`), with each process's stdio on its own raw vsock connection to port
//! 1025 (`stdio.rs`, `copy.rs`). Containers are created by youki's libcontainer
//! (`runtime.rs`), so namespaces, capabilities, seccomp, rlimits, cgroups and mounts follow
//! the OCI spec for real. Outside a VM (tests, a smoke run) it skips the mounts and listens
//! where `--listen` says.

mod bundle;
mod cgroup;
mod container;
mod copy;
mod error;
mod events;
mod exec;
mod executor;
mod guest_mounts;
mod init;
mod oom;
mod quote;
mod reaper;
mod runtime;
mod service;
mod state;
mod stdio;
mod syscall;
mod tty;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use tracing::Level;

use crate::events::EventQueue;
use crate::reaper::Reaper;
use crate::state::{Agent, Config, ShutdownAction};
use crate::stdio::{ListenAddr, Listener};
use crate::syscall::{LinuxSyscall, Syscall};

const USAGE: &str =
    "usage: lcow-agent [--listen ADDR] [--stdio-listen ADDR] [--log LEVEL] [--no-pivot]
  ADDR is vsock://CID:PORT or unix://PATH (defaults: vsock://-1:1024, vsock://-1:1025).
  As PID 1 the log level comes from the kernel command line (lcow.log=debug).
  --no-pivot forces MS_MOVE + chroot into container roots (the default when / is the
  initramfs, where pivot_root cannot work).";

#[derive(Debug)]
struct Args {
    listen: String,
    stdio_listen: String,
    log: Option<Level>,
    no_pivot: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut args = Args {
        listen: format!("vsock://-1:{}", lcow_protocol::AGENT_PORT),
        stdio_listen: format!("vsock://-1:{}", lcow_protocol::STDIO_PORT),
        log: None,
        no_pivot: false,
    };
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--listen" => args.listen = value()?,
            "--stdio-listen" => args.stdio_listen = value()?,
            "--log" => args.log = Some(value()?.parse().context("bad --log level")?),
            "--no-pivot" => args.no_pivot = true,
            "-h" | "--help" => bail!("{USAGE}"),
            // The kernel may pass init arguments of its own; PID 1 ignores what it does not know.
            other if std::process::id() == 1 => eprintln!("lcow-agent: ignoring argument {other}"),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(args)
}

fn init_logging(level: Level) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    // Our own logs at `level`; libcontainer, libcgroups and ttrpc are chatty, so they log
    // warnings only, unless tracing everything was asked for.
    let others = if level == Level::TRACE {
        LevelFilter::TRACE
    } else {
        LevelFilter::WARN
    };
    let filter = Targets::new()
        .with_default(others)
        .with_target("lcow_agent", level);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_timer(tracing_subscriber::fmt::time::uptime());
    tracing_subscriber::registry().with(fmt).with(filter).init();
}

fn capabilities(oom: bool) -> Vec<String> {
    let mut caps = vec!["tty", "seccomp", "pause"];
    if oom {
        caps.push("oom-events");
    }
    if Path::new(cgroup::CGROUP_ROOT)
        .join("cgroup.controllers")
        .exists()
    {
        caps.push("cgroup-v2");
    }
    caps.into_iter().map(str::to_owned).collect()
}

fn run(pid1: bool, started: Instant) -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let sys: Arc<dyn Syscall> = Arc::new(LinuxSyscall);
    let level = if pid1 {
        init::ensure_std_fds();
        init::mount_proc(&*sys).context("mount /proc")?;
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let cmdline = init::parse_cmdline(&cmdline);
        init_logging(args.log.unwrap_or(cmdline.log_level));
        init::setup_guest(&*sys, &cmdline.hostname).context("set up the guest")?;
        // Now that /dev exists, again: fds 0-2 may have had no /dev/console to open at boot.
        init::ensure_std_fds();
        cmdline.log_level
    } else {
        let level = args.log.unwrap_or(Level::INFO);
        init_logging(level);
        // Be the reaper of our descendants as PID 1 would be.
        nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
        level
    };
    init::install_sigpipe_handler().context("install the SIGPIPE handler")?;
    std::env::set_current_dir("/").context("chdir /")?;

    let no_pivot = args.no_pivot || init::detect_no_pivot();
    let shutdown = if pid1 {
        ShutdownAction::PowerOff
    } else {
        ShutdownAction::Exit
    };
    let config = Config::guest(no_pivot, shutdown);
    for dir in [&config.run_dir, &config.state_root, &config.tty_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    tracing::info!(
        pid1,
        no_pivot,
        ?level,
        "lcow-agent {} starting",
        env!("CARGO_PKG_VERSION")
    );

    let events = Arc::new(EventQueue::default());
    let oom = match oom::OomWatcher::start(Arc::clone(&events)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "no OOM events");
            None
        }
    };
    let runtime = Arc::new(runtime::Libcontainer {
        state_root: config.state_root.clone(),
    });
    let has_oom = oom.is_some();
    let agent = Arc::new(Agent::new(config, sys, runtime, Arc::clone(&events), oom));
    Reaper {
        table: Arc::clone(&agent.processes),
        events,
        spawn: Arc::clone(&agent.spawn),
    }
    .spawn()
    .context("start the reaper")?;

    let stdio_addr = ListenAddr::parse(&args.stdio_listen)?;
    let stdio_listener = Listener::bind(&stdio_addr)?;
    let pending = Arc::clone(&agent.stdio);
    std::thread::Builder::new()
        .name("stdio".into())
        .spawn(move || stdio::serve(stdio_listener, pending))
        .context("start the stdio listener")?;

    if let Some(path) = args.listen.strip_prefix("unix://") {
        let _ = std::fs::remove_file(path);
    }
    let service = service::Service::new(agent, capabilities(has_oom));
    let _server = service::serve(service, &args.listen)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("serve ttrpc on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        stdio = %args.stdio_listen,
        ready_ms = started.elapsed().as_millis() as u64,
        "agent ready"
    );
    loop {
        std::thread::park();
    }
}

fn main() {
    let started = Instant::now();
    let pid1 = std::process::id() == 1;
    if let Err(err) = run(pid1, started) {
        tracing::error!("{err:#}");
        eprintln!("lcow-agent: {err:#}");
        if pid1 {
            // PID 1 must not exit (the kernel would panic): power the VM off instead, so the
            // host sees the VM stop.
            let sys = LinuxSyscall;
            sys.sync();
            let _ = sys.power_off();
            loop {
                std::thread::park();
            }
        }
        std::process::exit(1);
    }
}
