//! `lcow-vmm`: boot a guest kernel in a micro-VM on KVM and run it until it powers off or
//! reboots. See `lcow-vmm run --help`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use lcow_protocol::vm::{
    ConsoleSpec, VmExit, VmLaunch, EXIT_GUEST_PANIC, EXIT_POWER_OFF, EXIT_RESET, EXIT_VMM_ERROR,
};
use lcow_vmm::config::{check_shares, DiskConfig, ShareConfig, MAX_VCPUS};
use lcow_vmm::{parse_size, Console, ExitReason, VmConfig};

// The host check before anything is loaded: /dev/kvm on Linux, WHP on Windows.
#[cfg(target_os = "linux")]
#[path = "host_linux.rs"]
mod host;
#[cfg(windows)]
#[path = "host_windows.rs"]
mod host;

#[derive(Debug, Parser)]
#[command(
    name = "lcow-vmm",
    version,
    about = "The lcow micro-VM monitor: boots a Linux guest kernel on KVM",
    long_about = "The lcow micro-VM monitor: boots a Linux guest kernel on KVM with an \
                  initramfs, a serial console, an i8042 reset line, optionally a \
                  virtio-vsock device behind a hybrid-vsock unix socket and host directories \
                  shared over virtio-fs or virtio-9p (--share), and runs it until the guest \
                  powers off or reboots. The VM is described by flags, or by a JSON launch \
                  file (--launch, what containerd-shim-lcow-v1 writes).\n\n\
                  See `lcow-vmm run --help` for the exit statuses."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `run`'s exit statuses, the contract with whoever starts lcow-vmm (lcow_protocol::vm).
const RUN_ABOUT: &str = "Boot a kernel and run the VM until the guest powers off or reboots.\n\n\
    Exit status: 0 when the guest powered off, 1 on a VMM error (stderr has the whole cause \
    chain), 2 on a usage error (flags or launch file), 3 when the guest kernel panicked (seen \
    on its serial console, which needs console=ttyS0 on the command line; the default has \
    it), 4 when the guest reset itself (a reboot, a triple fault, the i8042 reset line). \
    stderr's last line says the same in words: `lcow-vmm: vm ended: \
    power-off|reset|guest-panic`. Logs go to stderr (or the launch file's log); RUST_LOG (or \
    its log_filter) sets the filter (default: warn).";

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot a kernel and run the VM until the guest powers off or reboots.
    #[command(long_about = RUN_ABOUT)]
    Run(Box<RunArgs>),
    /// Say whether this host's hypervisor can boot a guest (KVM on Linux, the Windows
    /// Hypervisor Platform on Windows) and exit 0 when it can, 1 when it cannot.
    #[command(long_about = PROBE_ABOUT)]
    Probe(ProbeArgs),
}

const PROBE_ABOUT: &str = "Say whether this host's hypervisor can boot a Linux guest:     /dev/kvm with hardware virtualization on Linux, the Windows Hypervisor Platform on     Windows. Prints one line, `kvm: ready|not ready: DETAIL`, or with --json one object     {\"hypervisor\", \"ready\", \"detail\"} (what containerd-shim-lcow-v1 check reads).     Exit status: 0 when ready, 1 when not. Nothing is loaded and no VM is made.";

#[derive(Debug, Args)]
struct ProbeArgs {
    /// Print a JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The whole VM as a JSON launch file instead of the flags below: {"kernel": PATH,
    /// "initramfs": PATH, "cmdline": STRING, "memory_mib": N, "vcpus": N, "console": "off" |
    /// "stdout" | {"file": PATH}, "vsock": PATH, "shares": [{"tag", "path", "read_only",
    /// "backend": "passthrough"|"mapped", "protocol": "virtiofs"|"9p"}], "disks": [{"path",
    /// "read_only"}], "log": PATH, "log_filter": STRING}. Unknown keys are refused.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kernel", "initrd", "shares", "vsock", "disks"])]
    launch: Option<PathBuf>,

    /// Guest kernel: an uncompressed vmlinux (ELF) with a Xen PVH entry note, booted through
    /// PVH (fastest), or a bzImage, booted through the 64-bit Linux boot protocol.
    #[arg(long, value_name = "PATH", required_unless_present = "launch")]
    kernel: Option<PathBuf>,

    /// Initramfs (a cpio archive, optionally compressed as the kernel supports), loaded
    /// page-aligned at the top of guest RAM below 3 GiB. Default: none.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,

    /// Kernel command line (at most 2047 bytes with the VMM's own tokens, printable ASCII).
    /// Add "console=ttyS0" to see the kernel's messages; "reboot=t" or "reboot=k" make a guest
    /// reboot end the VM with reason "reset".
    #[arg(
        long,
        value_name = "STRING",
        default_value = "console=ttyS0 reboot=k panic=-1"
    )]
    cmdline: String,

    /// Guest RAM in bytes, with an optional K, M or G suffix (binary units: 1M = 1 MiB); a bare
    /// number is MiB. A multiple of 4 KiB, at least 32M. RAM beyond 3 GiB is placed above
    /// 4 GiB.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_memory)]
    memory: u64,

    /// Number of vCPUs, 1 to 32; each runs on its own thread.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VCPUS))
    )]
    vcpus: u32,

    /// Where the serial console (COM1, ttyS0) goes: "stdout", "off" (discarded), or a file
    /// path (created or truncated).
    #[arg(long, value_name = "stdout|FILE|off", default_value = "stdout")]
    console: Console,

    /// Give the guest a virtio-vsock device (guest CID 3) whose host side is a hybrid-vsock
    /// unix socket listening at PATH: a host client connects, writes "CONNECT <port>\n" and
    /// reads "OK <n>\n", then the stream is a vsock connection to that guest port; a guest
    /// connection to host port P is forwarded to the unix socket "PATH_P". A stale socket at
    /// PATH is replaced; a live one is an error. The socket is removed when the VM ends.
    /// Default: no vsock device.
    #[arg(long, value_name = "PATH")]
    vsock: Option<PathBuf>,

    /// Share the host directory PATH with the guest under TAG (repeatable; each share is its
    /// own virtio-mmio device, after vsock, in the order given). Options, comma-separated:
    /// "ro" (the guest cannot change anything; "rw" is the default); "backend=passthrough"
    /// (default: the host's own owners and modes; run as root) or "backend=mapped" (owners,
    /// modes and device nodes kept in user.* xattrs; no privileges needed);
    /// "proto=virtiofs" (default: virtio-fs, FUSE, tags up to 36 bytes; in the guest:
    /// mount -t virtiofs TAG DIR) or "proto=9p" (virtio-9p, 9P2000.L, tags up to 255 bytes;
    /// in the guest: mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 TAG DIR).
    /// PATH must be an existing directory and cannot contain a comma; tags must be unique.
    #[arg(
        long = "share",
        value_name = "TAG=PATH[,ro][,backend=passthrough|mapped][,proto=9p|virtiofs]",
        value_parser = parse_arg::<ShareConfig>
    )]
    shares: Vec<ShareConfig>,

    /// Give the guest the disk image PATH as a virtio-blk disk (repeatable: /dev/vda,
    /// /dev/vdb, ... in the order given, after the shares' devices). Raw, VHD (fixed or
    /// dynamic) and VHDX images are told apart by their contents; a corrupt header, a
    /// differencing disk or a VHDX with a log to replay is refused by name. "ro": the guest
    /// cannot write it (the default is read-write). PATH cannot contain a comma.
    #[arg(long = "disk", value_name = "PATH[,ro]", value_parser = parse_arg::<DiskConfig>)]
    disks: Vec<DiskConfig>,
}

/// A flag's value parsed by its `FromStr`, the error with its causes in one line.
fn parse_arg<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::error::Error,
{
    text.parse::<T>().map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        message
    })
}

fn parse_memory(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

fn check_readable(what: &str, path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    // Before opening it: Windows cannot open a directory as a file at all.
    if !meta.is_file() {
        bail!("the {what} {} is not a regular file", path.display());
    }
    File::open(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    Ok(())
}

/// The VM to run and where its log goes.
#[derive(Debug)]
struct Plan {
    config: VmConfig,
    log: Option<PathBuf>,
    log_filter: Option<String>,
}

/// The plan from a launch file; its errors are usage errors.
fn plan_from_launch(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read the launch file {}", path.display()))?;
    let l: VmLaunch = serde_json::from_slice(&text)
        .with_context(|| format!("the launch file {} is invalid", path.display()))?;
    if !(1..=MAX_VCPUS).contains(&l.vcpus) {
        bail!(
            "launch file: vcpus = {} is outside 1 to {MAX_VCPUS}",
            l.vcpus
        );
    }
    let memory = l
        .memory_mib
        .checked_mul(1 << 20)
        .filter(|&m| m >= 32 << 20)
        .with_context(|| format!("launch file: memory_mib = {} is below 32", l.memory_mib))?;
    let shares = l
        .shares
        .into_iter()
        .map(ShareConfig::try_from)
        .collect::<Result<Vec<_>, _>>()
        .context("launch file")?;
    check_shares(&shares).context("launch file")?;
    let disks = l
        .disks
        .into_iter()
        .map(DiskConfig::try_from)
        .collect::<Result<Vec<_>, _>>()
        .context("launch file")?;
    let console = match l.console {
        ConsoleSpec::Off => Console::Off,
        ConsoleSpec::Stdout => Console::Stdout,
        ConsoleSpec::File(p) => Console::File(p),
    };
    Ok(Plan {
        config: VmConfig {
            kernel: l.kernel,
            initrd: l.initramfs,
            cmdline: l.cmdline,
            memory,
            vcpus: l.vcpus,
            console,
            vsock: l.vsock,
            shares,
            disks,
        },
        log: l.log,
        log_filter: l.log_filter,
    })
}

/// The plan from the flags (clap has checked them).
fn plan_from_flags(args: RunArgs) -> anyhow::Result<Plan> {
    check_shares(&args.shares)?;
    Ok(Plan {
        config: VmConfig {
            kernel: args
                .kernel
                .context("--kernel is required without --launch")?,
            initrd: args.initrd,
            cmdline: args.cmdline,
            memory: args.memory,
            vcpus: args.vcpus,
            console: args.console,
            vsock: args.vsock,
            shares: args.shares,
            disks: args.disks,
        },
        log: None,
        log_filter: None,
    })
}

fn run(config: VmConfig) -> anyhow::Result<ExitReason> {
    check_readable("kernel", &config.kernel)?;
    if let Some(initrd) = &config.initrd {
        check_readable("initramfs", initrd)?;
    }
    host::check()?;
    lcow_vmm::run(&config).context("the vm failed")
}

/// Logs to stderr, or to `file`; the filter from RUST_LOG, else `filter`, else warn.
fn init_logging(file: Option<&Path>, filter: Option<&str>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("warn")))
        .context("the log filter is invalid")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .init();
        }
        // Colours only on a terminal: a redirected stderr (the shim's vmm.log) gets plain text.
        None => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// What the command line asks for.
enum Task {
    /// Boot a VM.
    Run(Box<Plan>),
    /// Report on the host's hypervisor.
    Probe(ProbeArgs),
}

/// The task, or a usage error that exits with 2 (including two shares with one tag).
fn parse_cli() -> Task {
    use clap::CommandFactory;
    let args = match Cli::parse().command {
        Command::Run(args) => *args,
        Command::Probe(args) => return Task::Probe(args),
    };
    let plan = match &args.launch {
        Some(path) => plan_from_launch(path),
        None => plan_from_flags(args),
    };
    Task::Run(Box::new(plan.unwrap_or_else(|e| {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, format!("{e:#}"))
            .exit()
    })))
}

/// `probe`: one line or one JSON object on stdout; 0 when ready.
fn probe(args: &ProbeArgs) -> ExitCode {
    let found = host::probe();
    if args.json {
        match serde_json::to_string(&found) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("lcow-vmm: error: {e}");
                return ExitCode::from(EXIT_VMM_ERROR);
            }
        }
    } else {
        let state = if found.ready { "ready" } else { "not ready" };
        println!("{}: {state}: {}", found.hypervisor, found.detail);
    }
    if found.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// lcow-vmm's exit status for how the VM ended (see `run --help`).
fn exit_status(reason: ExitReason) -> (VmExit, u8) {
    let end = match reason {
        ExitReason::PowerOff => VmExit::PowerOff,
        ExitReason::Reset => VmExit::Reset,
        ExitReason::GuestPanic => VmExit::GuestPanic,
    };
    let code = match reason {
        ExitReason::PowerOff => EXIT_POWER_OFF,
        ExitReason::Reset => EXIT_RESET,
        ExitReason::GuestPanic => EXIT_GUEST_PANIC,
    };
    (end, code)
}

fn main() -> ExitCode {
    let plan = match parse_cli() {
        Task::Run(plan) => plan,
        Task::Probe(args) => return probe(&args),
    };
    if let Err(e) = init_logging(plan.log.as_deref(), plan.log_filter.as_deref()) {
        eprintln!("lcow-vmm: error: {e:#}");
        return ExitCode::from(EXIT_VMM_ERROR);
    }
    match run(plan.config) {
        Ok(reason) => {
            let what = match reason {
                ExitReason::PowerOff => "the guest powered off",
                ExitReason::Reset => "the guest rebooted",
                ExitReason::GuestPanic => "the guest kernel panicked",
            };
            let (end, code) = exit_status(reason);
            eprintln!("lcow-vmm: vm ended: {end} ({what})");
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("lcow-vmm: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(EXIT_VMM_ERROR)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn test_cli_definition_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn test_cli_defaults_and_sizes() {
        let cli = Cli::try_parse_from(["lcow-vmm", "run", "--kernel", "k", "--memory", "1G"]);
        let Ok(Cli {
            command: Command::Run(args),
        }) = cli
        else {
            panic!("parse failed: {cli:?}");
        };
        assert_eq!(args.kernel.as_deref(), Some(Path::new("k")));
        assert_eq!(args.memory, 1 << 30);
        assert_eq!(args.vcpus, 1);
        assert_eq!(args.console, Console::Stdout);
        assert!(args.initrd.is_none());
        assert!(args.vsock.is_none());
    }

    #[test]
    fn test_cli_vsock_path_parsed() {
        let cli = Cli::try_parse_from([
            "lcow-vmm",
            "run",
            "--kernel",
            "k",
            "--vsock",
            "/run/lcow/vm1/vsock.sock",
        ]);
        let Ok(Cli {
            command: Command::Run(args),
        }) = cli
        else {
            panic!("parse failed: {cli:?}");
        };
        assert_eq!(args.vsock, Some(PathBuf::from("/run/lcow/vm1/vsock.sock")));
    }

    #[test]
    fn test_cli_shares_repeatable_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = format!("a={}", dir.path().display());
        let b = format!(
            "b={},ro,proto=virtiofs,backend=mapped",
            dir.path().display()
        );

        let cli = Cli::try_parse_from([
            "lcow-vmm", "run", "--kernel", "k", "--share", &a, "--share", &b,
        ]);

        let Ok(Cli {
            command: Command::Run(args),
        }) = cli
        else {
            panic!("parse failed: {cli:?}");
        };
        let tags: Vec<&str> = args.shares.iter().map(|s| s.tag.as_str()).collect();
        assert_eq!(tags, ["a", "b"]);
        assert!(args.shares[1].read_only);
    }

    #[test]
    fn test_cli_disks_repeatable_with_ro_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("layer.vhd");
        std::fs::write(&img, b"").unwrap();
        let ro = format!("{},ro", img.display());
        let rw = img.display().to_string();
        let cli = Cli::try_parse_from([
            "lcow-vmm", "run", "--kernel", "k", "--disk", &ro, "--disk", &rw,
        ]);
        let Ok(Cli {
            command: Command::Run(args),
        }) = cli
        else {
            panic!("parse failed: {cli:?}");
        };
        assert_eq!(args.disks.len(), 2);
        assert!(args.disks[0].read_only && !args.disks[1].read_only);
        let bad = format!("{},fast", img.display());
        let err =
            Cli::try_parse_from(["lcow-vmm", "run", "--kernel", "k", "--disk", &bad]).unwrap_err();
        assert!(err.to_string().contains("unknown option 'fast'"), "{err}");
        let err = Cli::try_parse_from([
            "lcow-vmm",
            "run",
            "--kernel",
            "k",
            "--disk",
            "/nonexistent/d.vhdx",
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot use disk image /nonexistent/d.vhdx"),
            "{err}"
        );
        let dir_err = Cli::try_parse_from([
            "lcow-vmm",
            "run",
            "--kernel",
            "k",
            "--disk",
            dir.path().to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(
            dir_err.to_string().contains("not a regular file"),
            "{dir_err}"
        );
    }

    #[test]
    fn test_cli_bad_share_usage_error_names_value() {
        let err = Cli::try_parse_from([
            "lcow-vmm",
            "run",
            "--kernel",
            "k",
            "--share",
            "data=/nonexistent/lcow-dir",
        ])
        .unwrap_err();

        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let text = err.to_string();
        assert!(
            text.contains("cannot use share path /nonexistent/lcow-dir: "),
            "{text}"
        );
        if cfg!(target_os = "linux") {
            assert!(text.contains("No such file"), "{text}");
        }
    }

    #[test]
    fn test_cli_missing_kernel_flag_usage_error() {
        let err = Cli::try_parse_from(["lcow-vmm", "run"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn test_cli_bad_memory_and_vcpus_rejected() {
        for args in [
            ["lcow-vmm", "run", "--kernel", "k", "--memory", "lots"],
            ["lcow-vmm", "run", "--kernel", "k", "--vcpus", "0"],
            ["lcow-vmm", "run", "--kernel", "k", "--vcpus", "33"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn test_check_readable_missing_kernel_named_error() {
        let err = check_readable("kernel", Path::new("/nonexistent/vmlinux")).unwrap_err();
        let chain = format!("{err:#}");
        assert!(
            chain.starts_with("cannot read the kernel /nonexistent/vmlinux"),
            "{chain}"
        );
        if cfg!(target_os = "linux") {
            assert!(chain.contains("No such file"), "{chain}");
        }
    }

    #[test]
    fn test_check_readable_directory_rejected() {
        let dir = std::env::temp_dir();
        let err = check_readable("kernel", &dir).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn test_exit_statuses_distinct_and_in_help() {
        let codes: Vec<u8> = [
            ExitReason::PowerOff,
            ExitReason::Reset,
            ExitReason::GuestPanic,
        ]
        .into_iter()
        .map(|r| exit_status(r).1)
        .collect();
        assert_eq!(codes, [0, 4, 3]);
        assert_eq!(exit_status(ExitReason::Reset).0.to_string(), "reset");
        let help = Cli::command()
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        let help = help.replace('\n', " ");
        for words in [
            "0 when the guest powered off",
            "1 on a VMM error",
            "2 on a usage error",
            "3 when the guest kernel panicked",
            "4 when the guest reset itself",
        ] {
            assert!(
                help.replace("  ", " ").contains(words),
                "{words:?} not in: {help}"
            );
        }
    }

    #[test]
    fn test_launch_file_becomes_the_vm_config() {
        let dir = tempfile::tempdir().unwrap();
        let launch = dir.path().join("launch.json");
        let l = VmLaunch {
            kernel: "/k".into(),
            initramfs: Some("/i".into()),
            cmdline: "console=ttyS0".into(),
            memory_mib: 512,
            vcpus: 2,
            console: ConsoleSpec::File(dir.path().join("c.log")),
            vsock: Some(dir.path().join("v.sock")),
            shares: vec![lcow_protocol::vm::ShareSpec {
                tag: "lcow".into(),
                path: dir.path().to_owned(),
                read_only: true,
                backend: lcow_protocol::vm::ShareBackend::Mapped,
                protocol: lcow_protocol::share::ShareProtocol::P9,
            }],
            disks: vec![lcow_protocol::vm::DiskSpec {
                path: launch.clone(),
                read_only: true,
            }],
            log: None,
            log_filter: Some("info".into()),
        };
        std::fs::write(&launch, serde_json::to_vec(&l).unwrap()).unwrap();

        let plan = plan_from_launch(&launch).unwrap();

        assert_eq!(plan.config.memory, 512 << 20);
        assert_eq!(plan.config.vcpus, 2);
        assert_eq!(plan.config.console, Console::File(dir.path().join("c.log")));
        assert_eq!(plan.config.shares[0].tag, "lcow");
        assert!(plan.config.shares[0].read_only);
        assert_eq!(
            plan.config.disks,
            [DiskConfig {
                path: launch.clone(),
                read_only: true
            }]
        );
        assert_eq!(plan.log_filter.as_deref(), Some("info"));
    }

    #[test]
    fn test_launch_file_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let launch = dir.path().join("launch.json");
        for (text, words) in [
            (r#"{"kernel":"/k","memory_mib":256,"vcpus":0}"#, "vcpus = 0"),
            (
                r#"{"kernel":"/k","memory_mib":8,"vcpus":1}"#,
                "memory_mib = 8",
            ),
            (
                r#"{"kernel":"/k","memory_mib":256,"vcpus":1,"x":1}"#,
                "unknown field",
            ),
            (
                r#"{"kernel":"/k","memory_mib":256,"vcpus":1,"shares":[{"tag":"t","path":"/nonexistent/d"}]}"#,
                "/nonexistent/d",
            ),
            (
                r#"{"kernel":"/k","memory_mib":256,"vcpus":1,"disks":[{"path":"/nonexistent/l.vhd","read_only":true}]}"#,
                "cannot use disk image /nonexistent/l.vhd",
            ),
        ] {
            std::fs::write(&launch, text).unwrap();
            let e = format!("{:#}", plan_from_launch(&launch).unwrap_err());
            assert!(e.contains(words), "{words:?} not in {e}");
        }
        let e = format!(
            "{:#}",
            plan_from_launch(&dir.path().join("none")).unwrap_err()
        );
        assert!(e.contains("cannot read the launch file"), "{e}");
    }

    #[test]
    fn test_cli_launch_conflicts_with_kernel() {
        let err =
            Cli::try_parse_from(["lcow-vmm", "run", "--launch", "l", "--kernel", "k"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(Cli::try_parse_from(["lcow-vmm", "run", "--launch", "l"]).is_ok());
    }
}
