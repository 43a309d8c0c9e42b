//! The boot vCPU's initial state: the boot GDT and IDT, the identity page tables of the 64-bit
//! entry, and the registers for each entry mode.

use lcow_hypervisor::x86_64::{DescriptorTable, Regs, Segment, Sregs};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{BootError, KernelEntry};
use crate::layout::{
    BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER, IDENTITY_MAPPED_GIB, PDE_START,
    PDPTE_START, PML4_START, PVH_INFO_START, ZERO_PAGE_START,
};

/// Selector of the boot code segment.
pub const CODE_SELECTOR: u16 = 0x08;
/// Selector of the boot data segment.
pub const DATA_SELECTOR: u16 = 0x10;
/// Selector of the boot TSS.
pub const TSS_SELECTOR: u16 = 0x18;

const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// Page table entry: present and writable.
const PTE_PRESENT_RW: u64 = 0x3;
/// Page directory entry: present, writable, 2 MiB page.
const PDE_HUGE: u64 = 0x83;
/// The reserved bit 1 of RFLAGS, always set.
const RFLAGS_RESERVED: u64 = 0x2;
/// Where the bzImage 64-bit entry is, from the protected-mode kernel's load address.
const LINUX64_ENTRY_OFFSET: u64 = 0x200;

/// A GDT descriptor from its access/flags word (`0xc09b`: 4 KiB granular, 32-bit, present,
/// ring 0, execute/read code), base and 20-bit limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    let flags = flags as u64;
    ((base & 0xff00_0000) << (56 - 24))
        | ((flags & 0x0000_f0ff) << 40)
        | ((limit & 0x000f_0000) << (48 - 16))
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0x0000_ffff)
}

/// The segment register state that loading `selector` with `entry` gives.
pub fn segment_from_gdt(entry: u64, selector: u16) -> Segment {
    let bit = |n: u32| (entry >> n) & 1 == 1;
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = ((entry & 0xffff) | ((entry >> 32) & 0x000f_0000)) as u32;
    let g = bit(55);
    let limit = if g {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    Segment {
        base,
        limit,
        selector,
        type_: ((entry >> 40) & 0xf) as u8,
        present: bit(47),
        dpl: ((entry >> 45) & 0x3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g,
        avl: bit(52),
        unusable: !bit(47),
    }
}

/// The boot GDT for an entry: null, code, data, TSS.
pub fn gdt_for(entry: &KernelEntry) -> [u64; 4] {
    let code = match entry {
        KernelEntry::Pvh { .. } => gdt_entry(0xc09b, 0, 0xfffff), // 32-bit
        KernelEntry::Linux64 { .. } => gdt_entry(0xa09b, 0, 0xfffff), // 64-bit
    };
    [
        0,
        code,
        gdt_entry(0xc093, 0, 0xfffff), // read/write data
        gdt_entry(0x008b, 0, 0x67),    // busy 32-bit TSS
    ]
}

fn write_u64(
    mem: &GuestMemoryMmap,
    addr: u64,
    value: u64,
    what: &'static str,
) -> Result<(), BootError> {
    mem.write_obj(value, GuestAddress(addr))
        .map_err(|source| BootError::WriteBootStructure { what, source })
}

/// Writes the GDT and an empty IDT, and for the 64-bit entry the identity page tables of the
/// first [`IDENTITY_MAPPED_GIB`] GiB.
pub fn write_boot_tables(mem: &GuestMemoryMmap, entry: &KernelEntry) -> Result<(), BootError> {
    for (i, descriptor) in gdt_for(entry).into_iter().enumerate() {
        write_u64(mem, BOOT_GDT_START + 8 * i as u64, descriptor, "boot gdt")?;
    }
    write_u64(mem, BOOT_IDT_START, 0, "boot idt")?;
    if let KernelEntry::Linux64 { .. } = entry {
        write_u64(mem, PML4_START, PDPTE_START | PTE_PRESENT_RW, "page tables")?;
        for gib in 0..IDENTITY_MAPPED_GIB {
            let pd = PDE_START + gib * 0x1000;
            write_u64(
                mem,
                PDPTE_START + gib * 8,
                pd | PTE_PRESENT_RW,
                "page tables",
            )?;
            for i in 0..512u64 {
                let page = ((gib << 9) + i) << 21;
                write_u64(mem, pd + i * 8, page | PDE_HUGE, "page tables")?;
            }
        }
    }
    Ok(())
}

/// The boot vCPU's segment and control registers for `entry`, on top of its reset state.
pub fn boot_sregs(mut sregs: Sregs, entry: &KernelEntry) -> Sregs {
    let gdt = gdt_for(entry);
    let code = segment_from_gdt(gdt[1], CODE_SELECTOR);
    let data = segment_from_gdt(gdt[2], DATA_SELECTOR);
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = segment_from_gdt(gdt[3], TSS_SELECTOR);
    sregs.gdt = DescriptorTable {
        base: BOOT_GDT_START,
        limit: (gdt.len() * 8 - 1) as u16,
    };
    sregs.idt = DescriptorTable {
        base: BOOT_IDT_START,
        limit: 7,
    };
    match entry {
        KernelEntry::Pvh { .. } => {
            sregs.cr0 = CR0_PE | CR0_ET;
            sregs.cr3 = 0;
            sregs.cr4 = 0;
            sregs.efer = 0;
        }
        KernelEntry::Linux64 { .. } => {
            sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
            sregs.cr3 = PML4_START;
            sregs.cr4 = CR4_PAE;
            sregs.efer = EFER_LME | EFER_LMA;
        }
    }
    sregs
}

/// The boot vCPU's general registers for `entry`.
pub fn boot_regs(entry: &KernelEntry) -> Regs {
    match entry {
        KernelEntry::Pvh { entry } => Regs {
            rip: *entry,
            rbx: PVH_INFO_START,
            rflags: RFLAGS_RESERVED,
            ..Default::default()
        },
        KernelEntry::Linux64 { load_addr, .. } => Regs {
            rip: load_addr + LINUX64_ENTRY_OFFSET,
            rsi: ZERO_PAGE_START,
            rsp: BOOT_STACK_POINTER,
            rbp: BOOT_STACK_POINTER,
            rflags: RFLAGS_RESERVED,
            ..Default::default()
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use linux_loader::loader::bootparam::setup_header;

    use super::*;
    use crate::memory::create_guest_memory;

    const PVH: KernelEntry = KernelEntry::Pvh { entry: 0x100_04a0 };

    fn linux64() -> KernelEntry {
        KernelEntry::Linux64 {
            load_addr: 0x10_0000,
            setup_header: setup_header::default(),
        }
    }

    #[test]
    fn test_gdt_entry_known_encodings() {
        assert_eq!(gdt_entry(0xa09b, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(0xc093, 0, 0xfffff), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(0xc09b, 0, 0xfffff), 0x00cf_9b00_0000_ffff);
    }

    #[test]
    fn test_pvh_sregs_32bit_flat_paging_off() {
        let sregs = boot_sregs(Sregs::default(), &PVH);

        assert_eq!(sregs.cs.selector, CODE_SELECTOR);
        assert!(sregs.cs.db && !sregs.cs.l && sregs.cs.g && sregs.cs.present);
        assert_eq!(
            (sregs.cs.base, sregs.cs.limit, sregs.cs.type_),
            (0, 0xffff_ffff, 0xb)
        );
        assert_eq!((sregs.ss.selector, sregs.ss.type_), (DATA_SELECTOR, 0x3));
        assert_eq!(sregs.tr.type_, 0xb);
        assert!(!sregs.tr.s);
        assert_eq!(sregs.cr0 & CR0_PG, 0, "paging off");
        assert_eq!(sregs.cr0 & CR0_PE, CR0_PE, "protected mode");
        assert_eq!(sregs.efer, 0);
    }

    #[test]
    fn test_pvh_regs_rbx_start_info() {
        let regs = boot_regs(&PVH);
        assert_eq!(
            (regs.rip, regs.rbx, regs.rflags),
            (0x100_04a0, PVH_INFO_START, 2)
        );
    }

    #[test]
    fn test_linux64_state_long_mode_and_zero_page() {
        let entry = linux64();

        let sregs = boot_sregs(Sregs::default(), &entry);
        let regs = boot_regs(&entry);

        assert!(sregs.cs.l && !sregs.cs.db);
        assert_eq!(sregs.efer, EFER_LME | EFER_LMA);
        assert_eq!((sregs.cr3, sregs.cr4 & CR4_PAE), (PML4_START, CR4_PAE));
        assert_eq!((regs.rip, regs.rsi), (0x10_0200, ZERO_PAGE_START));
    }

    #[test]
    fn test_write_boot_tables_identity_maps_4g() {
        let mem = create_guest_memory(64 << 20).unwrap();

        write_boot_tables(&mem, &linux64()).unwrap();

        let read = |addr: u64| mem.read_obj::<u64>(GuestAddress(addr)).unwrap();
        assert_eq!(read(BOOT_GDT_START + 8), 0x00af_9b00_0000_ffff);
        assert_eq!(read(PML4_START), PDPTE_START | 3);
        assert_eq!(read(PDPTE_START + 3 * 8), (PDE_START + 0x3000) | 3);
        assert_eq!(read(PDE_START + 8), (1 << 21) | 0x83);
        assert_eq!(read(PDE_START + 0x3000 + 511 * 8), (0xffe0_0000) | 0x83);
    }
}
