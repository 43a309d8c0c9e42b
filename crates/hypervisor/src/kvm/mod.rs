//! The KVM backend (Linux), on `kvm-ioctls`.
//!
//! [`KvmHypervisor`] opens `/dev/kvm`; [`KvmVm`] and [`KvmVcpu`] implement the crate's traits.
//! kvm-bindings types stay inside this module: conversions to and from the crate's plain register
//! structs are in `regs.rs`. [`kvm_kind`] says whether `/dev/kvm` is hardware KVM or KVM-PVM.
//!
//! # Signals
//!
//! [`KvmHypervisor::new`] installs a handler for the real-time signal
//! `SIGRTMIN() + `[`KICK_SIGNAL_OFFSET`], which [`crate::VcpuKick`] uses to pull a vCPU thread out
//! of `KVM_RUN`. The VMM must not use that signal for anything else, nor block it on vCPU threads.
//!
//! # Guest physical layout
//!
//! On x86 the VM reserves [`TSS_ADDRESS`]`- 0x1000 .. `[`TSS_ADDRESS`]` + 0x3000` (identity map
//! page and TSS that Intel CPUs need for real mode); keep RAM and MMIO out of that range.

mod kick;
mod kind;
mod regs;
mod vcpu;
mod vm;

use std::io;
use std::sync::OnceLock;

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Cap, Kvm};

pub use kick::KICK_SIGNAL_OFFSET;
pub use kind::{kvm_kind, KvmKind, KvmProbe, Vendor};
pub use vcpu::KvmVcpu;
pub use vm::KvmVm;

use crate::x86_64::CpuId;
use crate::{Capability, Hypervisor};

/// Guest physical address of the three-page TSS KVM needs on Intel hosts.
pub const TSS_ADDRESS: u64 = 0xfffb_d000;

/// The KVM API version this backend speaks (`KVM_GET_API_VERSION`).
const KVM_API_VERSION: i32 = 12;

/// Errors of setting up the KVM backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening `/dev/kvm` failed.
    #[error("failed to open /dev/kvm")]
    OpenKvm(#[source] io::Error),
    /// `/dev/kvm` speaks another API version.
    #[error("kvm api version {0} is not the supported version 12")]
    ApiVersion(i32),
    /// Installing the vCPU kick signal handler failed.
    #[error("failed to install the vcpu kick signal handler")]
    InstallKickHandler(#[source] io::Error),
}

/// The KVM hypervisor: an open `/dev/kvm`.
#[derive(Debug)]
pub struct KvmHypervisor {
    kvm: Kvm,
}

impl KvmHypervisor {
    /// Opens `/dev/kvm`, checks its API version and installs the kick signal handler.
    pub fn new() -> Result<Self, Error> {
        let kvm = Kvm::new().map_err(|e| Error::OpenKvm(e.into()))?;
        let version = kvm.get_api_version();
        if version != KVM_API_VERSION {
            return Err(Error::ApiVersion(version));
        }
        static HANDLER: OnceLock<Result<(), i32>> = OnceLock::new();
        HANDLER
            .get_or_init(|| kick::install_signal_handler().map_err(|e| e.errno()))
            .map_err(|errno| Error::InstallKickHandler(io::Error::from_raw_os_error(errno)))?;
        Ok(Self { kvm })
    }

    /// The MSRs the host can read as feature MSRs on `/dev/kvm` itself
    /// (`KVM_GET_MSR_FEATURE_INDEX_LIST`), for example [`crate::x86_64::MSR_IA32_ARCH_CAPABILITIES`].
    pub fn feature_msrs(&self) -> crate::Result<Vec<u32>> {
        self.kvm
            .get_msr_feature_index_list()
            .map(|l| l.as_slice().to_vec())
            .map_err(|e| crate::Error::GetMsrIndexList(e.into()))
    }
}

/// The KVM capability behind a crate capability.
pub(crate) fn kvm_cap(cap: Capability) -> Cap {
    match cap {
        Capability::ReadOnlyMemory => Cap::ReadonlyMem,
        Capability::IrqChip => Cap::Irqchip,
        Capability::Pit => Cap::Pit2,
        Capability::Irqfd => Cap::Irqfd,
        Capability::Ioeventfd => Cap::Ioeventfd,
        Capability::TscDeadlineTimer => Cap::TscDeadlineTimer,
    }
}

impl Hypervisor for KvmHypervisor {
    type Vm = KvmVm;

    fn create_vm(&self) -> crate::Result<KvmVm> {
        let fd = self
            .kvm
            .create_vm()
            .map_err(|e| crate::Error::CreateVm(e.into()))?;
        KvmVm::new(fd, self.kvm.get_nr_memslots())
    }

    fn check_capability(&self, cap: Capability) -> bool {
        self.kvm.check_extension(kvm_cap(cap))
    }

    fn supported_cpuid(&self) -> crate::Result<CpuId> {
        let cpuid = self
            .kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| crate::Error::GetSupportedCpuid(e.into()))?;
        Ok(regs::cpuid_from_kvm(&cpuid))
    }

    fn supported_msrs(&self) -> crate::Result<Vec<u32>> {
        self.kvm
            .get_msr_index_list()
            .map(|l| l.as_slice().to_vec())
            .map_err(|e| crate::Error::GetMsrIndexList(e.into()))
    }
}
