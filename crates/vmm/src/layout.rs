//! The x86_64 guest physical address layout: where boot structures, the kernel, the initramfs,
//! RAM and the MMIO gap are. Everything the boot code writes below 1 MiB has a fixed address
//! here, clear of the others:
//!
//! | address | what |
//! |---|---|
//! | `0x500` | boot GDT ([`BOOT_GDT_START`]), then the IDT ([`BOOT_IDT_START`]) |
//! | `0x6000` | PVH `hvm_start_info`, module list, memory map ([`PVH_INFO_START`]…) |
//! | `0x7000` | Linux zero page, `boot_params` ([`ZERO_PAGE_START`]) |
//! | `0x8ff0` | boot stack top ([`BOOT_STACK_POINTER`]) |
//! | `0x9000` | identity page tables for the 64-bit entry ([`PML4_START`]…) |
//! | `0x20000` | kernel command line ([`CMDLINE_START`], [`CMDLINE_MAX_SIZE`] bytes) |
//! | `0x9fc00` | MP table ([`MPTABLE_START`]), outside the e820 RAM |
//! | `0x100000` | high memory: the bzImage (vmlinux goes to its own physical address) |
//! | top of low RAM | initramfs, page-aligned |
//! | `0xc0000000` | MMIO gap to 4 GiB: virtio-mmio slots, IOAPIC, local APIC |
//! | `0x100000000` | RAM beyond the first 3 GiB |

/// The boot GDT: null, code (0x08), data (0x10), TSS (0x18).
pub const BOOT_GDT_START: u64 = 0x500;
/// The boot IDT (one empty entry).
pub const BOOT_IDT_START: u64 = 0x520;
/// PVH `hvm_start_info`.
pub const PVH_INFO_START: u64 = 0x6000;
/// PVH module list (`hvm_modlist_entry`, the initramfs).
pub const PVH_MODLIST_START: u64 = 0x6040;
/// PVH memory map (`hvm_memmap_table_entry` array).
pub const PVH_MEMMAP_START: u64 = 0x6080;
/// The most memory map entries between [`PVH_MEMMAP_START`] and the zero page.
pub const PVH_MEMMAP_MAX_ENTRIES: usize = ((ZERO_PAGE_START - PVH_MEMMAP_START) / 24) as usize;
/// The Linux zero page (`boot_params`) of the bzImage 64-bit boot protocol.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// The initial stack pointer of the 64-bit entry.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Page map level 4 of the identity mapping.
pub const PML4_START: u64 = 0x9000;
/// Page directory pointer table of the identity mapping.
pub const PDPTE_START: u64 = 0xa000;
/// First of the page directories (2 MiB pages) of the identity mapping, one per GiB.
pub const PDE_START: u64 = 0xb000;
/// How many GiB the identity mapping covers (one page directory each).
pub const IDENTITY_MAPPED_GIB: u64 = 4;
/// The kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
/// The x86 kernel's command line limit (`COMMAND_LINE_SIZE`), including the final NUL.
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// Start of the extended BIOS data area: RAM in the e820 map ends here below 1 MiB.
pub const EBDA_START: u64 = 0x9fc00;
/// The MP table (Linux looks for it in the last KiB of base memory).
pub const MPTABLE_START: u64 = EBDA_START;
/// Start of high memory, where the bzImage's protected-mode kernel is loaded.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the MMIO gap below 4 GiB: low RAM ends here at most.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of the MMIO gap: RAM beyond [`MMIO_GAP_START`] continues here.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// The IOAPIC's registers.
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// The local APIC's registers.
pub const APIC_START: u64 = 0xfee0_0000;
/// The page size everything is aligned to.
pub const PAGE_SIZE: u64 = 0x1000;

/// Rounds `value` down to a multiple of [`PAGE_SIZE`].
pub const fn page_align_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

/// Rounds `value` up to a multiple of [`PAGE_SIZE`], or `None` on overflow.
pub const fn page_align_up(value: u64) -> Option<u64> {
    match value.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(page_align_down(v)),
        None => None,
    }
}
