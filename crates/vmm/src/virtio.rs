//! The VM's virtio devices: which virtio-mmio slots they take (declared on the kernel command
//! line), their transports on the MMIO bus, their interrupt lines (irq events: KVM's irqfd) and
//! queue notifications (io events, KVM's ioeventfd, when the hypervisor has them, else the
//! transport's `QueueNotify` register), and the device threads, stopped when the VM ends.
//!
//! Slots are taken in this order: vsock first (`--vsock PATH`), then one per share
//! (`--share TAG=PATH[,ro][,backend=passthrough|mapped][,proto=9p|virtiofs]`), then one per
//! disk (`--disk PATH[,ro]`), each in command-line order.
//!
//! - **vsock**: virtio-vsock with its hybrid-vsock socket, one thread (`vsock`). The socket file
//!   is removed when the device is dropped at the VM's end.
//! - **shares**: each share is a file server over the chosen backend (`lcow_fs`'s
//!   `Passthrough`, the default, or `Mapped`) behind its own device: virtio-fs
//!   (`proto=virtiofs`, the default, one request queue; `lcow_fs::fuse::server::Server`;
//!   `mount -t virtiofs TAG DIR`) or virtio-9p (`proto=9p`; `lcow_fs::p9::server::Server`; the
//!   guest mounts it as `lcow_protocol::share::GuestMount` says:
//!   `mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap TAG DIR`). Each has a queue thread (`9p` / `virtio-fs`) feeding a worker pool
//!   (`lcow_devices::virtio::request::PoolConfig::default`: 4 workers, growing to 16 while
//!   requests block in lock waits, plus one urgent thread for Tflush and FORGET). Stopping a
//!   share stops its queue thread; pool threads end after their current request.
//! - **disks**: each disk image (raw, VHD or VHDX: `lcow_disk::open`) behind its own
//!   virtio-blk device (`lcow_devices::virtio::block::Block`), `/dev/vda`, `/dev/vdb`, ... in
//!   order, its serial `lcow-disk-N`; a queue thread (`block`) and the same worker pool.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use lcow_devices::virtio::block::Block;
use lcow_devices::virtio::fs::VirtioFs;
use lcow_devices::virtio::mmio::{reg, MmioTransport};
use lcow_devices::virtio::p9::P9;
use lcow_devices::virtio::request::{PoolConfig, RequestStopper, RequestWorker};
use lcow_devices::virtio::vsock::{Vsock, VsockStopper, VsockWorker, DEFAULT_GUEST_CID};
use lcow_devices::virtio::VirtioDevice;
use lcow_devices::virtio_mmio::{Slot, SlotAllocator};
use lcow_devices::{Bus, IrqTrigger};
use lcow_fs::backend::Backend;
use lcow_hypervisor::{Capability, Datamatch, IoEventAddress, VmEvents};
use vm_memory::GuestMemoryMmap;

use crate::config::{DiskConfig, ShareConfig, ShareProtocol, VmConfig};
use crate::error::VmmError;

/// The number of virtio-fs request queues (besides the high-priority one).
const VIRTIOFS_REQUEST_QUEUES: u32 = 1;

/// The virtio-mmio slots of a VM's devices, decided before boot so the command line can
/// declare them.
#[derive(Debug, Clone, Default)]
pub struct SlotPlan {
    /// Every allocated slot, for the command line.
    pub slots: SlotAllocator,
    /// The vsock device's slot.
    pub vsock: Option<Slot>,
    /// One slot per share, in the order of [`VmConfig::shares`].
    pub shares: Vec<Slot>,
    /// One slot per disk, in the order of [`VmConfig::disks`].
    pub disks: Vec<Slot>,
}

/// Allocates a slot for each device `config` asks for.
pub fn plan_slots(config: &VmConfig) -> Result<SlotPlan, VmmError> {
    let mut plan = SlotPlan::default();
    if config.vsock.is_some() {
        plan.vsock = Some(plan.slots.allocate().map_err(VmmError::AllocateSlot)?);
    }
    for _ in &config.shares {
        let slot = plan.slots.allocate().map_err(VmmError::AllocateSlot)?;
        plan.shares.push(slot);
    }
    for _ in &config.disks {
        let slot = plan.slots.allocate().map_err(VmmError::AllocateSlot)?;
        plan.disks.push(slot);
    }
    Ok(plan)
}

/// How a device thread is told to stop.
pub(crate) trait Stopper: Send + std::fmt::Debug {
    /// Asks the thread to return.
    fn stop(&self) -> std::io::Result<()>;
}

impl Stopper for RequestStopper {
    fn stop(&self) -> std::io::Result<()> {
        RequestStopper::stop(self)
    }
}

impl Stopper for VsockStopper {
    fn stop(&self) -> std::io::Result<()> {
        VsockStopper::stop(self)
    }
}

/// A vsock device made by `sys` (unix socket or named pipes) and its thread (`name`).
pub(crate) fn vsock_worker(
    device: Vsock,
    worker: VsockWorker,
    name: &str,
) -> Result<(Box<dyn VirtioDevice>, DeviceWorker), VmmError> {
    let stopper = worker.stopper().map_err(|source| VmmError::SpawnThread {
        name: name.to_owned(),
        source,
    })?;
    tracing::debug!(guest_cid = DEFAULT_GUEST_CID, "vsock device created");
    Ok((
        Box::new(device),
        DeviceWorker {
            stopper: Box::new(stopper),
            body: Box::new(move || worker.run()),
        },
    ))
}

/// A device thread, ready to start: its body and how to stop it.
pub(crate) struct DeviceWorker {
    pub(crate) stopper: Box<dyn Stopper>,
    pub(crate) body: Box<dyn FnOnce() + Send>,
}

/// The running device threads; dropping this stops and joins them.
#[derive(Debug, Default)]
pub struct DeviceThreads {
    threads: Vec<(String, Box<dyn Stopper>, JoinHandle<()>)>,
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

    fn spawn(
        &mut self,
        name: &str,
        stopper: Box<dyn Stopper>,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), VmmError> {
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(body)
            .map_err(|source| VmmError::SpawnThread {
                name: name.to_owned(),
                source,
            })?;
        self.threads.push((name.to_owned(), stopper, handle));
        Ok(())
    }
}

impl Drop for DeviceThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts every planned device on `mmio` and starts its threads.
pub fn attach_devices<V: VmEvents>(
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
    for (share, &slot) in config.shares.iter().zip(&plan.shares) {
        attach_share(vm, mem, mmio, slot, share, threads)?;
    }
    for (index, (disk, &slot)) in config.disks.iter().zip(&plan.disks).enumerate() {
        attach_disk(vm, mem, mmio, slot, index, disk, threads)?;
    }
    Ok(())
}

/// The virtio-blk device serving `disk`, and its queue thread.
pub(crate) fn disk_device(
    index: usize,
    disk: &DiskConfig,
) -> Result<(Block, RequestWorker), VmmError> {
    let path = disk.path.display().to_string();
    let image =
        lcow_disk::open(&disk.path, disk.read_only).map_err(|source| VmmError::OpenDisk {
            path: path.clone(),
            source,
        })?;
    Block::new(
        Arc::from(image),
        &format!("lcow-disk-{index}"),
        PoolConfig::default(),
    )
    .map_err(|source| VmmError::CreateBlock { path, source })
}

fn attach_disk<V: VmEvents>(
    vm: &V,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    slot: Slot,
    index: usize,
    disk: &DiskConfig,
    threads: &mut DeviceThreads,
) -> Result<(), VmmError> {
    const NAME: &str = "block";
    let (device, worker) = disk_device(index, disk)?;
    let stopper = worker.stopper().map_err(|source| VmmError::SpawnThread {
        name: NAME.to_owned(),
        source,
    })?;
    install(vm, mem, mmio, slot, NAME, Box::new(device))?;
    threads.spawn(NAME, Box::new(stopper), move || worker.run())?;
    tracing::info!(
        path = %disk.path.display(),
        read_only = disk.read_only,
        addr = slot.addr,
        irq = slot.irq,
        "disk device ready"
    );
    Ok(())
}

fn attach_vsock<V: VmEvents>(
    vm: &V,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    slot: Slot,
    path: &Path,
    threads: &mut DeviceThreads,
) -> Result<(), VmmError> {
    const NAME: &str = "vsock";
    let (device, worker) = crate::sys::vsock_device(path, NAME)?;
    install(vm, mem, mmio, slot, NAME, device)?;
    threads.spawn(NAME, worker.stopper, worker.body)?;
    tracing::info!(
        path = %path.display(),
        addr = slot.addr,
        irq = slot.irq,
        "vsock device ready"
    );
    Ok(())
}

fn attach_share<V: VmEvents>(
    vm: &V,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    slot: Slot,
    share: &ShareConfig,
    threads: &mut DeviceThreads,
) -> Result<(), VmmError> {
    let (device, worker) = crate::sys::share_device(share)?;
    let name = match share.protocol {
        ShareProtocol::P9 => "9p",
        ShareProtocol::VirtioFs => "virtio-fs",
    };
    let stopper = worker.stopper().map_err(|source| VmmError::SpawnThread {
        name: name.to_owned(),
        source,
    })?;
    install(vm, mem, mmio, slot, name, device)?;
    threads.spawn(name, Box::new(stopper), move || worker.run())?;
    tracing::info!(
        tag = share.tag.as_str(),
        path = %share.path.display(),
        read_only = share.read_only,
        backend = ?share.backend,
        protocol = share.protocol.name(),
        addr = slot.addr,
        irq = slot.irq,
        "share device ready"
    );
    Ok(())
}

/// The device of `share` serving `backend` with the share's protocol, and its queue thread.
pub(crate) fn share_device<B: Backend + 'static>(
    share: &ShareConfig,
    backend: B,
) -> Result<(Box<dyn VirtioDevice>, RequestWorker), VmmError> {
    let pool = PoolConfig::default();
    match share.protocol {
        ShareProtocol::P9 => {
            let server = lcow_fs::p9::server::Server::new(backend);
            let (device, worker) =
                P9::new(&share.tag, server, pool).map_err(|source| VmmError::CreateP9 {
                    tag: share.tag.clone(),
                    source,
                })?;
            Ok((Box::new(device), worker))
        }
        ShareProtocol::VirtioFs => virtiofs_device(share, backend, pool),
    }
}

/// The virtio-fs device of `share`: `lcow_fs::fuse::server::Server` over `backend`.
fn virtiofs_device<B: Backend + 'static>(
    share: &ShareConfig,
    backend: B,
    pool: PoolConfig,
) -> Result<(Box<dyn VirtioDevice>, RequestWorker), VmmError> {
    use lcow_fs::fuse::server::{Options, Server};
    let server = Server::new(backend, Options::default());
    let (device, worker) = VirtioFs::new(&share.tag, VIRTIOFS_REQUEST_QUEUES, server, pool)
        .map_err(|source| VmmError::CreateVirtioFs {
            tag: share.tag.clone(),
            source,
        })?;
    Ok((Box::new(device), worker))
}

/// Puts `device` behind a virtio-mmio transport in `slot`: its interrupt as an irq event, its
/// queue notifications as io events when possible, its register window on `mmio`.
fn install<V: VmEvents>(
    vm: &V,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    slot: Slot,
    name: &'static str,
    device: Box<dyn VirtioDevice>,
) -> Result<(), VmmError> {
    let irq = vm
        .irq_event(slot.irq)
        .map(IrqTrigger::from_event)
        .map_err(|source| VmmError::RegisterIrq {
            irq: slot.irq,
            source,
        })?;
    let transport = MmioTransport::new(mem.clone(), device, irq).map_err(|source| {
        VmmError::CreateTransport {
            device: name,
            source,
        }
    })?;
    register_queue_notifications(vm, &transport, slot);
    mmio.insert(name, slot.addr, slot.size, Arc::new(Mutex::new(transport)))
        .map_err(VmmError::AddDevice)
}

/// The fast path for queue notifications: the hypervisor signals the queue's event on the
/// guest's `QueueNotify` write without a vCPU exit. Without it the transport does the same on
/// the exit, so a failure here only costs speed.
fn register_queue_notifications<V: VmEvents>(vm: &V, transport: &MmioTransport, slot: Slot) {
    if !vm.check_capability(Capability::Ioeventfd) {
        tracing::debug!("no io events: queue notifications exit to the vmm");
        return;
    }
    let address = IoEventAddress::Mmio(slot.addr + reg::QUEUE_NOTIFY);
    for (index, event) in transport.device().queue_events().iter().enumerate() {
        let datamatch = Datamatch::U32(index as u32);
        if let Err(e) = vm.register_io_event(event, address, datamatch) {
            tracing::debug!(queue = index, error = %e, "io event not registered; slow path");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Console, ShareBackend};

    fn config(vsock: Option<PathBuf>, shares: Vec<ShareConfig>) -> VmConfig {
        VmConfig {
            kernel: PathBuf::from("k"),
            initrd: None,
            cmdline: String::new(),
            memory: 64 << 20,
            vcpus: 1,
            console: Console::Off,
            vsock,
            shares,
            disks: Vec::new(),
        }
    }

    fn share(tag: &str, protocol: ShareProtocol, backend: ShareBackend) -> ShareConfig {
        ShareConfig {
            tag: tag.to_owned(),
            path: std::env::temp_dir(),
            read_only: false,
            backend,
            protocol,
        }
    }

    #[test]
    fn test_plan_slots_vsock_gets_first_slot_and_cmdline_token() {
        let plan = plan_slots(&config(Some(PathBuf::from("/tmp/v.sock")), vec![])).unwrap();

        let slot = plan.vsock.unwrap();
        assert_eq!((slot.addr, slot.irq), (0xd000_0000, 5));
        assert_eq!(
            plan.slots.cmdline_tokens(),
            ["virtio_mmio.device=4K@0xd0000000:5"]
        );
    }

    #[test]
    fn test_plan_slots_shares_follow_vsock_in_order() {
        let shares = vec![
            share("a", ShareProtocol::P9, ShareBackend::Passthrough),
            share("b", ShareProtocol::VirtioFs, ShareBackend::Mapped),
        ];

        let plan = plan_slots(&config(Some(PathBuf::from("/tmp/v.sock")), shares)).unwrap();

        assert_eq!(plan.shares.len(), 2);
        assert_eq!(plan.slots.cmdline_tokens().len(), 3);
        let vsock = plan.vsock.unwrap();
        assert!(vsock.addr < plan.shares[0].addr && plan.shares[0].addr < plan.shares[1].addr);
    }

    #[test]
    fn test_disks_take_slots_after_shares_and_build_their_devices() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.img");
        std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
        let mut c = config(
            None,
            vec![share("a", ShareProtocol::P9, ShareBackend::Mapped)],
        );
        c.disks = vec![
            DiskConfig {
                path: raw.clone(),
                read_only: true,
            },
            DiskConfig {
                path: raw.clone(),
                read_only: false,
            },
        ];
        let plan = plan_slots(&c).unwrap();
        assert_eq!(plan.disks.len(), 2);
        assert!(
            plan.shares[0].addr < plan.disks[0].addr && plan.disks[0].addr < plan.disks[1].addr
        );
        let (device, _worker) = disk_device(0, &c.disks[0]).unwrap();
        assert_eq!(device.device_type(), 2);
        let ro = 1u64 << lcow_devices::virtio::block::VIRTIO_BLK_F_RO;
        assert_ne!(device.features() & ro, 0, "read-only disk");
        let (device, _worker) = disk_device(1, &c.disks[1]).unwrap();
        assert_eq!(device.features() & ro, 0);
    }

    #[test]
    fn test_corrupt_disk_image_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.vhdx");
        let mut bytes = b"vhdxfile".to_vec();
        bytes.resize(2 << 20, 0);
        std::fs::write(&bad, bytes).unwrap();
        let disk = DiskConfig {
            path: bad,
            read_only: true,
        };
        let Err(err) = disk_device(0, &disk) else {
            panic!("a VHDX without headers was accepted");
        };
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            text.contains("bad.vhdx") && text.contains("no valid header"),
            "{text}"
        );
    }

    #[test]
    fn test_plan_slots_no_devices_no_tokens() {
        let plan = plan_slots(&config(None, vec![])).unwrap();

        assert!(plan.vsock.is_none());
        assert!(plan.shares.is_empty());
        assert!(plan.slots.cmdline_tokens().is_empty());
    }

    /// The share backends are Linux's (passthrough, mapped).
    #[cfg(target_os = "linux")]
    #[test]
    fn test_share_device_every_protocol_and_backend_builds() {
        let dir = tempfile::tempdir().unwrap();
        for protocol in [ShareProtocol::P9, ShareProtocol::VirtioFs] {
            for backend in [ShareBackend::Passthrough, ShareBackend::Mapped] {
                let mut s = share("tag", protocol, backend);
                s.path = dir.path().to_path_buf();

                let (device, _worker) = crate::sys::share_device(&s).unwrap();

                let expected = match protocol {
                    ShareProtocol::P9 => 9,
                    ShareProtocol::VirtioFs => 26,
                };
                assert_eq!(device.device_type(), expected, "{protocol:?} {backend:?}");
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn test_open_share_missing_directory_names_tag() {
        let mut s = share("gone", ShareProtocol::P9, ShareBackend::Passthrough);
        s.path = PathBuf::from("/nonexistent/lcow-share");

        let Err(err) = crate::sys::share_device(&s) else {
            panic!("a share of a missing directory");
        };

        assert_eq!(err.to_string(), "cannot serve share 'gone'");
    }
}
