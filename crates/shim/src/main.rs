//! `containerd-shim-lcow-v1`: see `containerd-shim-lcow-v1 --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use lcow_shim::{bootstrap, check, delete};

const HELP: &str = "\
containerd-shim-lcow-v1: the containerd runtime io.containerd.lcow.v1. Each container (or
each Kubernetes pod) runs in its own lcow-vmm micro-VM; its rootfs and bind mounts reach the
guest through the VM's virtio-fs (or 9p) share.

containerd starts this binary; operators use it through containerd:
  ctr run --runtime io.containerd.lcow.v1 IMAGE ID CMD...
  # containerd config.toml (CRI):
  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.lcow]
    runtime_type = \"io.containerd.lcow.v1\"
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.lcow.options]
      ConfigPath = \"/etc/lcow/lcow.toml\"

Usage:
  containerd-shim-lcow-v1 check [--config FILE]   report what this host offers and lacks
  containerd-shim-lcow-v1 --help | --version
  containerd-shim-lcow-v1 -namespace NS -address SOCK -publish-binary BIN -id ID start|delete
                                                  (containerd's shim protocol)

Configuration (TOML; every key optional), found in this order: the runtime options'
ConfigPath (ctr: --runtime-config-path), $LCOW_CONFIG, /etc/lcow/lcow.toml:
  vmm = \"/usr/local/bin/lcow-vmm\"
  kernel = \"/usr/local/share/lcow/vmlinux\"
  initramfs = \"/usr/local/share/lcow/initramfs.cpio\"
  memory_mib = 256            # guest RAM per VM
  vcpus = 1
  share_protocol = \"virtiofs\" # or \"9p\"
  console_log_dir = \"\"        # a directory for <id>.log guest consoles; empty: off
  kernel_params = \"\"
  state_dir = \"/run/lcow\"     # per-VM sockets and mounts
  boot_timeout_secs = 60

Logs go to containerd's log (run containerd with debug level for more); each VM's lcow-vmm
log is <state_dir>/<vm>/vmm.log, at the level $LCOW_VMM_LOG sets (a RUST_LOG filter; default info).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--help" | "-h" | "help") => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some("--version" | "-version" | "-v") => {
            println!("containerd-shim-lcow-v1 {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("check") => {
            let config = match (args.get(2).map(String::as_str), args.get(3)) {
                (Some("--config"), Some(p)) => Some(PathBuf::from(p)),
                (None, _) => None,
                _ => {
                    eprintln!("usage: containerd-shim-lcow-v1 check [--config FILE]");
                    return ExitCode::from(2);
                }
            };
            return if check::run(config.as_deref()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        _ => {}
    }
    let flags = match containerd_shim::parse(&args[1..]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-lcow-v1: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = if flags.version {
        println!("containerd-shim-lcow-v1 {}", env!("CARGO_PKG_VERSION"));
        Ok(())
    } else if flags.info {
        bootstrap::info()
    } else if flags.namespace.is_empty() {
        Err(anyhow::anyhow!(
            "no -namespace given: this binary is started by containerd (see --help)"
        ))
    } else {
        match flags.action.as_str() {
            "start" => bootstrap::start(&flags),
            "delete" => delete::run(&flags),
            "" => bootstrap::serve(&flags),
            other => Err(anyhow::anyhow!(
                "unknown action {other:?} (start or delete)"
            )),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("containerd-shim-lcow-v1: {e:#}");
            ExitCode::FAILURE
        }
    }
}
