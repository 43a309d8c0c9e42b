//! The error type of the trait operations, shared by every backend.

use std::io;

/// A failed hypervisor operation. Each variant names the operation; the backend's cause (an
/// errno on KVM, an HRESULT on WHP) is kept as an [`io::Error`] source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating the virtual machine failed.
    #[error("failed to create the vm")]
    CreateVm(#[source] io::Error),
    /// Creating a vCPU failed.
    #[error("failed to create vcpu {id}")]
    CreateVcpu {
        /// The vCPU id.
        id: u32,
        /// The backend's cause.
        #[source]
        source: io::Error,
    },
    /// Mapping or unmapping a memory slot failed.
    #[error("failed to set memory slot {slot}")]
    SetUserMemoryRegion {
        /// The slot index.
        slot: u32,
        /// The backend's cause.
        #[source]
        source: io::Error,
    },
    /// A new memory region overlaps a mapped one.
    #[error("memory region at {guest_address:#x} overlaps memory slot {slot}")]
    OverlappingMemoryRegion {
        /// Guest physical address of the rejected region.
        guest_address: u64,
        /// The slot it overlaps.
        slot: u32,
    },
    /// A memory region is empty or its end overflows.
    #[error("invalid memory region at {guest_address:#x} of {size:#x} bytes")]
    InvalidMemoryRegion {
        /// Guest physical address of the rejected region.
        guest_address: u64,
        /// Its size.
        size: u64,
    },
    /// Every memory slot is in use.
    #[error("no free memory slot (limit {limit})")]
    NoFreeMemorySlot {
        /// The number of slots the backend offers.
        limit: usize,
    },
    /// Removing a slot that is not mapped.
    #[error("memory slot {slot} is not mapped")]
    UnknownMemorySlot {
        /// The slot index.
        slot: u32,
    },
    /// Creating the in-kernel interrupt controller failed.
    #[error("failed to create the irq chip")]
    CreateIrqChip(#[source] io::Error),
    /// Creating the in-kernel PIT failed.
    #[error("failed to create the pit")]
    CreatePit(#[source] io::Error),
    /// Setting an IRQ line failed.
    #[error("failed to set irq line {irq}")]
    SetIrqLine {
        /// The IRQ line.
        irq: u32,
        /// The backend's cause.
        #[source]
        source: io::Error,
    },
    /// Creating an event object failed.
    #[error("failed to create an event")]
    CreateEvent(#[source] io::Error),
    /// Registering an irq event (irqfd, trigger) failed.
    #[error("failed to register an irq event for irq {irq}")]
    RegisterIrqEvent {
        /// The IRQ line.
        irq: u32,
        /// The backend's cause.
        #[source]
        source: io::Error,
    },
    /// Unregistering an irq event failed.
    #[error("failed to unregister the irq event of irq {irq}")]
    UnregisterIrqEvent {
        /// The IRQ line.
        irq: u32,
        /// The backend's cause.
        #[source]
        source: io::Error,
    },
    /// Registering an io event (ioeventfd, doorbell) failed.
    #[error("failed to register an io event")]
    RegisterIoEvent(#[source] io::Error),
    /// Unregistering an io event failed.
    #[error("failed to unregister an io event")]
    UnregisterIoEvent(#[source] io::Error),
    /// The host's hypervisor cannot be used (missing, turned off or too old); the message says
    /// what to do.
    #[error("{0}")]
    HypervisorUnavailable(String),
    /// The backend or host lacks an optional feature.
    #[error("{0} is not supported by this hypervisor")]
    Unsupported(&'static str),
    /// Running the vCPU failed.
    #[error("failed to run the vcpu")]
    Run(#[source] io::Error),
    /// [`crate::Vcpu::handle_io`] was called without a pending port I/O exit.
    #[error("no port i/o exit is pending")]
    NoPendingIo,
    /// [`crate::Vcpu::handle_mmio`] was called without a pending MMIO exit.
    #[error("no mmio exit is pending")]
    NoPendingMmio,
    /// The backend reported an I/O exit whose data does not fit the shared run area.
    #[error("malformed i/o exit (offset {offset:#x}, {len} bytes)")]
    MalformedIoExit {
        /// Offset of the data in the run area.
        offset: usize,
        /// Length of the data.
        len: usize,
    },
    /// Reading the general registers failed.
    #[error("failed to get the general registers")]
    GetRegs(#[source] io::Error),
    /// Writing the general registers failed.
    #[error("failed to set the general registers")]
    SetRegs(#[source] io::Error),
    /// Reading the special registers failed.
    #[error("failed to get the special registers")]
    GetSregs(#[source] io::Error),
    /// Writing the special registers failed.
    #[error("failed to set the special registers")]
    SetSregs(#[source] io::Error),
    /// Reading the multiprocessing state failed.
    #[error("failed to get the mp state")]
    GetMpState(#[source] io::Error),
    /// Reading the FPU state failed.
    #[error("failed to get the fpu state")]
    GetFpu(#[source] io::Error),
    /// Writing the FPU state failed.
    #[error("failed to set the fpu state")]
    SetFpu(#[source] io::Error),
    /// Reading the local APIC state failed.
    #[error("failed to get the local apic state")]
    GetLapic(#[source] io::Error),
    /// Writing the local APIC state failed.
    #[error("failed to set the local apic state")]
    SetLapic(#[source] io::Error),
    /// Reading MSRs failed.
    #[error("failed to get msrs")]
    GetMsrs(#[source] io::Error),
    /// The vCPU could not read one MSR.
    #[error("msr {index:#x} is not readable")]
    MsrNotReadable {
        /// The MSR.
        index: u32,
    },
    /// Writing MSRs failed.
    #[error("failed to set msrs")]
    SetMsrs(#[source] io::Error),
    /// The vCPU refused one MSR; the ones before it in the list were applied.
    #[error("msr {index:#x} was not accepted ({applied} before it were applied)")]
    MsrNotAccepted {
        /// The refused MSR.
        index: u32,
        /// How many entries before it were applied.
        applied: usize,
    },
    /// Reading the list of MSRs the host supports failed.
    #[error("failed to get the msr index list")]
    GetMsrIndexList(#[source] io::Error),
    /// Reading the CPUID entries the host supports failed.
    #[error("failed to get the supported cpuid")]
    GetSupportedCpuid(#[source] io::Error),
    /// Setting the vCPU's CPUID failed.
    #[error("failed to set cpuid")]
    SetCpuid(#[source] io::Error),
    /// A list handed to the backend has more entries than the backend accepts.
    #[error("too many {what} entries ({count})")]
    TooManyEntries {
        /// What the entries are.
        what: &'static str,
        /// How many there were.
        count: usize,
    },
}

/// A result of a hypervisor operation.
pub type Result<T> = std::result::Result<T, Error>;
