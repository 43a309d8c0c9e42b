//! The hypervisor layer of `lcow-vmm` (docs/architecture.md: the "KVM / WHP" arrow between the VMM
//! process and the guest kernel). It defines the traits [`Hypervisor`], [`Vm`] and [`Vcpu`] in the
//! crosvm shape — `Vcpu::run()` returns a [`VcpuExit`], and port I/O or MMIO exits are completed
//! through a callback ([`Vcpu::handle_io`], [`Vcpu::handle_mmio`]) — so the same VMM code drives
//! KVM on Linux hosts and, later, the Windows Hypervisor Platform on Windows hosts. Register state
//! is kept in our own plain structs ([`x86_64`]); backend types never appear in the traits.
//!
//! # Backends
//!
//! - [`kvm`] (`cfg(target_os = "linux")`, x86_64 for now): KVM through `kvm-ioctls`. Its fast
//!   paths (irqfd, ioeventfd) implement the portable [`VmEvents`] extension trait over
//!   `lcow_base::Event`, and
//!   [`kvm::kvm_kind`] tells a hardware KVM from KVM-PVM (see docs/architecture.md, "Test tiers").
//! - `whp` (`cfg(windows)`, x86_64): the Windows Hypervisor Platform. `whp::WhpHypervisor`,
//!   `WhpVm` and `WhpVcpu` implement the three traits; port I/O and MMIO exits go through
//!   WHP's instruction emulator inside `handle_io`/`handle_mmio`, exactly as the callback shape
//!   expects, and the I/O APIC is [`irqchip`]'s. `whp::probe` says why a host cannot run
//!   guests. The generic conformance bodies in `tests/conformance/` run on both backends
//!   (`tests/kvm.rs`, `tests/whp.rs`).
//!
//! # Using it
//!
//! ```no_run
//! # #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use lcow_hypervisor::kvm::KvmHypervisor;
//! use lcow_hypervisor::{Hypervisor, IoOperation, Vcpu, VcpuExit, Vm};
//!
//! let hv = KvmHypervisor::new()?;
//! let vm = hv.create_vm()?;
//! // ... add memory with `unsafe { vm.add_memory_region(..) }`, load code, set registers ...
//! let mut vcpu = vm.create_vcpu(0)?;
//! loop {
//!     match vcpu.run()? {
//!         VcpuExit::Io => vcpu.handle_io(&mut |params| match params.operation {
//!             IoOperation::Write(data) => println!("out {:#x} {data:?}", params.address),
//!             IoOperation::Read(data) => data.fill(0xff),
//!         })?,
//!         VcpuExit::Hlt => break,
//!         other => return Err(format!("unexpected exit {other:?}").into()),
//!     }
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
//! # fn main() {}
//! ```

#![deny(missing_docs)]

mod error;
#[cfg(target_arch = "x86_64")]
pub mod irqchip;
mod vcpu;
mod vm;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;
#[cfg(all(windows, target_arch = "x86_64"))]
pub mod whp;

pub use error::{Error, Result};
pub use vcpu::{IoOperation, IoParams, MpState, SystemEvent, Vcpu, VcpuExit, VcpuKick};
pub use vm::{Datamatch, IoEventAddress, MemSlot, MemoryRegion, Vm, VmEvents};

#[cfg(target_arch = "x86_64")]
use x86_64::CpuId;

/// Optional features a backend or host may lack. Query them with
/// [`Hypervisor::check_capability`] or [`Vm::check_capability`] before using the matching API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Memory regions can be mapped read-only ([`MemoryRegion::read_only`]); guest writes to them
    /// exit as MMIO.
    ReadOnlyMemory,
    /// An in-kernel interrupt controller ([`Vm::create_irq_chip`]).
    IrqChip,
    /// An in-kernel i8254 PIT ([`Vm::create_pit`]).
    Pit,
    /// An event object can raise an IRQ line without a VMM round trip
    /// ([`VmEvents::register_irq_event`]).
    Irqfd,
    /// A guest write to an address can signal an event object without a vCPU exit
    /// ([`VmEvents::register_io_event`]).
    Ioeventfd,
    /// The local APIC timer's TSC-deadline mode works once the CPUID offers it (leaf 1 ECX
    /// bit 24, which the supported CPUID leaves clear).
    TscDeadlineTimer,
}

/// A hypervisor: the entry point of a backend. It creates [`Vm`]s and reports what the host
/// supports.
pub trait Hypervisor: Send + Sync {
    /// The virtual machine type of this backend.
    type Vm: Vm;

    /// Creates a new, empty virtual machine (no memory, no vCPUs).
    fn create_vm(&self) -> Result<Self::Vm>;

    /// Returns whether the host supports `cap`.
    fn check_capability(&self, cap: Capability) -> bool;

    /// Returns the CPUID entries the host can expose to a guest, a starting point for
    /// [`Vcpu::set_cpuid`].
    #[cfg(target_arch = "x86_64")]
    fn supported_cpuid(&self) -> Result<CpuId>;

    /// Returns the indices of the MSRs a VMM may save and restore on a vCPU. Pass it to
    /// [`x86_64::set_supported_msrs`] to skip MSRs the host cannot set.
    #[cfg(target_arch = "x86_64")]
    fn supported_msrs(&self) -> Result<Vec<u32>>;
}
