//! What kind of KVM `/dev/kvm` is: hardware (VMX/SVM) or KVM-PVM, a software hypervisor on which
//! a normal Linux kernel cannot boot (docs/architecture.md). The same rules as `tests/rig/kvm-kind`:
//! keep the two in step.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// A CPU vendor's hardware virtualization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Intel VMX (`kvm_intel`).
    Intel,
    /// AMD SVM (`kvm_amd`).
    Amd,
}

/// What `/dev/kvm` is on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmKind {
    /// KVM on hardware virtualization: guests boot normally.
    Hardware(Vendor),
    /// KVM-PVM: small payloads run, but a normal kernel's ring-0 code is emulated and does not
    /// boot; it needs a PVM guest kernel.
    Pvm,
    /// No `/dev/kvm`, or this user cannot read and write it.
    Missing,
    /// A `/dev/kvm` of a kind these rules do not recognise.
    Unknown,
}

impl KvmKind {
    /// Whether a normal (non-PVM) Linux guest kernel can boot here.
    pub fn boots_linux(self) -> bool {
        matches!(self, KvmKind::Hardware(_))
    }

    /// One sentence for the user, suitable for refusing to boot.
    pub fn explain(self) -> &'static str {
        match self {
            KvmKind::Hardware(_) => "/dev/kvm uses hardware virtualization",
            KvmKind::Pvm => {
                "/dev/kvm is KVM-PVM, a software hypervisor: a normal kernel cannot boot on it \
                 (run inside the nested-SVM test rig, or on a host with hardware KVM)"
            }
            KvmKind::Missing => "/dev/kvm is missing or not readable and writable by this user",
            KvmKind::Unknown => {
                "/dev/kvm is of an unrecognised kind (no kvm_intel/kvm_amd module \
                                 with vmx/svm, and no kvm_pvm)"
            }
        }
    }
}

impl fmt::Display for KvmKind {
    /// The words `tests/rig/kvm-kind` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvmKind::Hardware(Vendor::Intel) => "hardware-vmx",
            KvmKind::Hardware(Vendor::Amd) => "hardware-svm",
            KvmKind::Pvm => "pvm",
            KvmKind::Missing => "none",
            KvmKind::Unknown => "unknown",
        })
    }
}

/// The host facts [`kvm_kind`] decides on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvmProbe {
    /// `/dev/kvm` is a character device this user can read and write.
    pub dev_kvm_usable: bool,
    /// `/sys/module/kvm_pvm` exists.
    pub kvm_pvm: bool,
    /// `/sys/module/kvm_intel` exists.
    pub kvm_intel: bool,
    /// `/sys/module/kvm_amd` exists.
    pub kvm_amd: bool,
    /// `/proc/cpuinfo` has the word `vmx`.
    pub vmx: bool,
    /// `/proc/cpuinfo` has the word `svm`.
    pub svm: bool,
}

impl KvmProbe {
    /// Reads the facts from this host (`/dev/kvm`, `/sys/module`, `/proc/cpuinfo`). It does not
    /// open `/dev/kvm`.
    pub fn read_host() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let module = |name: &str| Path::new("/sys/module").join(name).is_dir();
        Self {
            dev_kvm_usable: char_device_read_write(Path::new("/dev/kvm")),
            kvm_pvm: module("kvm_pvm"),
            kvm_intel: module("kvm_intel"),
            kvm_amd: module("kvm_amd"),
            vmx: has_word(&cpuinfo, "vmx"),
            svm: has_word(&cpuinfo, "svm"),
        }
    }

    /// Decides the kind, in the order of `tests/rig/kvm-kind`.
    pub fn classify(&self) -> KvmKind {
        if !self.dev_kvm_usable {
            KvmKind::Missing
        } else if self.kvm_pvm {
            KvmKind::Pvm
        } else if self.kvm_intel && self.vmx {
            KvmKind::Hardware(Vendor::Intel)
        } else if self.kvm_amd && self.svm {
            KvmKind::Hardware(Vendor::Amd)
        } else {
            KvmKind::Unknown
        }
    }
}

/// What `/dev/kvm` is on this host (see [`KvmKind`]).
pub fn kvm_kind() -> KvmKind {
    KvmProbe::read_host().classify()
}

/// `[ -c path ] && [ -r path ] && [ -w path ]`.
fn char_device_read_write(path: &Path) -> bool {
    let is_char = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device());
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; access(2) only
    // reads it.
    is_char && unsafe { libc::access(c_path.as_ptr(), libc::R_OK | libc::W_OK) } == 0
}

/// `grep -qw word`: `word` occurs delimited by characters that are not letters, digits or `_`.
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: KvmProbe = KvmProbe {
        dev_kvm_usable: true,
        kvm_pvm: false,
        kvm_intel: false,
        kvm_amd: false,
        vmx: false,
        svm: false,
    };

    #[test]
    fn test_classify_no_device_missing() {
        let probe = KvmProbe {
            dev_kvm_usable: false,
            kvm_pvm: true,
            ..ALL
        };
        assert_eq!(probe.classify(), KvmKind::Missing);
        assert_eq!(probe.classify().to_string(), "none");
    }

    #[test]
    fn test_classify_pvm_module_wins_over_vmx() {
        let probe = KvmProbe {
            kvm_pvm: true,
            kvm_intel: true,
            vmx: true,
            ..ALL
        };
        assert_eq!(probe.classify(), KvmKind::Pvm);
        assert!(!probe.classify().boots_linux());
    }

    #[test]
    fn test_classify_intel_with_vmx_hardware() {
        let probe = KvmProbe {
            kvm_intel: true,
            vmx: true,
            ..ALL
        };
        assert_eq!(probe.classify(), KvmKind::Hardware(Vendor::Intel));
        assert_eq!(probe.classify().to_string(), "hardware-vmx");
    }

    #[test]
    fn test_classify_amd_with_svm_hardware() {
        let probe = KvmProbe {
            kvm_amd: true,
            svm: true,
            ..ALL
        };
        assert_eq!(probe.classify(), KvmKind::Hardware(Vendor::Amd));
        assert!(probe.classify().boots_linux());
    }

    #[test]
    fn test_classify_module_without_cpu_flag_unknown() {
        let probe = KvmProbe {
            kvm_amd: true,
            vmx: true,
            ..ALL
        };
        assert_eq!(probe.classify(), KvmKind::Unknown);
    }

    #[test]
    fn test_has_word_matches_like_grep_w() {
        let cpuinfo = "flags\t\t: fpu vme svm sse4_2\nvmx flags\t: ept\n";
        assert!(has_word(cpuinfo, "svm"));
        assert!(has_word(cpuinfo, "vmx"));
        assert!(!has_word(cpuinfo, "sse4"));
        assert!(!has_word("flags: svmx", "svm"));
    }
}
