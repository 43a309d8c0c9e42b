//! The devices of `lcow-vmm` (docs/architecture.md, `crates/devices`): what the guest kernel talks to
//! besides RAM. The VMM's vCPU threads hand every port I/O and MMIO exit to a [`bus::Bus`], which
//! finds the device that owns the address and calls it with the offset inside its range. This
//! crate holds the legacy PC devices our guest kernel uses — the 8250 UART behind the serial
//! console ([`serial`]) and the i8042 keyboard controller, whose reset line is how a guest
//! reboots ([`i8042`]) — the virtio-mmio slot layout ([`virtio_mmio`]) that virtio devices are
//! placed on and declared to the kernel with `virtio_mmio.device=`, and the virtio devices
//! themselves behind the virtio-mmio transport ([`virtio`]): vsock with its hybrid-vsock muxer
//! ([`virtio::vsock`]), the channel between the shim and the guest agent, and the file-sharing
//! devices virtio-9p ([`virtio::p9`]) and virtio-fs ([`virtio::fs`]), which carry the guest's
//! requests to `lcow_fs`'s servers on a worker pool ([`virtio::request`]).
//!
//! Nothing here knows the hypervisor: interrupts leave a device through an [`IrqTrigger`] (an
//! eventfd the VMM registers as an irqfd), and every access the guest makes is bounds-checked
//! and never panics; bad ones are ignored and logged at `debug`.

#![deny(missing_docs)]

pub mod bus;
pub mod i8042;
mod irq;
pub mod serial;
pub mod virtio;
pub mod virtio_mmio;

pub use bus::{Bus, BusDevice, BusError};
pub use i8042::I8042Device;
pub use irq::IrqTrigger;
pub use serial::SerialDevice;
