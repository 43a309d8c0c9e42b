//! Booting the guest kernel: loading it (PVH `vmlinux` first, bzImage as the fallback), the
//! initramfs and the command line into guest memory, writing the boot protocol's structures, and
//! the boot vCPU's initial state.
//!
//! - [`pvh`]: an uncompressed `vmlinux` whose ELF notes carry a Xen PVH entry point starts in
//!   32-bit protected mode with paging off and `rbx` pointing at an `hvm_start_info`. No
//!   decompression, the fastest path (docs/architecture.md).
//! - [`linux`]: a bzImage starts at its 64-bit entry (Linux boot protocol 2.x) with a zero page
//!   and identity page tables.

pub mod cpu_state;
pub mod linux;
pub mod pvh;

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use linux_loader::configurator::Error as ConfiguratorError;
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::bzimage::{BzImage, Error as BzImageError};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::{Error as LoaderError, KernelLoader};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout::{page_align_down, page_align_up, CMDLINE_START, HIMEM_START};

/// Errors of loading and configuring the guest kernel.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The kernel file cannot be opened.
    #[error("cannot open the kernel {}", path.display())]
    OpenKernel {
        /// The kernel path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The kernel file cannot be read.
    #[error("cannot read the kernel {}", path.display())]
    ReadKernel {
        /// The kernel path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The kernel is neither an ELF `vmlinux` nor a bzImage.
    #[error(
        "{} is neither an uncompressed vmlinux (ELF) with a PVH note nor a bzImage",
        path.display()
    )]
    UnknownKernelFormat {
        /// The kernel path.
        path: PathBuf,
    },
    /// The kernel is an ELF file without the Xen PVH entry note.
    #[error(
        "{} is an ELF kernel without a PVH entry note (build it with CONFIG_PVH=y, or boot its \
         bzImage)",
        path.display()
    )]
    ElfWithoutPvhNote {
        /// The kernel path.
        path: PathBuf,
    },
    /// Loading the kernel into guest memory failed.
    #[error("failed to load the kernel {} into guest memory", path.display())]
    LoadKernel {
        /// The kernel path.
        path: PathBuf,
        /// The loader's cause.
        #[source]
        source: LoaderError,
    },
    /// The initramfs file cannot be opened.
    #[error("cannot open the initramfs {}", path.display())]
    OpenInitrd {
        /// The initramfs path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The initramfs does not fit between the kernel and the top of low RAM.
    #[error(
        "the initramfs {} ({size} bytes) does not fit in guest RAM: {available} bytes are free \
         between the kernel and the top of low memory (give the VM more memory)",
        path.display()
    )]
    InitrdTooLarge {
        /// The initramfs path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The room there is.
        available: u64,
    },
    /// Reading the initramfs into guest memory failed.
    #[error("failed to read the initramfs {} into guest memory", path.display())]
    ReadInitrd {
        /// The initramfs path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// Writing the command line into guest memory failed.
    #[error("failed to write the kernel command line into guest memory")]
    WriteCmdline(#[source] vm_memory::GuestMemoryError),
    /// Writing a boot structure (zero page, PVH start info, GDT, page tables) failed.
    #[error("failed to write the {what} into guest memory")]
    WriteBootStructure {
        /// The structure.
        what: &'static str,
        /// The cause.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// The boot configurator could not write the boot parameters.
    #[error("failed to write the {protocol} boot parameters")]
    WriteBootParams {
        /// "pvh" or "linux".
        protocol: &'static str,
        /// The cause.
        #[source]
        source: ConfiguratorError,
    },
    /// The memory map has more entries than the boot protocol has room for.
    #[error("the memory map has {count} entries, more than the {max} the boot protocol takes")]
    TooManyMemoryMapEntries {
        /// The entries.
        count: usize,
        /// The room.
        max: usize,
    },
}

/// How the loaded kernel is entered.
#[derive(Debug, Clone, Copy)]
pub enum KernelEntry {
    /// The PVH entry point: 32-bit protected mode, paging off, `rbx` = start info.
    Pvh {
        /// Guest physical address of the PVH entry.
        entry: u64,
    },
    /// The bzImage 64-bit entry (`load_addr + 0x200`), `rsi` = zero page.
    Linux64 {
        /// Where the protected-mode kernel was loaded.
        load_addr: u64,
        /// The image's setup header, the start of the zero page.
        setup_header: setup_header,
    },
}

/// A kernel in guest memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// How to enter it.
    pub entry: KernelEntry,
    /// The first guest physical address past the kernel image.
    pub kernel_end: u64,
}

/// An initramfs in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initrd {
    /// Guest physical address (page-aligned).
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// Loads the kernel at `path` into `mem`: an ELF `vmlinux` must have a PVH note; anything else
/// must be a bzImage.
pub fn load_kernel(mem: &GuestMemoryMmap, path: &Path) -> Result<LoadedKernel, BootError> {
    let open_error = |source| BootError::OpenKernel {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path)
        .and_then(crate::sys::image)
        .map_err(open_error)?;
    let mut magic = [0u8; 4];
    let read = file
        .read(&mut magic)
        .and_then(|n| file.rewind().map(|()| n))
        .map_err(|source| BootError::ReadKernel {
            path: path.to_owned(),
            source,
        })?;
    let load_error = |source| BootError::LoadKernel {
        path: path.to_owned(),
        source,
    };
    let himem = Some(GuestAddress(HIMEM_START));
    if read == magic.len() && magic == ELF_MAGIC {
        let result = Elf::load(mem, None, &mut file, himem).map_err(load_error)?;
        return match result.pvh_boot_cap {
            PvhBootCapability::PvhEntryPresent(entry) => Ok(LoadedKernel {
                entry: KernelEntry::Pvh {
                    entry: entry.raw_value(),
                },
                kernel_end: result.kernel_end,
            }),
            _ => Err(BootError::ElfWithoutPvhNote {
                path: path.to_owned(),
            }),
        };
    }
    match BzImage::load(mem, None, &mut file, himem) {
        Ok(result) => match result.setup_header {
            Some(setup_header) => Ok(LoadedKernel {
                entry: KernelEntry::Linux64 {
                    load_addr: result.kernel_load.raw_value(),
                    setup_header,
                },
                kernel_end: result.kernel_end,
            }),
            None => Err(BootError::UnknownKernelFormat {
                path: path.to_owned(),
            }),
        },
        Err(LoaderError::Bzimage(
            BzImageError::InvalidBzImage
            | BzImageError::ReadBzImageHeader
            | BzImageError::SeekBzImageHeader,
        )) => Err(BootError::UnknownKernelFormat {
            path: path.to_owned(),
        }),
        Err(source) => Err(load_error(source)),
    }
}

/// Where an initramfs of `size` bytes goes: page-aligned at the top of `[lowest, top)`, or
/// `None` if it does not fit.
pub fn initrd_placement(size: u64, lowest: u64, top: u64) -> Option<u64> {
    let lowest = page_align_up(lowest)?;
    let addr = page_align_down(top.checked_sub(size)?);
    (addr >= lowest).then_some(addr)
}

/// Loads the initramfs at `path` page-aligned at the top of `[kernel_end, top)`.
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel_end: u64,
    top: u64,
) -> Result<Initrd, BootError> {
    let open_error = |source| BootError::OpenInitrd {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(open_error)?;
    let size = file.metadata().map_err(open_error)?.len();
    let mut file = crate::sys::image(file).map_err(open_error)?;
    let addr =
        initrd_placement(size, kernel_end, top).ok_or_else(|| BootError::InitrdTooLarge {
            path: path.to_owned(),
            size,
            available: top.saturating_sub(page_align_up(kernel_end).unwrap_or(u64::MAX)),
        })?;
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, len)
        .map_err(|source| BootError::ReadInitrd {
            path: path.to_owned(),
            source,
        })?;
    Ok(Initrd { addr, size })
}

/// Writes the NUL-terminated command line `bytes` at [`CMDLINE_START`].
pub fn write_cmdline(mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<(), BootError> {
    mem.write_slice(bytes, GuestAddress(CMDLINE_START))
        .map_err(BootError::WriteCmdline)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::memory::create_guest_memory;

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lcow-vmm-boot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        path
    }

    #[test]
    fn test_load_kernel_missing_file_open_error() {
        let mem = create_guest_memory(32 << 20).unwrap();

        let err = load_kernel(&mem, Path::new("/nonexistent/vmlinux")).unwrap_err();

        assert!(matches!(err, BootError::OpenKernel { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/vmlinux"));
    }

    #[test]
    fn test_load_kernel_text_file_unknown_format() {
        let mem = create_guest_memory(32 << 20).unwrap();
        let path = temp_file("not-a-kernel", &[b'x'; 8192]);

        let err = load_kernel(&mem, &path).unwrap_err();

        assert!(
            matches!(err, BootError::UnknownKernelFormat { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("neither"));
    }

    #[test]
    fn test_load_kernel_tiny_file_unknown_format() {
        let mem = create_guest_memory(32 << 20).unwrap();
        let path = temp_file("tiny", b"MZ");

        let err = load_kernel(&mem, &path).unwrap_err();

        assert!(
            matches!(err, BootError::UnknownKernelFormat { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn test_initrd_placement_top_page_aligned() {
        assert_eq!(
            initrd_placement(0x1800, 0x100_0000, 0x1000_0000),
            Some(0x1000_0000 - 0x2000)
        );
        assert_eq!(initrd_placement(0, 0x1000, 0x5000), Some(0x5000));
    }

    #[test]
    fn test_initrd_placement_too_large_none() {
        assert_eq!(initrd_placement(0x1000_0000, 0x100_0000, 0x1000_0000), None);
        assert_eq!(initrd_placement(u64::MAX, 0, 0x1000), None);
    }

    #[test]
    fn test_load_initrd_too_large_for_ram_named_error() {
        let mem = create_guest_memory(32 << 20).unwrap();
        let path = temp_file("big-initrd", &vec![0u8; 3 << 20]);

        let err = load_initrd(&mem, &path, 30 << 20, 32 << 20).unwrap_err();

        assert!(
            matches!(err, BootError::InitrdTooLarge { size, .. } if size == 3 << 20),
            "{err:?}"
        );
    }

    #[test]
    fn test_load_initrd_contents_at_top_of_ram() {
        let mem = create_guest_memory(32 << 20).unwrap();
        let path = temp_file("small-initrd", b"070701initramfs");

        let initrd = load_initrd(&mem, &path, 16 << 20, 32 << 20).unwrap();

        assert_eq!(
            initrd,
            Initrd {
                addr: (32 << 20) - 0x1000,
                size: 15
            }
        );
        let mut back = [0u8; 15];
        mem.read_slice(&mut back, GuestAddress(initrd.addr))
            .unwrap();
        assert_eq!(&back, b"070701initramfs");
    }
}
