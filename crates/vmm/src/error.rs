//! [`VmmError`]: what building or running a VM can fail with. Its own module, so the files
//! that build the VM ([`crate::vmm`], [`crate::virtio`]) both use it without importing each
//! other.

use std::io;
use std::path::PathBuf;

use lcow_devices::virtio::fs::FsError;
use lcow_devices::virtio::mmio::MmioError;
use lcow_devices::virtio::p9::P9Error;
use lcow_devices::virtio_mmio::SlotError;
use lcow_devices::BusError;

use crate::boot::BootError;
use crate::cmdline::CmdlineError;
use crate::memory::MemoryError;
use crate::mptable::MptableError;
use crate::vcpu_error::VcpuError;

/// Errors of building or running a VM.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The vCPU count is out of range.
    #[error("invalid vcpu count {count}: must be between 1 and {max}")]
    VcpuCount {
        /// The count asked for.
        count: u32,
        /// The most allowed.
        max: u32,
    },
    /// Opening the hypervisor failed.
    #[error("failed to open the hypervisor")]
    OpenHypervisor(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Setting up guest memory failed.
    #[error("failed to set up guest memory")]
    SetUpMemory(#[source] MemoryError),
    /// Creating the VM failed.
    #[error("failed to create the vm")]
    CreateVm(#[source] lcow_hypervisor::Error),
    /// Creating the in-kernel irqchip or PIT failed.
    #[error("failed to create the in-kernel interrupt controller and timer")]
    CreateIrqChip(#[source] lcow_hypervisor::Error),
    /// Loading the kernel or initramfs, or writing the boot structures, failed.
    #[error("failed to prepare the guest kernel for boot")]
    PrepareBoot(#[source] BootError),
    /// The kernel command line is invalid.
    #[error("failed to build the kernel command line")]
    BuildCmdline(#[source] CmdlineError),
    /// Writing the MP table failed.
    #[error("failed to describe the vcpus to the guest")]
    WriteMptable(#[source] MptableError),
    /// The console file cannot be created.
    #[error("cannot create the console file {}", path.display())]
    OpenConsole {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Connecting a device interrupt to the irqchip failed.
    #[error("failed to connect irq {irq} to the interrupt controller")]
    RegisterIrq {
        /// The IRQ line.
        irq: u32,
        /// The cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
    /// Placing a device on a bus failed.
    #[error("failed to add a device to the bus")]
    AddDevice(#[source] BusError),
    /// No virtio-mmio slot is left for a device.
    #[error("failed to place a virtio device")]
    AllocateSlot(#[source] SlotError),
    /// Creating the vsock device (its socket, its event loop) failed.
    #[error("failed to create the vsock device")]
    CreateVsock(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// This host cannot do what the VM asks for (the message says what and why).
    #[error("{0}")]
    Unsupported(&'static str),
    /// Opening a share's directory for its file server failed.
    #[error("cannot serve share '{tag}'")]
    OpenShare {
        /// The share's tag.
        tag: String,
        /// The cause.
        #[source]
        source: lcow_fs::backend::Error,
    },
    /// Opening a disk image failed (or its headers do not add up).
    #[error("cannot serve disk image {path}")]
    OpenDisk {
        /// The image.
        path: String,
        /// The cause.
        #[source]
        source: lcow_disk::DiskError,
    },
    /// Creating a disk's virtio-blk device failed.
    #[error("failed to create the virtio-blk device of disk image {path}")]
    CreateBlock {
        /// The image.
        path: String,
        /// The cause.
        #[source]
        source: lcow_devices::virtio::block::BlockError,
    },
    /// Creating a share's virtio-9p device failed.
    #[error("failed to create the virtio-9p device of share '{tag}'")]
    CreateP9 {
        /// The share's tag.
        tag: String,
        /// The cause.
        #[source]
        source: P9Error,
    },
    /// Creating a share's virtio-fs device failed.
    #[error("failed to create the virtio-fs device of share '{tag}'")]
    CreateVirtioFs {
        /// The share's tag.
        tag: String,
        /// The cause.
        #[source]
        source: FsError,
    },
    /// Creating a device's virtio-mmio transport failed.
    #[error("failed to create the virtio-mmio transport of the {device} device")]
    CreateTransport {
        /// The device.
        device: &'static str,
        /// The cause.
        #[source]
        source: MmioError,
    },
    /// Reading what the host supports failed.
    #[error("failed to read the host's supported {what}")]
    HostSupport {
        /// "cpuid" or "msrs".
        what: &'static str,
        /// The cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
    /// Creating a vCPU failed.
    #[error("failed to create vcpu {id}")]
    CreateVcpu {
        /// The vCPU id.
        id: u32,
        /// The cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
    /// Configuring a vCPU failed.
    #[error("failed to configure a vcpu")]
    ConfigureVcpu(#[source] VcpuError),
    /// Starting a thread failed.
    #[error("failed to start the {name} thread")]
    SpawnThread {
        /// The thread.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The VM stopped on an error.
    #[error("the vm stopped on an error")]
    Guest(#[source] VcpuError),
}
