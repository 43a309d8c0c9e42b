//! The VMM on Windows (docs/windows.md): guests run on the Windows Hypervisor Platform
//! (`lcow_hypervisor::whp`); a host without it is told how to turn it on before anything else
//! is set up. vsock is served on named pipes, one per agent port. Shares are served by the
//! NTFS backend (`lcow_fs::backend::ntfs`: WSL's metadata EAs on NTFS), as `backend=mapped`;
//! `backend=passthrough` (a Linux host's own owners and modes) is refused.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use lcow_devices::virtio::request::RequestWorker;
use lcow_devices::virtio::vsock::{Limits, Vsock, DEFAULT_GUEST_CID};
use lcow_devices::virtio::VirtioDevice;
use lcow_fs::backend::ntfs::{self, sys::windows::WinNt};
use lcow_protocol::vm::ShareBackend;

use crate::config::{ShareConfig, VmConfig};
use crate::error::VmmError;
use crate::monitor::ExitReason;
use crate::virtio::{vsock_worker, DeviceWorker};

/// Boots `config` on this host's WHP and runs it until it ends.
pub(crate) fn run(config: &VmConfig) -> Result<ExitReason, VmmError> {
    let hv = lcow_hypervisor::whp::WhpHypervisor::new(config.vcpus)
        .map_err(|e| VmmError::OpenHypervisor(Box::new(e)))?;
    crate::vmm::run_on(&hv, config)
}

/// The vsock device on named pipes: `path` is the pipe name prefix (`\\.\pipe\lcow-<id>`),
/// and the agent's ttrpc and stdio ports are served as `<path>-1024` and `<path>-1025`
/// (docs/windows.md, "Hybrid vsock on Windows"); its thread is `name`.
pub(crate) fn vsock_device(
    path: &Path,
    name: &str,
) -> Result<(Box<dyn VirtioDevice>, DeviceWorker), VmmError> {
    let ports = [lcow_protocol::AGENT_PORT, lcow_protocol::STDIO_PORT];
    let (device, worker) = Vsock::new_pipes(DEFAULT_GUEST_CID, path, &ports, Limits::default())
        .map_err(|e| VmmError::CreateVsock(Box::new(e)))?;
    vsock_worker(device, worker, name)
}

/// The device serving `share` from an NTFS directory, and its queue thread.
pub(crate) fn share_device(
    share: &ShareConfig,
) -> Result<(Box<dyn VirtioDevice>, RequestWorker), VmmError> {
    if share.backend == ShareBackend::Passthrough {
        return Err(VmmError::Unsupported(
            "backend=passthrough serves a Linux host's own owners and modes; on Windows a \
             share keeps them as WSL metadata on NTFS: use backend=mapped (docs/windows.md)",
        ));
    }
    let open_error = |source| VmmError::OpenShare {
        tag: share.tag.clone(),
        source,
    };
    let root = WinNt::open_dir(&share.path).map_err(|source| {
        open_error(lcow_fs::backend::Error::Host {
            op: "open of the share directory",
            source,
        })
    })?;
    let config = ntfs::Config {
        read_only: share.read_only,
        ..ntfs::Config::default()
    };
    let backend = ntfs::Ntfs::new(WinNt::new(), root, config).map_err(open_error)?;
    crate::virtio::share_device(share, backend)
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
