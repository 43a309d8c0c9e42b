//! The VM's virtio devices: which virtio-mmio slots they take (declared on the kernel command
//! line), their transports on the MMIO bus, their interrupt lines (irqfd) and queue
//! notifications (ioeventfd when the hypervisor has it, else the transport's `QueueNotify`
//! register), and the device threads, stopped when the VM ends.
//!
//! So far there is one device: vsock with its hybrid-vsock socket (`--vsock PATH`). The socket
//! file is removed when the device is dropped at the VM's end.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use lcow_devices::virtio::mmio::{reg, MmioTransport};
use lcow_devices::virtio::vsock::{Limits, Vsock, VsockStopper, DEFAULT_GUEST_CID};
use lcow_devices::virtio_mmio::{Slot, SlotAllocator};
use lcow_devices::{Bus, IrqTrigger};
use lcow_hypervisor::{Capability, Datamatch, IoEventAddress, VmLinuxExt};
use vm_memory::GuestMemoryMmap;

use crate::config::VmConfig;
use crate::vmm::VmmError;

/// The virtio-mmio slots of a VM's devices, decided before boot so the command line can
/// declare them.
#[derive(Debug, Clone, Default)]
pub struct SlotPlan {
    /// Every allocated slot, for the command line.
    pub slots: SlotAllocator,
    /// The vsock device's slot.
    pub vsock: Option<Slot>,
}

/// Allocates a slot for each device `config` asks for.
pub fn plan_slots(config: &VmConfig) -> Result<SlotPlan, VmmError> {
    let mut plan = SlotPlan::default();
    if config.vsock.is_some() {
        plan.vsock = Some(plan.slots.allocate().map_err(VmmError::AllocateSlot)?);
    }
    Ok(plan)
}

/// The running device threads; dropping this stops and joins them.
#[derive(Debug, Default)]
pub struct DeviceThreads {
    threads: Vec<(String, VsockStopper, JoinHandle<()>)>,
}

impl DeviceThreads {
    /// Stops every device thread and waits for it.
    pub fn stop(&mut self) {
        for (name, stopper, handle) in self.threads.drain(..) {
            if let Err(e) = stopper.stop() {
                tracing::warn!(thread = name.as_str(), error = %e, "cannot stop a device thread");
                continue; // joining would hang
            }
            if handle.join().is_err() {
                tracing::warn!(thread = name.as_str(), "a device thread panicked");
            }
        }
    }
}

impl Drop for DeviceThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts every planned device on `mmio` and starts its thread.
pub fn attach_devices<V: VmLinuxExt>(
    vm: &V,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    config: &VmConfig,
    plan: &SlotPlan,
    threads: &mut DeviceThreads,
) -> Result<(), VmmError> {
    if let (Some(path), Some(slot)) = (&config.vsock, plan.vsock) {
        attach_vsock(vm, mem, mmio, slot, path, threads)?;
    }
    Ok(())
}

fn attach_vsock<V: VmLinuxExt>(
    vm: &V,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    slot: Slot,
    path: &Path,
    threads: &mut DeviceThreads,
) -> Result<(), VmmError> {
    const NAME: &str = "vsock";
    let (device, worker) =
        Vsock::new(DEFAULT_GUEST_CID, path, Limits::default()).map_err(VmmError::CreateVsock)?;
    let irq = IrqTrigger::new().map_err(|source| VmmError::CreateIrq {
        device: "vsock device",
        source,
    })?;
    let transport = MmioTransport::new(mem.clone(), Box::new(device), irq).map_err(|source| {
        VmmError::CreateTransport {
            device: NAME,
            source,
        }
    })?;
    vm.register_irqfd(transport.interrupt().irq().event(), slot.irq)
        .map_err(|source| VmmError::RegisterIrq {
            irq: slot.irq,
            source,
        })?;
    register_queue_notifications(vm, &transport, slot);
    mmio.insert(NAME, slot.addr, slot.size, Arc::new(Mutex::new(transport)))
        .map_err(VmmError::AddDevice)?;
    let stopper = worker.stopper().map_err(|source| VmmError::SpawnThread {
        name: NAME.to_owned(),
        source,
    })?;
    let handle = thread::Builder::new()
        .name(NAME.to_owned())
        .spawn(move || worker.run())
        .map_err(|source| VmmError::SpawnThread {
            name: NAME.to_owned(),
            source,
        })?;
    threads.threads.push((NAME.to_owned(), stopper, handle));
    tracing::info!(
        path = %path.display(),
        addr = slot.addr,
        irq = slot.irq,
        guest_cid = DEFAULT_GUEST_CID,
        "vsock device ready"
    );
    Ok(())
}

/// The fast path for queue notifications: the hypervisor signals the queue's eventfd on the
/// guest's `QueueNotify` write without a vCPU exit. Without it the transport does the same on
/// the exit, so a failure here only costs speed.
fn register_queue_notifications<V: VmLinuxExt>(vm: &V, transport: &MmioTransport, slot: Slot) {
    if !vm.check_capability(Capability::Ioeventfd) {
        tracing::debug!("no ioeventfd: queue notifications exit to the vmm");
        return;
    }
    let address = IoEventAddress::Mmio(slot.addr + reg::QUEUE_NOTIFY);
    for (index, event) in transport.device().queue_events().iter().enumerate() {
        let datamatch = Datamatch::U32(index as u32);
        if let Err(e) = vm.register_ioevent(event, address, datamatch) {
            tracing::debug!(queue = index, error = %e, "ioeventfd not registered; slow path");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Console;

    fn config(vsock: Option<PathBuf>) -> VmConfig {
        VmConfig {
            kernel: PathBuf::from("k"),
            initrd: None,
            cmdline: String::new(),
            memory: 64 << 20,
            vcpus: 1,
            console: Console::Off,
            vsock,
        }
    }

    #[test]
    fn test_plan_slots_vsock_gets_first_slot_and_cmdline_token() {
        let plan = plan_slots(&config(Some(PathBuf::from("/tmp/v.sock")))).unwrap();

        let slot = plan.vsock.unwrap();
        assert_eq!((slot.addr, slot.irq), (0xd000_0000, 5));
        assert_eq!(
            plan.slots.cmdline_tokens(),
            ["virtio_mmio.device=4K@0xd0000000:5"]
        );
    }

    #[test]
    fn test_plan_slots_no_devices_no_tokens() {
        let plan = plan_slots(&config(None)).unwrap();

        assert!(plan.vsock.is_none());
        assert!(plan.slots.cmdline_tokens().is_empty());
    }
}
