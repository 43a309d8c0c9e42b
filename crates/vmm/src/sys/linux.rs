//! The VMM on Linux: KVM, the hybrid-vsock device on a unix socket, the passthrough and mapped
//! share backends, and kernel images read straight from their files.

use std::fs::File;
use std::io;
use std::path::Path;

use lcow_devices::virtio::request::RequestWorker;
use lcow_devices::virtio::vsock::{Limits, Vsock, DEFAULT_GUEST_CID};
use lcow_devices::virtio::VirtioDevice;
use lcow_fs::backend::{mapped, passthrough};

use crate::config::{ShareBackend, ShareConfig, VmConfig};
use crate::error::VmmError;
use crate::monitor::ExitReason;
use crate::virtio::{vsock_worker, DeviceWorker};

/// Boots `config` on KVM and runs it until it ends.
pub(crate) fn run(config: &VmConfig) -> Result<ExitReason, VmmError> {
    let hv = lcow_hypervisor::kvm::KvmHypervisor::new()
        .map_err(|e| VmmError::OpenHypervisor(Box::new(e)))?;
    crate::vmm::run_on(&hv, config)
}

/// The vsock device on the unix socket `path` (hybrid vsock) and its thread (`name`).
pub(crate) fn vsock_device(
    path: &Path,
    name: &str,
) -> Result<(Box<dyn VirtioDevice>, DeviceWorker), VmmError> {
    let (device, worker) = Vsock::new(DEFAULT_GUEST_CID, path, Limits::default())
        .map_err(|e| VmmError::CreateVsock(Box::new(e)))?;
    vsock_worker(device, worker, name)
}

/// The device serving `share` with its backend and protocol, and its queue thread.
pub(crate) fn share_device(
    share: &ShareConfig,
) -> Result<(Box<dyn VirtioDevice>, RequestWorker), VmmError> {
    let open_error = |source| VmmError::OpenShare {
        tag: share.tag.clone(),
        source,
    };
    match share.backend {
        ShareBackend::Passthrough => {
            let config = passthrough::Config {
                read_only: share.read_only,
                ..Default::default()
            };
            let backend = passthrough::Passthrough::new(&share.path, config).map_err(open_error)?;
            crate::virtio::share_device(share, backend)
        }
        ShareBackend::Mapped => {
            let config = mapped::Config {
                read_only: share.read_only,
                ..Default::default()
            };
            let backend = mapped::Mapped::new(&share.path, config).map_err(open_error)?;
            crate::virtio::share_device(share, backend)
        }
    }
}

/// A kernel or initramfs file as the loaders read it: the file itself.
pub(crate) type Image = File;

/// `file` ready for the loaders.
pub(crate) fn image(file: File) -> io::Result<Image> {
    Ok(file)
}
