//! The [`Vm`] trait: guest memory slots, vCPU creation, interrupt lines.

use lcow_base::Event;

use crate::{Capability, Error, Result, Vcpu};

/// A guest physical memory region backed by host memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Guest physical address of the first byte (page aligned).
    pub guest_address: u64,
    /// Size in bytes (a multiple of the page size).
    pub size: u64,
    /// Host virtual address of the first byte of the backing memory (page aligned).
    pub host_address: usize,
    /// Map read-only: guest writes exit as MMIO instead (needs
    /// [`Capability::ReadOnlyMemory`]).
    pub read_only: bool,
}

impl MemoryRegion {
    /// The guest physical address one past the last byte, or `None` if it overflows.
    pub fn guest_end(&self) -> Option<u64> {
        self.guest_address.checked_add(self.size)
    }

    /// Whether the guest ranges of `self` and `other` share a byte.
    pub fn overlaps(&self, other: &MemoryRegion) -> bool {
        let end = self.guest_address.saturating_add(self.size);
        let other_end = other.guest_address.saturating_add(other.size);
        self.guest_address < other_end && other.guest_address < end
    }
}

/// A mapped memory slot, returned by [`Vm::add_memory_region`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemSlot(pub u32);

/// An address an ioevent watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoEventAddress {
    /// A port in the I/O space.
    Pio(u16),
    /// A guest physical address in the memory space.
    Mmio(u64),
}

/// Which guest writes trigger an ioevent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datamatch {
    /// Any write of any length.
    AnyLength,
    /// A one-byte write of this value.
    U8(u8),
    /// A two-byte write of this value.
    U16(u16),
    /// A four-byte write of this value.
    U32(u32),
    /// An eight-byte write of this value.
    U64(u64),
}

/// A virtual machine: guest memory, vCPUs and interrupt lines.
///
/// Every method takes `&self` so one `Vm` can be shared (`Arc`) between the vCPU threads and the
/// device threads that raise interrupts.
pub trait Vm: Send + Sync {
    /// The vCPU type of this backend.
    type Vcpu: Vcpu;

    /// Returns whether this VM supports `cap`.
    fn check_capability(&self, cap: Capability) -> bool;

    /// Maps `region` into guest physical memory and returns its slot.
    ///
    /// # Safety
    ///
    /// `region.host_address .. + region.size` must be mapped, readable and writable memory of
    /// this process that stays mapped until the slot is removed or the VM is dropped. The guest
    /// (and the hypervisor on its behalf) reads and writes it concurrently with this process: the
    /// caller must not hold Rust references to that memory that assume exclusive access, and must
    /// access it only through raw pointers or volatile/atomic operations.
    unsafe fn add_memory_region(&self, region: MemoryRegion) -> Result<MemSlot>;

    /// Unmaps the memory slot `slot` and returns the region it held. After this returns the
    /// backing memory is no longer accessed by the guest.
    fn remove_memory_region(&self, slot: MemSlot) -> Result<MemoryRegion>;

    /// Creates vCPU number `id` (the x86 APIC id).
    fn create_vcpu(&self, id: u32) -> Result<Self::Vcpu>;

    /// Creates the in-kernel interrupt controllers (PIC, IOAPIC and a local APIC per vCPU). Call
    /// it before creating vCPUs.
    #[cfg(target_arch = "x86_64")]
    fn create_irq_chip(&self) -> Result<()>;

    /// Creates the in-kernel i8254 PIT. Call it after [`Vm::create_irq_chip`].
    #[cfg(target_arch = "x86_64")]
    fn create_pit(&self) -> Result<()>;

    /// Sets IRQ line `irq` of the interrupt controller to `level`. An edge-triggered interrupt is
    /// a pulse: `set_irq_line(irq, true)` then `set_irq_line(irq, false)`.
    fn set_irq_line(&self, irq: u32, level: bool) -> Result<()>;
}

/// The fast paths of a [`Vm`], on every host: an [`Event`] that raises an IRQ line without a
/// VMM round trip (KVM: irqfd; WHP: a trigger, or the backend's own interrupt thread), and a
/// guest write that signals an [`Event`] without a vCPU exit (KVM: ioeventfd; WHP: a doorbell).
/// Each method returns [`Error::Unsupported`] unless the backend overrides it; check
/// [`Vm::check_capability`] with [`Capability::Irqfd`] / [`Capability::Ioeventfd`] first.
pub trait VmEvents: Vm {
    /// An event that pulses IRQ line `irq` each time it is signalled. By default a new
    /// [`Event`] given to [`VmEvents::register_irq_event`]; a backend whose hypervisor hands out
    /// its own event objects for this (WHP's triggers) overrides it.
    fn irq_event(&self, irq: u32) -> Result<Event> {
        let event = Event::new().map_err(Error::CreateEvent)?;
        self.register_irq_event(&event, irq)?;
        Ok(event)
    }

    /// Makes every signal of `event` pulse IRQ line `irq`.
    fn register_irq_event(&self, event: &Event, irq: u32) -> Result<()> {
        let _ = (event, irq);
        Err(Error::Unsupported("irq events"))
    }

    /// Undoes [`VmEvents::register_irq_event`].
    fn unregister_irq_event(&self, event: &Event, irq: u32) -> Result<()> {
        let _ = (event, irq);
        Err(Error::Unsupported("irq events"))
    }

    /// Makes guest writes to `address` that match `datamatch` signal `event` instead of exiting.
    fn register_io_event(
        &self,
        event: &Event,
        address: IoEventAddress,
        datamatch: Datamatch,
    ) -> Result<()> {
        let _ = (event, address, datamatch);
        Err(Error::Unsupported("io events"))
    }

    /// Undoes [`VmEvents::register_io_event`] (same arguments).
    fn unregister_io_event(
        &self,
        event: &Event,
        address: IoEventAddress,
        datamatch: Datamatch,
    ) -> Result<()> {
        let _ = (event, address, datamatch);
        Err(Error::Unsupported("io events"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(guest_address: u64, size: u64) -> MemoryRegion {
        MemoryRegion {
            guest_address,
            size,
            host_address: 0,
            read_only: false,
        }
    }

    #[test]
    fn test_overlaps_adjacent_regions_false() {
        assert!(!region(0, 0x1000).overlaps(&region(0x1000, 0x1000)));
        assert!(!region(0x1000, 0x1000).overlaps(&region(0, 0x1000)));
    }

    #[test]
    fn test_overlaps_shared_page_true() {
        assert!(region(0, 0x2000).overlaps(&region(0x1000, 0x1000)));
        assert!(region(0x1000, 0x1000).overlaps(&region(0, 0x10000)));
    }

    #[test]
    fn test_guest_end_overflow_none() {
        assert_eq!(region(u64::MAX, 2).guest_end(), None);
        assert_eq!(region(0x1000, 0x1000).guest_end(), Some(0x2000));
    }
}
