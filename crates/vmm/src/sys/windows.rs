//! The VMM on Windows (docs/windows.md): guests run on the Windows Hypervisor Platform
//! (`lcow_hypervisor::whp`); a host without it is told how to turn it on before anything else
//! is set up. vsock needs the muxer's named-pipe endpoint and shares the NTFS backend, neither
//! written yet: a configuration that asks for them is refused with that reason.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use lcow_devices::virtio::request::RequestWorker;
use lcow_devices::virtio::VirtioDevice;

use crate::config::{ShareConfig, VmConfig};
use crate::error::VmmError;
use crate::monitor::ExitReason;
use crate::virtio::DeviceWorker;

/// Boots `config` on this host's WHP and runs it until it ends.
pub(crate) fn run(config: &VmConfig) -> Result<ExitReason, VmmError> {
    let hv = lcow_hypervisor::whp::WhpHypervisor::new(config.vcpus)
        .map_err(|e| VmmError::OpenHypervisor(Box::new(e)))?;
    crate::vmm::run_on(&hv, config)
}

/// Refuses: the vsock device's Windows endpoint (a named pipe per guest port) is not written.
pub(crate) fn vsock_device(
    _path: &Path,
    _name: &str,
) -> Result<(Box<dyn VirtioDevice>, DeviceWorker), VmmError> {
    Err(VmmError::Unsupported(
        "vsock on Windows needs the muxer's named-pipe endpoint, which is not written yet \
         (docs/windows.md)",
    ))
}

/// Refuses: shares on Windows need the NTFS backend, which is not written yet.
pub(crate) fn share_device(
    _share: &ShareConfig,
) -> Result<(Box<dyn VirtioDevice>, RequestWorker), VmmError> {
    Err(VmmError::Unsupported(
        "shares on Windows need the NTFS file-server backend, which is not written yet \
         (docs/windows.md)",
    ))
}

/// A kernel or initramfs as the loaders read it: its bytes in memory (vm-memory reads files
/// directly only through unix descriptors).
pub(crate) type Image = Cursor<Vec<u8>>;

/// `file`'s bytes, ready for the loaders.
pub(crate) fn image(mut file: File) -> io::Result<Image> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Cursor::new(bytes))
}
