//! `lcow-vmm`: boot a guest kernel in a micro-VM on KVM and run it until it powers off or
//! reboots. See `lcow-vmm run --help`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use lcow_hypervisor::kvm::{kvm_kind, KvmKind};
use lcow_vmm::config::{check_shares, ShareConfig, MAX_VCPUS};
use lcow_vmm::{parse_size, Console, ExitReason, VmConfig};

/// The escape hatch that lets `run` try a KVM-PVM host anyway.
const ALLOW_PVM_ENV: &str = "LCOW_ALLOW_PVM";

#[derive(Debug, Parser)]
#[command(
    name = "lcow-vmm",
    version,
    about = "The lcow micro-VM monitor: boots a Linux guest kernel on KVM",
    long_about = "The lcow micro-VM monitor: boots a Linux guest kernel on KVM with an \
                  initramfs, a serial console, an i8042 reset line, optionally a \
                  virtio-vsock device behind a hybrid-vsock unix socket and host directories \
                  shared over virtio-9p or virtio-fs (--share), and runs it until the guest \
                  powers off or reboots.\n\n\
                  Exit status: 0 when the guest powered off or rebooted (stderr says which), \
                  1 on a VMM or guest error (stderr has the whole cause chain), 2 on a usage \
                  error, 3 when the guest kernel panicked (seen on its serial console, which \
                  needs console=ttyS0 on the command line; the default has it). Logs go to stderr; RUST_LOG sets the filter (default: warn)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot a kernel and run the VM until the guest powers off or reboots.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Guest kernel: an uncompressed vmlinux (ELF) with a Xen PVH entry note, booted through
    /// PVH (fastest), or a bzImage, booted through the 64-bit Linux boot protocol.
    #[arg(long, value_name = "PATH")]
    kernel: PathBuf,

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
    /// "proto=9p" (default: virtio-9p, 9P2000.L, tags up to 255 bytes; in the guest:
    /// mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576 TAG DIR) or
    /// "proto=virtiofs" (virtio-fs, FUSE, tags up to 36 bytes; in the guest:
    /// mount -t virtiofs TAG DIR). PATH must be an existing directory and cannot contain a
    /// comma; tags must be unique.
    #[arg(
        long = "share",
        value_name = "TAG=PATH[,ro][,backend=passthrough|mapped][,proto=9p|virtiofs]",
        value_parser = parse_share
    )]
    shares: Vec<ShareConfig>,
}

fn parse_share(text: &str) -> Result<ShareConfig, String> {
    text.parse::<ShareConfig>().map_err(|e| {
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
    let file =
        File::open(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("the {what} {} is not a regular file", path.display());
    }
    Ok(())
}

/// Refuses hosts whose /dev/kvm cannot boot a Linux guest, before anything is loaded.
fn check_kvm() -> anyhow::Result<()> {
    match kvm_kind() {
        KvmKind::Hardware(_) => Ok(()),
        KvmKind::Missing => bail!(
            "no /dev/kvm: load kvm_intel or kvm_amd (or give this user read and write access \
             to /dev/kvm)"
        ),
        KvmKind::Pvm if std::env::var(ALLOW_PVM_ENV).is_ok_and(|v| v == "1") => {
            tracing::warn!(
                "/dev/kvm is KVM-PVM: a normal Linux kernel will not boot here \
                 ({ALLOW_PVM_ENV}=1 given, trying anyway)"
            );
            Ok(())
        }
        KvmKind::Pvm => bail!(
            "this host's /dev/kvm is KVM-PVM, a software hypervisor on which a normal Linux \
             kernel cannot boot; run under `tests/rig/run -- lcow-vmm run ...` or on a host \
             with hardware virtualization (set {ALLOW_PVM_ENV}=1 to try anyway)"
        ),
        KvmKind::Unknown => {
            tracing::warn!("{}; trying anyway", KvmKind::Unknown.explain());
            Ok(())
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitReason> {
    check_readable("kernel", &args.kernel)?;
    if let Some(initrd) = &args.initrd {
        check_readable("initramfs", initrd)?;
    }
    check_kvm()?;
    let config = VmConfig {
        kernel: args.kernel,
        initrd: args.initrd,
        cmdline: args.cmdline,
        memory: args.memory,
        vcpus: args.vcpus,
        console: args.console,
        vsock: args.vsock,
        shares: args.shares,
    };
    lcow_vmm::run(&config).context("the vm failed")
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: a log file (the shim's vmm.log) gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Parses the command line; a usage error (including two shares with one tag) exits with 2.
fn parse_cli() -> Cli {
    let cli = Cli::parse();
    let Command::Run(args) = &cli.command;
    if let Err(e) = check_shares(&args.shares) {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, e)
            .exit();
    }
    cli
}

fn main() -> ExitCode {
    let cli = parse_cli();
    init_logging();
    let Command::Run(args) = cli.command;
    match run(args) {
        Ok(reason) => {
            let what = match reason {
                ExitReason::PowerOff => "the guest powered off",
                ExitReason::Reset => "the guest rebooted",
                ExitReason::GuestPanic => "the guest kernel panicked",
            };
            eprintln!("lcow-vmm: vm ended: {reason} ({what})");
            if reason == ExitReason::GuestPanic {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("lcow-vmm: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
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
            text.contains("cannot use share path /nonexistent/lcow-dir: No such file"),
            "{text}"
        );
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
        assert!(chain.contains("No such file"), "{chain}");
    }

    #[test]
    fn test_check_readable_directory_rejected() {
        let err = check_readable("kernel", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
