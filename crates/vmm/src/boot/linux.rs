//! The Linux x86 boot protocol for a bzImage: the zero page (`boot_params`) with the setup
//! header, command line, initramfs and e820 map. See the kernel's
//! `Documentation/arch/x86/boot.rst`.

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{BootError, Initrd};
use crate::layout::{CMDLINE_START, ZERO_PAGE_START};
use crate::memory::E820Entry;

/// `type_of_loader`: an undefined boot loader.
const LOADER_UNDEFINED: u8 = 0xff;
/// The setup header magic `HdrS`.
const HDRS_MAGIC: u32 = 0x5372_6448;
/// The boot sector signature.
const BOOT_FLAG: u16 = 0xaa55;
/// Where a relocatable kernel may be placed.
const KERNEL_ALIGNMENT: u32 = 0x0100_0000;

/// The zero page for a kernel with `header`, a command line of `cmdline_len` bytes (without
/// the NUL), `initrd` and the memory map `e820`.
pub fn boot_params_for(
    header: setup_header,
    cmdline_len: usize,
    initrd: Option<Initrd>,
    e820: &[E820Entry],
) -> Result<boot_params, BootError> {
    let mut params = boot_params {
        hdr: header,
        ..Default::default()
    };
    params.hdr.type_of_loader = LOADER_UNDEFINED;
    params.hdr.boot_flag = BOOT_FLAG;
    params.hdr.header = HDRS_MAGIC;
    params.hdr.cmd_line_ptr = CMDLINE_START as u32;
    params.hdr.cmdline_size = u32::try_from(cmdline_len).unwrap_or(u32::MAX);
    params.hdr.kernel_alignment = KERNEL_ALIGNMENT;
    if let Some(initrd) = initrd {
        params.hdr.ramdisk_image = initrd.addr as u32;
        params.hdr.ramdisk_size = initrd.size as u32;
        params.ext_ramdisk_image = (initrd.addr >> 32) as u32;
        params.ext_ramdisk_size = (initrd.size >> 32) as u32;
    }
    let max = params.e820_table.len();
    if e820.len() > max {
        return Err(BootError::TooManyMemoryMapEntries {
            count: e820.len(),
            max,
        });
    }
    for (slot, entry) in params.e820_table.iter_mut().zip(e820) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind.code(),
        };
    }
    params.e820_entries = e820.len() as u8;
    Ok(params)
}

/// Writes the zero page at [`ZERO_PAGE_START`].
pub fn write_boot_params(mem: &GuestMemoryMmap, params: &boot_params) -> Result<(), BootError> {
    let params = BootParams::new(params, GuestAddress(ZERO_PAGE_START));
    LinuxBootConfigurator::write_bootparams(&params, mem).map_err(|source| {
        BootError::WriteBootParams {
            protocol: "linux",
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
    fn test_boot_params_fields_for_bzimage() {
        let header = setup_header {
            version: 0x020f,
            setup_sects: 27,
            initrd_addr_max: 0x7fff_ffff,
            ..Default::default()
        };
        let e820 = e820_map(512 << 20);
        let initrd = Initrd {
            addr: 0x1ff0_0000,
            size: 0x8_0000,
        };

        let params = boot_params_for(header, 40, Some(initrd), &e820).unwrap();

        // Copies: the fields of the packed structs cannot be borrowed.
        let hdr = params.hdr;
        let (loader, magic, flag, version) =
            (hdr.type_of_loader, hdr.header, hdr.boot_flag, hdr.version);
        let (cmdline, cmdline_size) = (hdr.cmd_line_ptr, hdr.cmdline_size);
        let (ramdisk, ramdisk_size) = (hdr.ramdisk_image, hdr.ramdisk_size);
        assert_eq!((loader, magic, flag), (0xff, HDRS_MAGIC, 0xaa55));
        assert_eq!(version, 0x020f, "kernel's header kept");
        assert_eq!((cmdline, cmdline_size), (0x20000, 40));
        assert_eq!((ramdisk, ramdisk_size), (0x1ff0_0000, 0x8_0000));
        assert_eq!(params.e820_entries, 2);
        let high = params.e820_table[1];
        let (addr, size, kind) = (high.addr, high.size, high.r#type);
        assert_eq!((addr, size, kind), (0x10_0000, (512 << 20) - 0x10_0000, 1));
    }

    #[test]
    fn test_write_boot_params_lands_at_zero_page() {
        let mem = create_guest_memory(64 << 20).unwrap();
        let params =
            boot_params_for(setup_header::default(), 3, None, &e820_map(64 << 20)).unwrap();

        write_boot_params(&mem, &params).unwrap();

        // `type_of_loader` is at offset 0x210 of the zero page; e820_entries at 0x1e8.
        let loader: u8 = mem.read_obj(GuestAddress(ZERO_PAGE_START + 0x210)).unwrap();
        let entries: u8 = mem.read_obj(GuestAddress(ZERO_PAGE_START + 0x1e8)).unwrap();
        let magic: u32 = mem.read_obj(GuestAddress(ZERO_PAGE_START + 0x202)).unwrap();
        assert_eq!((loader, entries, magic), (0xff, 2, HDRS_MAGIC));
    }
}
