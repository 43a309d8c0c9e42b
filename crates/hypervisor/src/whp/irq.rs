//! Interrupts on WHP: the userspace I/O APIC and PIC stub ([`crate::irqchip`]) of a partition,
//! and their deliveries as `WHvRequestInterrupt` calls to the local APICs WHP emulates.
//!
//! A device's IRQ line goes to an I/O APIC pin; the redirection entry the guest programmed
//! turns it into a [`Delivery`], which becomes a `WHV_INTERRUPT_CONTROL`. A level-triggered
//! vector stays in service (remote IRR) until the guest's EOI exits (`ApicEoi`) and reaches
//! `Interrupts::end_of_interrupt`, which re-delivers a line that is still asserted.

use std::sync::{Arc, Mutex, PoisonError};

use windows_sys::Win32::System::Hypervisor::{
    WHvX64InterruptDestinationModeLogical, WHvX64InterruptDestinationModePhysical,
    WHvX64InterruptTriggerModeEdge, WHvX64InterruptTriggerModeLevel, WHvX64InterruptTypeFixed,
    WHvX64InterruptTypeInit, WHvX64InterruptTypeLowestPriority, WHvX64InterruptTypeNmi,
    WHV_INTERRUPT_CONTROL, WHV_PARTITION_HANDLE,
};

use super::api::{HResult, Platform};
use crate::irqchip::{Delivery, DeliveryMode, Ioapic, PicStub, IOAPIC_NUM_PINS, IOAPIC_SIZE};

/// Where the guest finds the I/O APIC (the MP table's address).
pub const IOAPIC_BASE: u64 = 0xfec0_0000;

/// `WHV_INTERRUPT_CONTROL` type of an SMI (WHvX64InterruptTypeSmi is not in every SDK).
const INTERRUPT_TYPE_SMI: i32 = 2;

/// `delivery` as a `WHV_INTERRUPT_CONTROL`, or `None` for what WHP cannot inject (ExtINT: no
/// PIC drives the line; reserved modes).
pub fn interrupt_control(delivery: &Delivery) -> Option<WHV_INTERRUPT_CONTROL> {
    let kind = match delivery.mode {
        DeliveryMode::Fixed => WHvX64InterruptTypeFixed,
        DeliveryMode::LowestPriority => WHvX64InterruptTypeLowestPriority,
        DeliveryMode::Smi => INTERRUPT_TYPE_SMI,
        DeliveryMode::Nmi => WHvX64InterruptTypeNmi,
        DeliveryMode::Init => WHvX64InterruptTypeInit,
        DeliveryMode::ExtInt | DeliveryMode::Reserved(_) => return None,
    };
    let destination_mode = if delivery.logical {
        WHvX64InterruptDestinationModeLogical
    } else {
        WHvX64InterruptDestinationModePhysical
    };
    let trigger = if delivery.level {
        WHvX64InterruptTriggerModeLevel
    } else {
        WHvX64InterruptTriggerModeEdge
    };
    // Type bits 0-7, DestinationMode 8-11, TriggerMode 12-15.
    let bits =
        (kind as u64 & 0xff) | (destination_mode as u64 & 0xf) << 8 | (trigger as u64 & 0xf) << 12;
    Some(WHV_INTERRUPT_CONTROL {
        _bitfield: bits,
        Destination: u32::from(delivery.destination),
        Vector: u32::from(delivery.vector),
    })
}

/// A partition's interrupt controllers (see the module documentation). It does not own the
/// partition: its owner keeps the handle valid while this is used.
pub struct Interrupts {
    api: Arc<dyn Platform>,
    partition: WHV_PARTITION_HANDLE,
    ioapic: Mutex<Ioapic>,
    pic: Mutex<PicStub>,
}

impl std::fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupts")
            .field("partition", &self.partition)
            .finish()
    }
}

impl Interrupts {
    /// The controllers of `partition` with `vcpus` processors, as after reset. The I/O APIC's
    /// id is `vcpus + 1`, after the processors' APIC ids, where the VMM's MP table puts it.
    pub(crate) fn new(api: Arc<dyn Platform>, partition: WHV_PARTITION_HANDLE, vcpus: u32) -> Self {
        Self {
            api,
            partition,
            ioapic: Mutex::new(Ioapic::new((vcpus + 1).min(0xf) as u8)),
            pic: Mutex::new(PicStub::new()),
        }
    }

    fn deliver(&self, delivery: Delivery) -> HResult<()> {
        match interrupt_control(&delivery) {
            Some(control) => self.api.request_interrupt(self.partition, &control),
            None => {
                tracing::debug!(?delivery, "interrupt not deliverable on whp: dropped");
                Ok(())
            }
        }
    }

    /// Sets I/O APIC pin `irq` to `level` and delivers what that raises.
    pub(crate) fn set_irq(&self, irq: u32, level: bool) -> HResult<()> {
        let pin = irq as usize;
        if pin >= IOAPIC_NUM_PINS {
            return Err(super::api::HResultError(E_INVALIDARG));
        }
        let delivery = self
            .ioapic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_irq(pin, level);
        delivery.map_or(Ok(()), |d| self.deliver(d))
    }

    /// The guest's EOI of `vector`: re-delivers the level-triggered lines still asserted.
    pub(crate) fn end_of_interrupt(&self, vector: u8) -> HResult<()> {
        let again = self
            .ioapic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .end_of_interrupt(vector);
        again.into_iter().try_for_each(|d| self.deliver(d))
    }

    /// Whether `gpa` is in the I/O APIC's MMIO window.
    pub fn is_ioapic(gpa: u64) -> bool {
        (IOAPIC_BASE..IOAPIC_BASE + IOAPIC_SIZE).contains(&gpa)
    }

    /// A guest read of the I/O APIC at `gpa`.
    pub(crate) fn ioapic_read(&self, gpa: u64, data: &mut [u8]) {
        self.ioapic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mmio_read(gpa - IOAPIC_BASE, data);
    }

    /// A guest write of the I/O APIC at `gpa` (a redirection entry unmasked on an asserted
    /// level line delivers).
    pub(crate) fn ioapic_write(&self, gpa: u64, data: &[u8]) -> HResult<()> {
        let delivery = self
            .ioapic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mmio_write(gpa - IOAPIC_BASE, data);
        delivery.map_or(Ok(()), |d| self.deliver(d))
    }

    /// Whether `port` is one of the PIC stub's.
    pub fn is_pic(port: u16) -> bool {
        PicStub::handles(port)
    }

    /// A guest `in` from a PIC port.
    pub(crate) fn pic_read(&self, port: u16) -> u8 {
        self.pic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read(port)
    }

    /// A guest `out` to a PIC port.
    pub(crate) fn pic_write(&self, port: u16, value: u8) {
        self.pic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(port, value);
    }
}

/// E_INVALIDARG.
pub(crate) const E_INVALIDARG: i32 = 0x8007_0057_u32 as i32;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn delivery(mode: DeliveryMode, logical: bool, level: bool) -> Delivery {
        Delivery {
            vector: 0x31,
            mode,
            destination: 2,
            logical,
            level,
        }
    }

    #[test]
    fn test_interrupt_control_fixed_physical_edge() {
        let c = interrupt_control(&delivery(DeliveryMode::Fixed, false, false)).unwrap();
        assert_eq!((c._bitfield, c.Destination, c.Vector), (0, 2, 0x31));
    }

    #[test]
    fn test_interrupt_control_lowest_logical_level() {
        let c = interrupt_control(&delivery(DeliveryMode::LowestPriority, true, true)).unwrap();
        assert_eq!(c._bitfield, 1 | 1 << 8 | 1 << 12);
    }

    #[test]
    fn test_interrupt_control_nmi_init_smi_types() {
        let kind = |mode| {
            interrupt_control(&delivery(mode, false, false))
                .unwrap()
                ._bitfield
        };
        assert_eq!(kind(DeliveryMode::Nmi), 4);
        assert_eq!(kind(DeliveryMode::Init), 5);
        assert_eq!(kind(DeliveryMode::Smi), 2);
    }

    #[test]
    fn test_interrupt_control_extint_and_reserved_not_delivered() {
        assert!(interrupt_control(&delivery(DeliveryMode::ExtInt, false, false)).is_none());
        assert!(interrupt_control(&delivery(DeliveryMode::Reserved(3), false, false)).is_none());
    }

    #[test]
    fn test_ioapic_window() {
        assert!(Interrupts::is_ioapic(IOAPIC_BASE));
        assert!(Interrupts::is_ioapic(IOAPIC_BASE + IOAPIC_SIZE - 1));
        assert!(!Interrupts::is_ioapic(IOAPIC_BASE + IOAPIC_SIZE));
        assert!(!Interrupts::is_ioapic(IOAPIC_BASE - 1));
    }
}
