//! Guest RAM: a [`GuestMemoryMmap`] laid out around the x86 MMIO gap, its e820 map, and its
//! registration with the hypervisor.

use lcow_hypervisor::{MemoryRegion, Vm};
use vm_memory::{
    Address, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

use crate::layout::{EBDA_START, HIMEM_START, MMIO_GAP_END, MMIO_GAP_START, PAGE_SIZE};

/// The least guest RAM we accept: the kernel goes to 16 MiB and needs room above it.
pub const MIN_MEMORY: u64 = 32 << 20;
/// The most guest RAM we accept (1 TiB).
pub const MAX_MEMORY: u64 = 1 << 40;

/// Errors of setting up guest memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size is not a whole number of pages, or out of bounds.
    #[error(
        "invalid guest memory size {size:#x}: must be a multiple of 4 KiB between 32 MiB and 1 TiB"
    )]
    InvalidSize {
        /// The requested size in bytes.
        size: u64,
    },
    /// Allocating the host memory failed.
    #[error("failed to allocate {size:#x} bytes of guest memory")]
    Allocate {
        /// The requested size in bytes.
        size: u64,
        /// The cause.
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
    /// Finding the host address of a region failed.
    #[error("failed to find the host address of guest memory at {addr:#x}")]
    HostAddress {
        /// The region's guest address.
        addr: u64,
        /// The cause.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// Mapping a region into the VM failed.
    #[error("failed to map guest memory at {addr:#x} into the vm")]
    MapIntoVm {
        /// The region's guest address.
        addr: u64,
        /// The cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
}

/// The guest RAM ranges `(start, size)` for `size` bytes: from 0 up to the MMIO gap, the rest
/// from 4 GiB.
pub fn ram_ranges(size: u64) -> Vec<(u64, u64)> {
    if size <= MMIO_GAP_START {
        vec![(0, size)]
    } else {
        vec![(0, MMIO_GAP_START), (MMIO_GAP_END, size - MMIO_GAP_START)]
    }
}

/// The end of RAM below the MMIO gap.
pub fn low_ram_end(size: u64) -> u64 {
    size.min(MMIO_GAP_START)
}

/// The kind of an e820 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E820Kind {
    /// Usable RAM (e820 type 1).
    Ram,
    /// Reserved (e820 type 2).
    Reserved,
}

impl E820Kind {
    /// The e820 type number.
    pub fn code(self) -> u32 {
        match self {
            E820Kind::Ram => 1,
            E820Kind::Reserved => 2,
        }
    }
}

/// One e820 memory map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// What it is.
    pub kind: E820Kind,
}

/// The e820 map the guest gets for `size` bytes of RAM: base memory up to the EBDA (the MP
/// table lives just above), RAM from 1 MiB to the MMIO gap, and RAM above 4 GiB.
pub fn e820_map(size: u64) -> Vec<E820Entry> {
    let ram = |addr, size| E820Entry {
        addr,
        size,
        kind: E820Kind::Ram,
    };
    let mut map = vec![ram(0, EBDA_START)];
    for (start, len) in ram_ranges(size) {
        let end = start.saturating_add(len);
        let start = start.max(HIMEM_START);
        if end > start {
            map.push(ram(start, end - start));
        }
    }
    map
}

/// Allocates `size` bytes of guest RAM (anonymous, private host memory).
pub fn create_guest_memory(size: u64) -> Result<GuestMemoryMmap, MemoryError> {
    if size % PAGE_SIZE != 0 || !(MIN_MEMORY..=MAX_MEMORY).contains(&size) {
        return Err(MemoryError::InvalidSize { size });
    }
    let ranges: Vec<(GuestAddress, usize)> = ram_ranges(size)
        .into_iter()
        .map(|(start, len)| (GuestAddress(start), len as usize))
        .collect();
    GuestMemoryMmap::from_ranges(&ranges).map_err(|source| MemoryError::Allocate { size, source })
}

/// Maps every region of `mem` into `vm`.
///
/// `mem` must outlive `vm`'s use of it: keep both together and drop the VM (or remove the
/// slots) first.
pub fn map_into_vm<V: Vm>(vm: &V, mem: &GuestMemoryMmap) -> Result<(), MemoryError> {
    for region in mem.iter() {
        let addr = region.start_addr().raw_value();
        let host = region
            .get_host_address(MemoryRegionAddress(0))
            .map_err(|source| MemoryError::HostAddress { addr, source })?;
        let region = MemoryRegion {
            guest_address: addr,
            size: region.len(),
            host_address: host as usize,
            read_only: false,
        };
        // SAFETY: the region is an mmap of `region.size` bytes owned by `mem`, which the caller
        // keeps alive as long as the VM (the `Vmm` drops the VM before the memory). The VMM only
        // touches guest memory through vm-memory's volatile accessors, never through Rust
        // references that assume exclusive access.
        unsafe { vm.add_memory_region(region) }
            .map_err(|source| MemoryError::MapIntoVm { addr, source })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn test_ram_ranges_below_gap_one_range() {
        assert_eq!(ram_ranges(256 * MIB), [(0, 256 * MIB)]);
        assert_eq!(ram_ranges(3 * GIB), [(0, 3 * GIB)]);
        assert_eq!(low_ram_end(256 * MIB), 256 * MIB);
    }

    #[test]
    fn test_ram_ranges_above_gap_split_at_4g() {
        assert_eq!(ram_ranges(5 * GIB), [(0, 3 * GIB), (4 * GIB, 2 * GIB)]);
        assert_eq!(low_ram_end(5 * GIB), 3 * GIB);
    }

    #[test]
    fn test_e820_small_ram_base_and_high_memory() {
        let map = e820_map(256 * MIB);

        assert_eq!(
            map,
            [
                E820Entry {
                    addr: 0,
                    size: EBDA_START,
                    kind: E820Kind::Ram
                },
                E820Entry {
                    addr: HIMEM_START,
                    size: 256 * MIB - HIMEM_START,
                    kind: E820Kind::Ram
                },
            ]
        );
    }

    #[test]
    fn test_e820_large_ram_skips_mmio_gap() {
        let map = e820_map(5 * GIB);

        let spans: Vec<(u64, u64)> = map.iter().map(|e| (e.addr, e.addr + e.size)).collect();
        assert_eq!(
            spans,
            [(0, EBDA_START), (HIMEM_START, 3 * GIB), (4 * GIB, 6 * GIB)]
        );
        assert!(map.iter().all(|e| e.kind == E820Kind::Ram));
        let total: u64 = map.iter().map(|e| e.size).sum();
        assert!(total < 5 * GIB && total > 5 * GIB - 2 * MIB);
    }

    #[test]
    fn test_create_guest_memory_regions_match_layout() {
        let mem = create_guest_memory(64 * MIB).unwrap();

        let regions: Vec<(u64, u64)> = mem
            .iter()
            .map(|r| (r.start_addr().raw_value(), r.len()))
            .collect();
        assert_eq!(regions, [(0, 64 * MIB)]);
    }

    #[test]
    fn test_create_guest_memory_bad_sizes_rejected() {
        for size in [0, MIB, 64 * MIB + 1, 2 << 40] {
            assert!(
                matches!(
                    create_guest_memory(size),
                    Err(MemoryError::InvalidSize { .. })
                ),
                "{size:#x}"
            );
        }
    }
}
