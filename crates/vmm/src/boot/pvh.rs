//! The PVH boot protocol: `hvm_start_info`, its memory map and module list (the initramfs).
//! See <https://xenbits.xen.org/docs/unstable/misc/pvh.html>.

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info, XEN_HVM_START_MAGIC_VALUE,
};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{BootError, Initrd};
use crate::layout::{
    CMDLINE_START, PVH_INFO_START, PVH_MEMMAP_MAX_ENTRIES, PVH_MEMMAP_START, PVH_MODLIST_START,
};
use crate::memory::E820Entry;

/// The `hvm_start_info` for a guest with `memmap_entries` memory map entries and `initrd`.
pub fn start_info(memmap_entries: usize, initrd: Option<Initrd>) -> hvm_start_info {
    hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        cmdline_paddr: CMDLINE_START,
        memmap_paddr: PVH_MEMMAP_START,
        memmap_entries: u32::try_from(memmap_entries).unwrap_or(u32::MAX),
        nr_modules: u32::from(initrd.is_some()),
        modlist_paddr: if initrd.is_some() {
            PVH_MODLIST_START
        } else {
            0
        },
        ..Default::default()
    }
}

/// Writes the start info at [`PVH_INFO_START`], the memory map `e820` and the initramfs module.
pub fn write_start_info(
    mem: &GuestMemoryMmap,
    e820: &[E820Entry],
    initrd: Option<Initrd>,
) -> Result<(), BootError> {
    if e820.len() > PVH_MEMMAP_MAX_ENTRIES {
        return Err(BootError::TooManyMemoryMapEntries {
            count: e820.len(),
            max: PVH_MEMMAP_MAX_ENTRIES,
        });
    }
    let info = start_info(e820.len(), initrd);
    let mut params = BootParams::new(&info, GuestAddress(PVH_INFO_START));
    let memmap: Vec<hvm_memmap_table_entry> = e820
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind.code(),
            reserved: 0,
        })
        .collect();
    params.set_sections(&memmap, GuestAddress(PVH_MEMMAP_START));
    if let Some(initrd) = initrd {
        let module = hvm_modlist_entry {
            paddr: initrd.addr,
            size: initrd.size,
            ..Default::default()
        };
        params.set_modules(&[module], GuestAddress(PVH_MODLIST_START));
    }
    PvhBootConfigurator::write_bootparams(&params, mem).map_err(|source| {
        BootError::WriteBootParams {
            protocol: "pvh",
            source,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use vm_memory::Bytes;

    use super::*;
    use crate::memory::{create_guest_memory, e820_map};

    #[test]
    fn test_write_start_info_contents_in_guest_memory() {
        let mem = create_guest_memory(256 << 20).unwrap();
        let e820 = e820_map(256 << 20);
        let initrd = Initrd {
            addr: 0x0f00_0000,
            size: 0x1234,
        };

        write_start_info(&mem, &e820, Some(initrd)).unwrap();

        let info: hvm_start_info = mem.read_obj(GuestAddress(PVH_INFO_START)).unwrap();
        assert_eq!(info.magic, 0x336e_c578);
        assert_eq!(info.version, 1);
        assert_eq!(info.cmdline_paddr, CMDLINE_START);
        assert_eq!(info.rsdp_paddr, 0, "no acpi");
        assert_eq!(
            (info.memmap_paddr, info.memmap_entries),
            (PVH_MEMMAP_START, 2)
        );
        assert_eq!(
            (info.nr_modules, info.modlist_paddr),
            (1, PVH_MODLIST_START)
        );
        let high: hvm_memmap_table_entry =
            mem.read_obj(GuestAddress(PVH_MEMMAP_START + 24)).unwrap();
        assert_eq!(
            (high.addr, high.size, high.type_),
            (0x10_0000, (256 << 20) - 0x10_0000, 1)
        );
        let module: hvm_modlist_entry = mem.read_obj(GuestAddress(PVH_MODLIST_START)).unwrap();
        assert_eq!((module.paddr, module.size), (0x0f00_0000, 0x1234));
    }

    #[test]
    fn test_start_info_without_initrd_no_modules() {
        let info = start_info(3, None);
        assert_eq!((info.nr_modules, info.modlist_paddr), (0, 0));
        assert_eq!(info.memmap_entries, 3);
    }

    #[test]
    fn test_boot_structures_do_not_overlap() {
        assert!(PVH_INFO_START + std::mem::size_of::<hvm_start_info>() as u64 <= PVH_MODLIST_START);
        assert!(
            PVH_MODLIST_START + std::mem::size_of::<hvm_modlist_entry>() as u64 <= PVH_MEMMAP_START
        );
        assert_eq!(std::mem::size_of::<hvm_memmap_table_entry>(), 24);
    }
}
