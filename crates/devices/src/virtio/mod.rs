//! Virtio devices and their transport (docs/architecture.md: virtio-mmio devices declared on the kernel
//! command line, no PCI).
//!
//! A device implements [`VirtioDevice`]: what it is (type, features, queue sizes, config space)
//! and what it does once the driver has set it up ([`VirtioDevice::activate`]). The transport,
//! [`mmio::MmioTransport`], is the [`crate::BusDevice`] the guest's virtio-mmio driver talks to:
//! it negotiates features, collects the queue addresses and hands the ready queues to the device.
//! Devices raise their interrupt through an [`Interrupt`], which keeps the virtio-mmio
//! `InterruptStatus` bits and pulses the slot's IRQ line.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use lcow_base::Event;
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use crate::IrqTrigger;

pub mod block;
pub mod fs;
pub mod mmio;
pub mod p9;
pub mod request;
pub mod vsock;

/// Feature bit: the device follows virtio 1.x (no legacy interface). Every device offers it and
/// the transport refuses drivers that do not accept it.
pub const VIRTIO_F_VERSION_1: u32 = 32;

/// Feature bit: the driver and the device tell each other, through the rings' event fields,
/// when they want to be notified (virtio 1.2 §2.7.10). Offered by the request–reply devices
/// ([`request`]).
pub const VIRTIO_RING_F_EVENT_IDX: u32 = 29;

/// Bits of the device status register (virtio 1.2 §2.1).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for the device.
    pub const DRIVER: u32 = 2;
    /// The driver is set up and the device is live.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 0x80;
}

/// `InterruptStatus` bit: the device used buffers of a queue.
pub const INTERRUPT_USED_RING: u32 = 1;
/// `InterruptStatus` bit: the configuration space changed.
pub const INTERRUPT_CONFIG_CHANGE: u32 = 2;

/// A virtio device's interrupt: the `InterruptStatus` bits the driver reads and acknowledges,
/// and the IRQ line that tells it to look. Shared by the transport and the device's thread.
#[derive(Debug)]
pub struct Interrupt {
    status: AtomicU32,
    irq: IrqTrigger,
}

impl Interrupt {
    /// An interrupt with no bit set that pulses `irq`.
    pub fn new(irq: IrqTrigger) -> Self {
        Self {
            status: AtomicU32::new(0),
            irq,
        }
    }

    /// The IRQ line (its eventfd is what the VMM registers as an irqfd).
    pub fn irq(&self) -> &IrqTrigger {
        &self.irq
    }

    /// Tells the driver that a queue has new used buffers.
    pub fn signal_used_queue(&self) -> io::Result<()> {
        self.signal(INTERRUPT_USED_RING)
    }

    /// Tells the driver that the configuration space changed.
    pub fn signal_config_change(&self) -> io::Result<()> {
        self.signal(INTERRUPT_CONFIG_CHANGE)
    }

    fn signal(&self, bit: u32) -> io::Result<()> {
        self.status.fetch_or(bit, Ordering::SeqCst);
        self.irq.trigger()
    }

    /// The pending `InterruptStatus` bits.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// Clears the bits the driver acknowledged.
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clears every bit (device reset).
    pub fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }
}

/// Serves a configuration space read of `data.len()` bytes at `offset` from `config`; bytes
/// beyond its end read as zero (logged at `debug`).
pub(crate) fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8], device: &'static str) {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(config.len());
    let available = &config[start..];
    let n = available.len().min(data.len());
    data[..n].copy_from_slice(&available[..n]);
    data[n..].fill(0);
    if n < data.len() {
        tracing::debug!(
            device,
            offset,
            size = data.len(),
            "config read beyond the config space"
        );
    }
}

/// Errors of activating a device.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The transport handed over a different number of queues than the device has.
    #[error("expected {expected} queues, got {got}")]
    QueueCount {
        /// The device's queue count.
        expected: usize,
        /// What it was given.
        got: usize,
    },
    /// Waking the device's thread failed.
    #[error("failed to wake the device thread")]
    Wake(#[source] io::Error),
}

/// A virtio device behind a transport (see the module documentation).
///
/// Everything here is called from a vCPU thread with the transport locked; a device that does
/// real work hands the queues to its own thread in [`VirtioDevice::activate`].
pub trait VirtioDevice: Send {
    /// The virtio device type (virtio 1.2 §5: 9 is 9P, 19 vsock, 26 virtio-fs).
    fn device_type(&self) -> u32;

    /// The feature bits the device offers; must include [`VIRTIO_F_VERSION_1`].
    fn features(&self) -> u64;

    /// The largest size of each queue (powers of two); their count is the queue count.
    fn queue_max_sizes(&self) -> &[u16];

    /// One event per queue, signalled when the driver notifies that queue (by the transport, or
    /// by the hypervisor directly when the VMM registers it as an io event).
    fn queue_events(&self) -> &[Event];

    /// The guest reads `data.len()` bytes of the configuration space at `offset`.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// The guest writes `data` at `offset` of the configuration space.
    fn write_config(&mut self, offset: u64, data: &[u8]);

    /// The driver is ready: the device starts using `queues` (one per
    /// [`VirtioDevice::queue_max_sizes`] entry, all ready and valid) in `mem`, raising
    /// `interrupt`. `acked_features` are the features the driver accepted.
    fn activate(
        &mut self,
        mem: GuestMemoryMmap,
        queues: Vec<Queue>,
        interrupt: Arc<Interrupt>,
        acked_features: u64,
    ) -> Result<(), ActivateError>;

    /// The driver reset the device: stop using the queues and forget the session. When this
    /// returns the device no longer touches guest memory.
    fn reset(&mut self);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_interrupt_signal_sets_bits_and_pulses_line() {
        let interrupt = Interrupt::new(IrqTrigger::new().unwrap());

        interrupt.signal_used_queue().unwrap();
        interrupt.signal_config_change().unwrap();

        assert_eq!(
            interrupt.status(),
            INTERRUPT_USED_RING | INTERRUPT_CONFIG_CHANGE
        );
        crate::irq::assert_signals(interrupt.irq().event(), 2);
        interrupt.ack(INTERRUPT_USED_RING);
        assert_eq!(interrupt.status(), INTERRUPT_CONFIG_CHANGE);
    }
}
