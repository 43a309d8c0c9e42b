//! The VMM on Windows (docs/windows.md): the Windows Hypervisor Platform, whose backend is
//! being written. Until it runs guests, `run` checks the host with `whp::probe` (so a host
//! without WHP is told how to turn it on) and then says the backend is missing; vsock needs the
//! muxer's named-pipe endpoint and shares the NTFS backend, neither written yet.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use lcow_devices::virtio::request::RequestWorker;
use lcow_devices::virtio::VirtioDevice;

use crate::config::{ShareConfig, VmConfig};
use crate::error::VmmError;
use crate::monitor::ExitReason;
use crate::virtio::DeviceWorker;

/// Checks the host's WHP, then refuses: the WHP backend cannot run guests yet.
pub(crate) fn run(_config: &VmConfig) -> Result<ExitReason, VmmError> {
    lcow_hypervisor::whp::probe().map_err(|e| VmmError::OpenHypervisor(Box::new(e)))?;
    Err(VmmError::Unsupported(
        "this host has the Windows Hypervisor Platform, but lcow-vmm's WHP backend cannot run \
         guests yet (docs/windows.md)",
    ))
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
