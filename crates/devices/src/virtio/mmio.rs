//! The virtio-mmio transport, version 2 ("modern", virtio 1.2 §4.2.2): the register window of
//! one slot ([`crate::virtio_mmio::Slot`]) on the MMIO bus, wrapping a [`VirtioDevice`].
//!
//! The driver's handshake: write 0 to `Status` (reset), set `ACKNOWLEDGE` and `DRIVER`, read
//! `DeviceFeatures` page by page, write `DriverFeatures`, set `FEATURES_OK` and read it back
//! (the transport clears it again when the driver did not accept [`VIRTIO_F_VERSION_1`] or
//! accepted a feature the device does not offer), program each queue (`QueueSel`, `QueueNum`,
//! the three ring addresses, `QueueReady`), and set `DRIVER_OK`, at which point the device is
//! activated with the queues. `QueueNotify` writes signal the queue's eventfd.
//!
//! Control registers take aligned 32-bit accesses only; the configuration space at `0x100`
//! takes 1, 2, 4 or 8 bytes. Anything else is ignored (reads return zeros) and logged at `debug`:
//! the guest can never make the transport panic.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{status, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::bus::BusDevice;
use crate::IrqTrigger;

/// `MagicValue`: "virt" in little endian.
pub const MMIO_MAGIC: u32 = 0x7472_6976;
/// `Version` of the modern transport.
pub const MMIO_VERSION: u32 = 2;
/// `VendorID` we report: "LCOW" in little endian.
pub const VENDOR_ID: u32 = 0x574f_434c;
/// Where the configuration space starts in the register window.
pub const CONFIG_SPACE_OFFSET: u64 = 0x100;

/// Register offsets of the register window.
pub mod reg {
    /// R: [`super::MMIO_MAGIC`].
    pub const MAGIC_VALUE: u64 = 0x000;
    /// R: [`super::MMIO_VERSION`].
    pub const VERSION: u64 = 0x004;
    /// R: the virtio device type.
    pub const DEVICE_ID: u64 = 0x008;
    /// R: [`super::VENDOR_ID`].
    pub const VENDOR_ID: u64 = 0x00c;
    /// R: 32 feature bits of the page selected by `DEVICE_FEATURES_SEL`.
    pub const DEVICE_FEATURES: u64 = 0x010;
    /// W: selects the device feature page.
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    /// W: 32 accepted feature bits of the page selected by `DRIVER_FEATURES_SEL`.
    pub const DRIVER_FEATURES: u64 = 0x020;
    /// W: selects the driver feature page.
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    /// W: selects the queue the queue registers refer to.
    pub const QUEUE_SEL: u64 = 0x030;
    /// R: the selected queue's largest size (0: no such queue).
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    /// W: the selected queue's size.
    pub const QUEUE_NUM: u64 = 0x038;
    /// RW: the selected queue is ready.
    pub const QUEUE_READY: u64 = 0x044;
    /// W: the driver has new buffers in the queue whose index is written.
    pub const QUEUE_NOTIFY: u64 = 0x050;
    /// R: why the device interrupted.
    pub const INTERRUPT_STATUS: u64 = 0x060;
    /// W: the interrupt bits the driver handled.
    pub const INTERRUPT_ACK: u64 = 0x064;
    /// RW: the device status; writing 0 resets the device.
    pub const STATUS: u64 = 0x070;
    /// W: descriptor table address, low 32 bits.
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    /// W: descriptor table address, high 32 bits.
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    /// W: driver (available) ring address, low 32 bits.
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    /// W: driver (available) ring address, high 32 bits.
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    /// W: device (used) ring address, low 32 bits.
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    /// W: device (used) ring address, high 32 bits.
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    /// R: changes whenever the configuration space changes.
    pub const CONFIG_GENERATION: u64 = 0x0fc;
}

/// Errors of building a transport.
#[derive(Debug, thiserror::Error)]
pub enum MmioError {
    /// The device declared a queue size that is not a power of two up to 32768.
    #[error("queue {index} has an invalid maximum size {size}")]
    QueueSize {
        /// The queue.
        index: usize,
        /// Its declared maximum size.
        size: u16,
    },
    /// The device has a different number of queue eventfds than queues.
    #[error("the device has {queues} queues but {events} queue events")]
    QueueEvents {
        /// Queue count.
        queues: usize,
        /// Event count.
        events: usize,
    },
    /// The device does not offer `VIRTIO_F_VERSION_1`.
    #[error("the device does not offer VIRTIO_F_VERSION_1")]
    NotModern,
}

/// A virtio-mmio register window around one device (see the module documentation).
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    mem: GuestMemoryMmap,
    interrupt: Arc<Interrupt>,
    queues: Vec<Queue>,
    device_features_sel: u32,
    driver_features_sel: u32,
    acked_features: u64,
    queue_sel: u32,
    status: u32,
    config_generation: u32,
    activated: bool,
}

impl std::fmt::Debug for MmioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("device_type", &self.device.device_type())
            .field("status", &self.status)
            .field("activated", &self.activated)
            .finish_non_exhaustive()
    }
}

impl MmioTransport {
    /// A transport for `device` working on `mem`, interrupting through `irq`.
    pub fn new(
        mem: GuestMemoryMmap,
        device: Box<dyn VirtioDevice>,
        irq: IrqTrigger,
    ) -> Result<Self, MmioError> {
        if device.features() & (1 << VIRTIO_F_VERSION_1) == 0 {
            return Err(MmioError::NotModern);
        }
        let queues = device
            .queue_max_sizes()
            .iter()
            .enumerate()
            .map(|(index, &size)| {
                <Queue as QueueT>::new(size).map_err(|_| MmioError::QueueSize { index, size })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let events = device.queue_events().len();
        if events != queues.len() {
            return Err(MmioError::QueueEvents {
                queues: queues.len(),
                events,
            });
        }
        Ok(Self {
            device,
            mem,
            interrupt: Arc::new(Interrupt::new(irq)),
            queues,
            device_features_sel: 0,
            driver_features_sel: 0,
            acked_features: 0,
            queue_sel: 0,
            status: 0,
            config_generation: 0,
            activated: false,
        })
    }

    /// The interrupt; its IRQ eventfd is what the VMM registers as an irqfd.
    pub fn interrupt(&self) -> &Arc<Interrupt> {
        &self.interrupt
    }

    /// The wrapped device.
    pub fn device(&self) -> &dyn VirtioDevice {
        self.device.as_ref()
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Whether the device is live (the driver set `DRIVER_OK` and activation succeeded).
    pub fn is_activated(&self) -> bool {
        self.activated
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Whether all of `set` and none of `clear` are in the status.
    fn status_is(&self, set: u32, clear: u32) -> bool {
        self.status & set == set && self.status & clear == 0
    }

    fn read_register(&self, offset: u64) -> u32 {
        match offset {
            reg::MAGIC_VALUE => MMIO_MAGIC,
            reg::VERSION => MMIO_VERSION,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => self
                .queues
                .get(self.queue_sel as usize)
                .map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => self
                .queues
                .get(self.queue_sel as usize)
                .map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => self.config_generation,
            _ => {
                tracing::debug!(
                    offset,
                    "read of an unknown or write-only virtio-mmio register"
                );
                0
            }
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES => {
                if !self.status_is(status::DRIVER, status::FEATURES_OK | status::FAILED) {
                    tracing::debug!(status = self.status, "driver features written out of order");
                    return;
                }
                match self.driver_features_sel {
                    0 => {
                        self.acked_features =
                            (self.acked_features & !0xffff_ffff) | u64::from(value);
                    }
                    1 => {
                        self.acked_features =
                            (self.acked_features & 0xffff_ffff) | (u64::from(value) << 32);
                    }
                    page => {
                        if value != 0 {
                            tracing::debug!(page, "driver accepted features of an unknown page");
                        }
                    }
                }
            }
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM
            | reg::QUEUE_READY
            | reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_DRIVER_LOW
            | reg::QUEUE_DRIVER_HIGH
            | reg::QUEUE_DEVICE_LOW
            | reg::QUEUE_DEVICE_HIGH => self.write_queue_register(offset, value),
            reg::QUEUE_NOTIFY => self.notify(value),
            reg::INTERRUPT_ACK => self.interrupt.ack(value),
            reg::STATUS => self.set_status(value),
            _ => tracing::debug!(
                offset,
                "write to an unknown or read-only virtio-mmio register"
            ),
        }
    }

    fn write_queue_register(&mut self, offset: u64, value: u32) {
        if !self.status_is(status::FEATURES_OK, status::DRIVER_OK | status::FAILED) {
            tracing::debug!(
                offset,
                status = self.status,
                "queue register written out of order"
            );
            return;
        }
        let sel = self.queue_sel;
        let Some(queue) = self.selected_queue() else {
            tracing::debug!(
                queue = sel,
                "queue register written for a queue that does not exist"
            );
            return;
        };
        let low = |addr: u64| GuestAddress((addr & !0xffff_ffff) | u64::from(value));
        let high = |addr: u64| GuestAddress((addr & 0xffff_ffff) | (u64::from(value) << 32));
        let result = match offset {
            reg::QUEUE_NUM => u16::try_from(value)
                .map_err(|_| virtio_queue::Error::InvalidSize)
                .and_then(|size| queue.try_set_size(size)),
            reg::QUEUE_READY => {
                queue.set_ready(value == 1);
                Ok(())
            }
            reg::QUEUE_DESC_LOW => queue.try_set_desc_table_address(low(queue.desc_table())),
            reg::QUEUE_DESC_HIGH => queue.try_set_desc_table_address(high(queue.desc_table())),
            reg::QUEUE_DRIVER_LOW => queue.try_set_avail_ring_address(low(queue.avail_ring())),
            reg::QUEUE_DRIVER_HIGH => queue.try_set_avail_ring_address(high(queue.avail_ring())),
            reg::QUEUE_DEVICE_LOW => queue.try_set_used_ring_address(low(queue.used_ring())),
            reg::QUEUE_DEVICE_HIGH => queue.try_set_used_ring_address(high(queue.used_ring())),
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::debug!(queue = sel, offset, value, error = %e, "invalid queue setting ignored");
        }
    }

    fn notify(&self, index: u32) {
        match self.device.queue_events().get(index as usize) {
            Some(event) => {
                if let Err(e) = event.signal() {
                    tracing::debug!(queue = index, error = %e, "failed to signal a queue event");
                }
            }
            None => tracing::debug!(queue = index, "notify of a queue that does not exist"),
        }
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        if value & old != old {
            tracing::debug!(old, new = value, "status write clears bits; ignored");
            return;
        }
        let added = value & !old;
        let mut value = value;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable() {
            tracing::debug!(
                acked = self.acked_features,
                offered = self.device.features(),
                "driver features refused"
            );
            value &= !status::FEATURES_OK;
        }
        // Each step needs the one before it (FEATURES_OK as it stands after the check above).
        let needs = |bit: u32, before: u32| added & bit == 0 || value & before != 0;
        if !(needs(status::DRIVER, status::ACKNOWLEDGE)
            && needs(status::FEATURES_OK, status::DRIVER)
            && needs(status::DRIVER_OK, status::FEATURES_OK))
        {
            tracing::debug!(old, new = value, "status bits set out of order; ignored");
            return;
        }
        self.status = value;
        if added & status::DRIVER_OK != 0 && value & status::FAILED == 0 {
            self.activate();
        }
    }

    fn features_acceptable(&self) -> bool {
        let offered = self.device.features();
        self.acked_features & (1 << VIRTIO_F_VERSION_1) != 0 && self.acked_features & !offered == 0
    }

    fn activate(&mut self) {
        let mut queues = Vec::with_capacity(self.queues.len());
        for (index, queue) in self.queues.iter().enumerate() {
            if !queue.ready() || !queue.is_valid(&self.mem) {
                tracing::debug!(queue = index, "driver ok with a queue not ready or invalid");
                self.fail_activation();
                return;
            }
            match Queue::try_from(queue.state()) {
                Ok(copy) => queues.push(copy),
                Err(e) => {
                    tracing::debug!(queue = index, error = %e, "queue cannot be copied");
                    self.fail_activation();
                    return;
                }
            }
        }
        match self.device.activate(
            self.mem.clone(),
            queues,
            self.interrupt.clone(),
            self.acked_features,
        ) {
            Ok(()) => {
                self.activated = true;
                tracing::debug!(
                    device = self.device.device_type(),
                    "virtio device activated"
                );
            }
            Err(e) => {
                tracing::warn!(device = self.device.device_type(), error = %e, "activation failed");
                self.fail_activation();
            }
        }
    }

    fn fail_activation(&mut self) {
        self.status |= status::DEVICE_NEEDS_RESET;
        if let Err(e) = self.interrupt.signal_config_change() {
            tracing::debug!(error = %e, "failed to raise the interrupt");
        }
    }

    fn reset(&mut self) {
        if self.activated {
            self.device.reset();
            self.activated = false;
        }
        for queue in &mut self.queues {
            queue.reset();
        }
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.acked_features = 0;
        self.queue_sel = 0;
        self.status = 0;
        self.interrupt.clear();
    }
}

/// A 32-bit aligned control register access, or `None`.
fn control_register(offset: u64, len: usize) -> Option<u64> {
    (len == 4 && offset % 4 == 0 && offset < CONFIG_SPACE_OFFSET).then_some(offset)
}

/// A configuration space access of 1, 2, 4 or 8 bytes, as an offset into the space.
fn config_offset(offset: u64, len: usize) -> Option<u64> {
    (matches!(len, 1 | 2 | 4 | 8) && offset >= CONFIG_SPACE_OFFSET)
        .then(|| offset - CONFIG_SPACE_OFFSET)
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if let Some(off) = config_offset(offset, data.len()) {
            self.device.read_config(off, data);
        } else if let Some(reg) = control_register(offset, data.len()) {
            data.copy_from_slice(&self.read_register(reg).to_le_bytes());
        } else {
            tracing::debug!(offset, size = data.len(), "ignored a virtio-mmio read");
            data.fill(0);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(off) = config_offset(offset, data.len()) {
            self.device.write_config(off, data);
        } else if let (Some(reg), Ok(bytes)) = (
            control_register(offset, data.len()),
            <[u8; 4]>::try_from(data),
        ) {
            self.write_register(reg, u32::from_le_bytes(bytes));
        } else {
            tracing::debug!(offset, size = data.len(), "ignored a virtio-mmio write");
        }
    }
}

#[cfg(test)]
#[path = "mmio_tests.rs"]
mod tests;
