//! [`WhpHypervisor`] and [`WhpVm`]: the [`Hypervisor`] and [`Vm`] traits on a WHP partition.
//!
//! WHP fixes a partition's processor count before its setup, so the hypervisor is made for a
//! number of vCPUs ([`WhpHypervisor::new`]). The interrupt controllers other than the local
//! APICs are ours ([`super::irq`]): [`Vm::create_irq_chip`] has nothing to create, and there
//! is no PIT ([`Capability::Pit`] is false; the guest reads its timer frequencies instead,
//! [`super::cpuid`]).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use lcow_base::{AsRawDescriptor, Event};
use windows_sys::Win32::System::Hypervisor::{
    WHvCapabilityCodeInterruptClockFrequency, WHvCapabilityCodeProcessorClockFrequency,
    WHV_DOORBELL_MATCH_DATA,
};

use super::api::Platform;
use super::cpuid::{supported_cpuid, HostCpuid, CPUID_EXIT_LEAVES};
use super::irq::Interrupts;
use super::irq_events::IrqEvents;
use super::msr::{Frequencies, MSR_REGISTERS};
use super::partition::Partition;
use super::vcpu::WhpVcpu;
use crate::x86_64::CpuId;
use crate::{
    Capability, Datamatch, Error, Hypervisor, IoEventAddress, MemSlot, MemoryRegion, Result, Vm,
    VmEvents,
};

/// The most memory slots a VM has.
pub const MAX_MEMORY_SLOTS: usize = 64;
/// The most vCPUs a partition is made with.
pub const MAX_VCPUS: u32 = 64;
/// The guest page size.
const PAGE_SIZE: u64 = 0x1000;

/// The Windows Hypervisor Platform, for VMs of a fixed number of vCPUs.
pub struct WhpHypervisor {
    api: Arc<dyn Platform>,
    vcpus: u32,
}

impl std::fmt::Debug for WhpHypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhpHypervisor")
            .field("vcpus", &self.vcpus)
            .finish()
    }
}

impl WhpHypervisor {
    /// This host's WHP, for VMs of `vcpus` vCPUs (1 to [`MAX_VCPUS`]). Fails with
    /// [`Error::HypervisorUnavailable`], saying how to turn WHP on, where it is missing.
    pub fn new(vcpus: u32) -> Result<Self> {
        super::probe()?;
        Self::with_platform(super::api::platform()?, vcpus)
    }

    pub(crate) fn with_platform(api: Arc<dyn Platform>, vcpus: u32) -> Result<Self> {
        if !(1..=MAX_VCPUS).contains(&vcpus) {
            return Err(Error::CreateVm(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{vcpus} vcpus: whp partitions here have 1 to {MAX_VCPUS}"),
            )));
        }
        Ok(Self { api, vcpus })
    }

    /// A capability's 8-byte value, or 0 when WHP does not report it.
    fn capability_u64(&self, code: i32) -> u64 {
        let mut value = [0u8; 8];
        match self.api.get_capability(code, &mut value) {
            Ok(_) => u64::from_le_bytes(value),
            Err(e) => {
                tracing::debug!(code, error = %io::Error::from(e), "whp capability not reported");
                0
            }
        }
    }

    fn frequencies(&self) -> Frequencies {
        Frequencies {
            tsc_hz: self.capability_u64(WHvCapabilityCodeProcessorClockFrequency),
            apic_hz: self.capability_u64(WHvCapabilityCodeInterruptClockFrequency),
        }
    }
}

impl Hypervisor for WhpHypervisor {
    type Vm = WhpVm;

    fn create_vm(&self) -> Result<WhpVm> {
        let partition = Partition::new(self.api.clone(), self.vcpus, &CPUID_EXIT_LEAVES)?;
        let frequencies = self.frequencies();
        if frequencies.tsc_hz == 0 || frequencies.apic_hz == 0 {
            tracing::warn!(
                ?frequencies,
                "whp reports no clock frequency: the guest's timers calibrate from zero"
            );
        }
        let interrupts = Arc::new(Interrupts::new(
            self.api.clone(),
            partition.handle(),
            self.vcpus,
        ));
        let irq_events = IrqEvents::new(interrupts.clone()).map_err(Error::CreateVm)?;
        Ok(WhpVm {
            inner: Arc::new(VmInner {
                irq_events,
                interrupts,
                slots: Mutex::new(Vec::new()),
                frequencies,
                vcpus: self.vcpus,
                partition,
            }),
        })
    }

    fn check_capability(&self, cap: Capability) -> bool {
        capability(cap)
    }

    fn supported_cpuid(&self) -> Result<CpuId> {
        Ok(supported_cpuid(&HostCpuid))
    }

    fn supported_msrs(&self) -> Result<Vec<u32>> {
        Ok(MSR_REGISTERS.iter().map(|(msr, _)| *msr).collect())
    }
}

fn capability(cap: Capability) -> bool {
    match cap {
        Capability::ReadOnlyMemory
        | Capability::IrqChip
        | Capability::Irqfd
        | Capability::Ioeventfd => true,
        Capability::Pit | Capability::TscDeadlineTimer => false,
    }
}

/// What a VM's vCPUs and device threads share. Fields drop in order: the irq event thread
/// stops before the partition it injects into is deleted.
pub(crate) struct VmInner {
    irq_events: IrqEvents,
    pub(crate) interrupts: Arc<Interrupts>,
    slots: Mutex<Vec<Option<MemoryRegion>>>,
    pub(crate) frequencies: Frequencies,
    vcpus: u32,
    pub(crate) partition: Partition,
}

impl VmInner {
    pub(crate) fn api(&self) -> &Arc<dyn Platform> {
        self.partition.api()
    }
}

/// A WHP partition as a [`Vm`].
pub struct WhpVm {
    inner: Arc<VmInner>,
}

impl std::fmt::Debug for WhpVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhpVm")
            .field("partition", &self.inner.partition)
            .finish()
    }
}

fn check_region(region: &MemoryRegion) -> Result<()> {
    let invalid = Error::InvalidMemoryRegion {
        guest_address: region.guest_address,
        size: region.size,
    };
    let aligned = region.guest_address % PAGE_SIZE == 0
        && region.size % PAGE_SIZE == 0
        && region.host_address as u64 % PAGE_SIZE == 0;
    if region.size == 0 || region.guest_end().is_none() || !aligned {
        return Err(invalid);
    }
    Ok(())
}

/// The doorbell of a guest write to `address` that matches `datamatch`.
fn doorbell(address: IoEventAddress, datamatch: Datamatch) -> Result<WHV_DOORBELL_MATCH_DATA> {
    let IoEventAddress::Mmio(guest_address) = address else {
        return Err(Error::Unsupported(
            "port i/o events (whp doorbells are mmio only)",
        ));
    };
    // MatchOnValue is bit 0, MatchOnLength bit 1.
    let (value, length, bits) = match datamatch {
        Datamatch::AnyLength => (0, 0, 0),
        Datamatch::U8(v) => (u64::from(v), 1, 0b11),
        Datamatch::U16(v) => (u64::from(v), 2, 0b11),
        Datamatch::U32(v) => (u64::from(v), 4, 0b11),
        Datamatch::U64(v) => (v, 8, 0b11),
    };
    Ok(WHV_DOORBELL_MATCH_DATA {
        GuestAddress: guest_address,
        Value: value,
        Length: length,
        _bitfield: bits,
    })
}

impl Vm for WhpVm {
    type Vcpu = WhpVcpu;

    fn check_capability(&self, cap: Capability) -> bool {
        capability(cap)
    }

    unsafe fn add_memory_region(&self, region: MemoryRegion) -> Result<MemSlot> {
        check_region(&region)?;
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots
            .iter()
            .position(|s| s.is_some_and(|s| s.overlaps(&region)))
        {
            return Err(Error::OverlappingMemoryRegion {
                guest_address: region.guest_address,
                slot: slot as u32,
            });
        }
        let index = match slots.iter().position(Option::is_none) {
            Some(free) => free,
            None if slots.len() < MAX_MEMORY_SLOTS => {
                slots.push(None);
                slots.len() - 1
            }
            None => {
                return Err(Error::NoFreeMemorySlot {
                    limit: MAX_MEMORY_SLOTS,
                })
            }
        };
        // SAFETY: the caller's contract (the host range stays mapped until removed) is the
        // one `map` needs.
        unsafe { self.inner.partition.map(index as u32, &region)? };
        slots[index] = Some(region);
        Ok(MemSlot(index as u32))
    }

    fn remove_memory_region(&self, slot: MemSlot) -> Result<MemoryRegion> {
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let region = slots
            .get(slot.0 as usize)
            .copied()
            .flatten()
            .ok_or(Error::UnknownMemorySlot { slot: slot.0 })?;
        self.inner.partition.unmap(slot.0, &region)?;
        slots[slot.0 as usize] = None;
        Ok(region)
    }

    fn create_vcpu(&self, id: u32) -> Result<WhpVcpu> {
        if id >= self.inner.vcpus {
            return Err(Error::CreateVcpu {
                id,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the partition has {} vcpus", self.inner.vcpus),
                ),
            });
        }
        WhpVcpu::new(self.inner.clone(), id)
    }

    fn create_irq_chip(&self) -> Result<()> {
        // The I/O APIC and PIC are ours and always there; WHP emulates the local APICs.
        Ok(())
    }

    fn create_pit(&self) -> Result<()> {
        Err(Error::Unsupported("an in-kernel PIT"))
    }

    fn set_irq_line(&self, irq: u32, level: bool) -> Result<()> {
        self.inner
            .interrupts
            .set_irq(irq, level)
            .map_err(|e| Error::SetIrqLine {
                irq,
                source: e.into(),
            })
    }
}

impl VmEvents for WhpVm {
    fn register_irq_event(&self, event: &Event, irq: u32) -> Result<()> {
        self.inner.irq_events.register(event, irq)
    }

    fn unregister_irq_event(&self, event: &Event, irq: u32) -> Result<()> {
        self.inner.irq_events.unregister(event, irq)
    }

    fn register_io_event(
        &self,
        event: &Event,
        address: IoEventAddress,
        datamatch: Datamatch,
    ) -> Result<()> {
        let doorbell = doorbell(address, datamatch)?;
        self.inner
            .api()
            .register_doorbell(
                self.inner.partition.handle(),
                &doorbell,
                event.as_raw_descriptor(),
            )
            .map_err(|e| Error::RegisterIoEvent(e.into()))
    }

    fn unregister_io_event(
        &self,
        _event: &Event,
        address: IoEventAddress,
        datamatch: Datamatch,
    ) -> Result<()> {
        let doorbell = doorbell(address, datamatch)?;
        self.inner
            .api()
            .unregister_doorbell(self.inner.partition.handle(), &doorbell)
            .map_err(|e| Error::UnregisterIoEvent(e.into()))
    }
}
