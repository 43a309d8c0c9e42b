//! The contract between whoever launches a VM (the shim, a test) and `lcow-vmm`: what the VM is
//! made of ([`VmLaunch`], given to `lcow-vmm run --launch FILE` as JSON) and how it ended
//! ([`VmExit`], the VMM's exit status). docs/architecture.md, "Shim and VMM".

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::share::ShareProtocol;

/// lcow-vmm's exit status when the guest powered off (or halted every vCPU for good).
pub const EXIT_POWER_OFF: u8 = 0;
/// lcow-vmm's exit status when the VMM failed (its stderr has the cause chain).
pub const EXIT_VMM_ERROR: u8 = 1;
/// lcow-vmm's exit status for a usage error (bad flags or launch file).
pub const EXIT_USAGE: u8 = 2;
/// lcow-vmm's exit status when the guest kernel panicked.
pub const EXIT_GUEST_PANIC: u8 = 3;
/// lcow-vmm's exit status when the guest reset itself (reboot, triple fault, i8042 reset).
pub const EXIT_RESET: u8 = 4;

/// How a VM ended, read from lcow-vmm's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmExit {
    /// The guest powered off: the normal end.
    PowerOff,
    /// The guest reset itself.
    Reset,
    /// The guest kernel panicked.
    GuestPanic,
    /// The VMM failed.
    VmmError,
    /// The VMM refused its arguments.
    Usage,
    /// The VMM was killed by this signal.
    Signal(i32),
    /// An exit status lcow-vmm does not use.
    Other(i32),
}

impl VmExit {
    /// The VM's end from a process's exit code (or, when it has none, the signal that ended
    /// it).
    pub fn from_status(code: Option<i32>, signal: Option<i32>) -> Self {
        match (code, signal) {
            (Some(c), _) => match u8::try_from(c) {
                Ok(EXIT_POWER_OFF) => VmExit::PowerOff,
                Ok(EXIT_VMM_ERROR) => VmExit::VmmError,
                Ok(EXIT_USAGE) => VmExit::Usage,
                Ok(EXIT_GUEST_PANIC) => VmExit::GuestPanic,
                Ok(EXIT_RESET) => VmExit::Reset,
                _ => VmExit::Other(c),
            },
            (None, Some(s)) => VmExit::Signal(s),
            (None, None) => VmExit::Other(-1),
        }
    }

    /// The exit status lcow-vmm uses for this end (none for a signal or a foreign status).
    pub fn code(self) -> Option<u8> {
        match self {
            VmExit::PowerOff => Some(EXIT_POWER_OFF),
            VmExit::VmmError => Some(EXIT_VMM_ERROR),
            VmExit::Usage => Some(EXIT_USAGE),
            VmExit::GuestPanic => Some(EXIT_GUEST_PANIC),
            VmExit::Reset => Some(EXIT_RESET),
            VmExit::Signal(_) | VmExit::Other(_) => None,
        }
    }

    /// Whether the guest ended itself abnormally (reset or panic), as opposed to a clean
    /// power-off or a failure of the host side.
    pub fn is_guest_fault(self) -> bool {
        matches!(self, VmExit::Reset | VmExit::GuestPanic)
    }
}

impl fmt::Display for VmExit {
    /// One word, the same that `lcow-vmm` prints after `vm ended:` and the shim writes in a
    /// VM's end record: `power-off`, `reset`, `guest-panic`, `vmm-error`, `usage-error`,
    /// `signal-N`, `status-N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmExit::PowerOff => f.write_str("power-off"),
            VmExit::Reset => f.write_str("reset"),
            VmExit::GuestPanic => f.write_str("guest-panic"),
            VmExit::VmmError => f.write_str("vmm-error"),
            VmExit::Usage => f.write_str("usage-error"),
            VmExit::Signal(s) => write!(f, "signal-{s}"),
            VmExit::Other(c) => write!(f, "status-{c}"),
        }
    }
}

/// Where the guest's serial console goes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleSpec {
    /// Discarded (the UART exists).
    #[default]
    Off,
    /// The VMM's standard output.
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
}

/// How a share's files are stored on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareBackend {
    /// The host's own owners and modes (the server runs as root on a Linux host).
    #[default]
    Passthrough,
    /// Owners, modes and device numbers kept as metadata; no privileges needed.
    Mapped,
}

impl ShareBackend {
    /// The name command lines use.
    pub fn name(self) -> &'static str {
        match self {
            ShareBackend::Passthrough => "passthrough",
            ShareBackend::Mapped => "mapped",
        }
    }
}

/// One host directory served to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareSpec {
    /// The tag the guest mounts it by.
    pub tag: String,
    /// The host directory.
    pub path: PathBuf,
    /// Every change is refused with EROFS.
    #[serde(default)]
    pub read_only: bool,
    /// How files are stored on the host.
    #[serde(default)]
    pub backend: ShareBackend,
    /// The protocol (and device) that serves it.
    #[serde(default)]
    pub protocol: ShareProtocol,
}

/// One disk image given to the guest as a virtio-blk device (raw, VHD or VHDX, found by its
/// contents): a container layer (read-only) or a scratch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// The image file.
    pub path: PathBuf,
    /// The guest cannot write it.
    #[serde(default)]
    pub read_only: bool,
}

/// What `lcow-vmm probe --json` prints: whether this host's hypervisor can boot a guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProbe {
    /// The hypervisor looked at: `kvm` or `whp`.
    pub hypervisor: String,
    /// Whether a Linux guest can boot on it.
    pub ready: bool,
    /// What was found, or what to do, in one sentence.
    pub detail: String,
}

/// Everything `lcow-vmm` needs to boot one VM: the JSON of `lcow-vmm run --launch FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmLaunch {
    /// The guest kernel: a vmlinux with a PVH note, or a bzImage.
    pub kernel: PathBuf,
    /// The initramfs.
    #[serde(default)]
    pub initramfs: Option<PathBuf>,
    /// The kernel command line (the VMM adds its device declarations).
    #[serde(default)]
    pub cmdline: String,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The serial console.
    #[serde(default)]
    pub console: ConsoleSpec,
    /// The hybrid-vsock socket; without it the VM has no vsock device.
    #[serde(default)]
    pub vsock: Option<PathBuf>,
    /// The file shares, one device each, in this order.
    #[serde(default)]
    pub shares: Vec<ShareSpec>,
    /// The disks, one virtio-blk device each after the shares, in this order (the guest sees
    /// them as /dev/vda, /dev/vdb, ...).
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    /// Where the VMM writes its log (default: its stderr).
    #[serde(default)]
    pub log: Option<PathBuf>,
    /// The log filter (a `RUST_LOG` directive; default `warn`).
    #[serde(default)]
    pub log_filter: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_vm_exit_codes_round_trip_and_are_distinct() {
        let all = [
            VmExit::PowerOff,
            VmExit::Reset,
            VmExit::GuestPanic,
            VmExit::VmmError,
            VmExit::Usage,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code().unwrap()).collect();
        for e in all {
            assert_eq!(VmExit::from_status(e.code().map(i32::from), None), e);
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(VmExit::PowerOff.code(), Some(0));
        assert_eq!(VmExit::from_status(None, Some(9)), VmExit::Signal(9));
        assert_eq!(VmExit::from_status(Some(77), None), VmExit::Other(77));
        assert_eq!(VmExit::Signal(9).to_string(), "signal-9");
        assert!(VmExit::Reset.is_guest_fault() && !VmExit::PowerOff.is_guest_fault());
    }

    #[test]
    fn test_launch_json_round_trip_with_defaults() {
        let json = r#"{"kernel":"/k","memory_mib":256,"vcpus":2,
            "shares":[{"tag":"lcow","path":"/s","protocol":"9p"}]}"#;
        let l: VmLaunch = serde_json::from_str(json).unwrap();
        assert_eq!(l.console, ConsoleSpec::Off);
        assert_eq!(l.shares[0].protocol, ShareProtocol::P9);
        assert_eq!(l.shares[0].backend, ShareBackend::Passthrough);
        assert!(!l.shares[0].read_only && l.vsock.is_none() && l.initramfs.is_none());
        let again: VmLaunch = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(again, l);
        let file = VmLaunch {
            console: ConsoleSpec::File("/c.log".into()),
            ..l
        };
        assert!(serde_json::to_string(&file)
            .unwrap()
            .contains(r#""console":{"file":"/c.log"}"#));
    }

    #[test]
    fn test_launch_unknown_field_refused() {
        let e = serde_json::from_str::<VmLaunch>(
            r#"{"kernel":"/k","memory_mib":1,"vcpus":1,"memroy":2}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("memroy"), "{e}");
    }
}
