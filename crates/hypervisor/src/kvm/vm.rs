//! [`KvmVm`]: a KVM virtual machine.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, kvm_xsave, KVM_MEM_READONLY, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Cap, IoEventAddress as KvmIoEventAddress, NoDatamatch, VmFd};
use lcow_base::linux::EventExt;
use lcow_base::Event;
use vmm_sys_util::eventfd::EventFd;

use super::{kvm_cap, KvmVcpu, TSS_ADDRESS};
use crate::{
    Capability, Datamatch, Error, IoEventAddress, MemSlot, MemoryRegion, Result, Vm, VmEvents,
};

/// A KVM virtual machine, created by [`crate::Hypervisor::create_vm`] on a
/// [`super::KvmHypervisor`].
#[derive(Debug)]
pub struct KvmVm {
    fd: VmFd,
    slots: Mutex<BTreeMap<u32, MemoryRegion>>,
    max_slots: usize,
}

impl KvmVm {
    pub(super) fn new(fd: VmFd, max_slots: usize) -> Result<Self> {
        let tss = usize::try_from(TSS_ADDRESS).unwrap_or(usize::MAX);
        fd.set_tss_address(tss)
            .map_err(|e| Error::CreateVm(e.into()))?;
        Ok(Self {
            fd,
            slots: Mutex::new(BTreeMap::new()),
            max_slots,
        })
    }

    fn set_slot(&self, slot: u32, region: &MemoryRegion, size: u64) -> Result<()> {
        let mem = kvm_userspace_memory_region {
            slot,
            flags: if region.read_only {
                KVM_MEM_READONLY
            } else {
                0
            },
            guest_phys_addr: region.guest_address,
            memory_size: size,
            userspace_addr: region.host_address as u64,
        };
        // SAFETY: for a new slot the caller of `add_memory_region` vouched for the host range;
        // a zero size removes a slot we added, after which KVM no longer touches the memory.
        unsafe { self.fd.set_user_memory_region(mem) }.map_err(|e| Error::SetUserMemoryRegion {
            slot,
            source: e.into(),
        })
    }
}

impl Vm for KvmVm {
    type Vcpu = KvmVcpu;

    fn check_capability(&self, cap: Capability) -> bool {
        self.fd.check_extension(kvm_cap(cap))
    }

    unsafe fn add_memory_region(&self, region: MemoryRegion) -> Result<MemSlot> {
        if region.size == 0 || region.guest_end().is_none() {
            return Err(Error::InvalidMemoryRegion {
                guest_address: region.guest_address,
                size: region.size,
            });
        }
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((&slot, _)) = slots.iter().find(|(_, r)| r.overlaps(&region)) {
            return Err(Error::OverlappingMemoryRegion {
                guest_address: region.guest_address,
                slot,
            });
        }
        let slot = (0..u32::try_from(self.max_slots).unwrap_or(u32::MAX))
            .find(|s| !slots.contains_key(s))
            .ok_or(Error::NoFreeMemorySlot {
                limit: self.max_slots,
            })?;
        self.set_slot(slot, &region, region.size)?;
        slots.insert(slot, region);
        tracing::debug!(
            slot,
            guest_address = region.guest_address,
            size = region.size,
            read_only = region.read_only,
            "added memory region"
        );
        Ok(MemSlot(slot))
    }

    fn remove_memory_region(&self, slot: MemSlot) -> Result<MemoryRegion> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let region = *slots
            .get(&slot.0)
            .ok_or(Error::UnknownMemorySlot { slot: slot.0 })?;
        self.set_slot(slot.0, &region, 0)?;
        slots.remove(&slot.0);
        Ok(region)
    }

    fn create_vcpu(&self, id: u32) -> Result<KvmVcpu> {
        let fd = self
            .fd
            .create_vcpu(u64::from(id))
            .map_err(|e| Error::CreateVcpu {
                id,
                source: e.into(),
            })?;
        // KVM_CAP_XSAVE2 answers the XSAVE area's size, or 0 before Linux 5.17 (then 4096).
        let xsave = self.fd.check_extension(Cap::Xsave)
            && usize::try_from(self.fd.check_extension_int(Cap::Xsave2))
                .is_ok_and(|size| size <= std::mem::size_of::<kvm_xsave>());
        Ok(KvmVcpu::new(id, fd, self.fd.run_size(), xsave))
    }

    fn create_irq_chip(&self) -> Result<()> {
        self.fd
            .create_irq_chip()
            .map_err(|e| Error::CreateIrqChip(e.into()))
    }

    fn create_pit(&self) -> Result<()> {
        let config = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd
            .create_pit2(config)
            .map_err(|e| Error::CreatePit(e.into()))
    }

    fn set_irq_line(&self, irq: u32, level: bool) -> Result<()> {
        self.fd
            .set_irq_line(irq, level)
            .map_err(|e| Error::SetIrqLine {
                irq,
                source: e.into(),
            })
    }
}

/// `KVM_IOEVENTFD`, assigning (`register`) or deassigning. kvm-ioctls takes the datamatch width
/// from the type of the value, so each width is its own call.
fn ioeventfd(
    fd: &VmFd,
    register: bool,
    event: &EventFd,
    address: IoEventAddress,
    datamatch: Datamatch,
) -> std::result::Result<(), kvm_ioctls::Error> {
    let addr = match address {
        IoEventAddress::Pio(port) => KvmIoEventAddress::Pio(u64::from(port)),
        IoEventAddress::Mmio(addr) => KvmIoEventAddress::Mmio(addr),
    };
    macro_rules! call {
        ($value:expr) => {
            if register {
                fd.register_ioevent(event, &addr, $value)
            } else {
                fd.unregister_ioevent(event, &addr, $value)
            }
        };
    }
    match datamatch {
        Datamatch::AnyLength => call!(NoDatamatch),
        Datamatch::U8(v) => call!(v),
        Datamatch::U16(v) => call!(v),
        Datamatch::U32(v) => call!(v),
        Datamatch::U64(v) => call!(v),
    }
}

impl VmEvents for KvmVm {
    fn register_irq_event(&self, event: &Event, irq: u32) -> Result<()> {
        self.fd
            .register_irqfd(event.eventfd(), irq)
            .map_err(|e| Error::RegisterIrqEvent {
                irq,
                source: e.into(),
            })
    }

    fn unregister_irq_event(&self, event: &Event, irq: u32) -> Result<()> {
        self.fd
            .unregister_irqfd(event.eventfd(), irq)
            .map_err(|e| Error::UnregisterIrqEvent {
                irq,
                source: e.into(),
            })
    }

    fn register_io_event(
        &self,
        event: &Event,
        address: IoEventAddress,
        datamatch: Datamatch,
    ) -> Result<()> {
        ioeventfd(&self.fd, true, event.eventfd(), address, datamatch)
            .map_err(|e| Error::RegisterIoEvent(e.into()))
    }

    fn unregister_io_event(
        &self,
        event: &Event,
        address: IoEventAddress,
        datamatch: Datamatch,
    ) -> Result<()> {
        ioeventfd(&self.fd, false, event.eventfd(), address, datamatch)
            .map_err(|e| Error::UnregisterIoEvent(e.into()))
    }
}
