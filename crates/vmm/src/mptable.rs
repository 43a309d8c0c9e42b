//! The Intel MultiProcessor Specification 1.4 table: how a guest without ACPI learns its CPUs,
//! its IOAPIC and the ISA interrupt routing. Linux finds the floating pointer in the last KiB of
//! base memory ([`MPTABLE_START`]) and starts every listed CPU with INIT/SIPI.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::config::MAX_VCPUS;
use crate::layout::{APIC_START, IOAPIC_START, MPTABLE_START};

/// Local APIC version (an integrated xAPIC).
const APIC_VERSION: u8 = 0x14;
/// IOAPIC version (82093AA).
const IOAPIC_VERSION: u8 = 0x11;
/// CPU signature: family 6.
const CPU_STEPPING: u32 = 0x600;
/// CPU feature flags: FPU and APIC.
const CPU_FEATURES: u32 = 0x1 | 0x200;
/// IOAPIC pins, all routed from the ISA bus one to one.
const IOAPIC_PINS: u8 = 24;
const ISA_BUS: u8 = 0;

const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
const CPU_ENABLED: u8 = 1;
const CPU_BOOT_PROCESSOR: u8 = 2;

/// The floating pointer structure is 16 bytes; the table header 44.
const FLOATING_POINTER_SIZE: usize = 16;
const HEADER_SIZE: usize = 44;

/// Errors of writing the MP table.
#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    /// More CPUs than the table has room for.
    #[error("{count} vcpus do not fit in the mp table (at most {max})")]
    TooManyCpus {
        /// The vCPUs asked for.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// Writing the table into guest memory failed.
    #[error("failed to write the mp table into guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// The IOAPIC's id: after the CPUs' APIC ids.
pub fn ioapic_id(cpus: u32) -> u8 {
    cpus as u8 + 1
}

/// Makes the bytes of the floating pointer followed by the configuration table, to be placed at
/// `base`, for `cpus` CPUs with APIC ids `0..cpus`.
pub fn build(base: u64, cpus: u32) -> Result<Vec<u8>, MptableError> {
    if cpus == 0 || cpus > MAX_VCPUS {
        return Err(MptableError::TooManyCpus {
            count: cpus,
            max: MAX_VCPUS,
        });
    }
    let ioapic = ioapic_id(cpus);
    let mut entries = Vec::new();
    for id in 0..cpus {
        let flags = CPU_ENABLED | if id == 0 { CPU_BOOT_PROCESSOR } else { 0 };
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id as u8, APIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_STEPPING.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
    }
    entries.extend_from_slice(&[ENTRY_BUS, ISA_BUS]);
    entries.extend_from_slice(b"ISA   ");
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&(IOAPIC_START as u32).to_le_bytes());
    for pin in 0..IOAPIC_PINS {
        // Conforming polarity and trigger (flags 0): ISA IRQ `pin` is IOAPIC pin `pin`.
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INT_TYPE_INT, 0, 0, ISA_BUS, pin]);
        entries.extend_from_slice(&[ioapic, pin]);
    }
    // LINT0 of every CPU is the PIC's ExtINT, LINT1 the NMI line.
    entries.extend_from_slice(&[
        ENTRY_LOCAL_INTERRUPT,
        INT_TYPE_EXTINT,
        0,
        0,
        ISA_BUS,
        0,
        0xff,
        0,
    ]);
    entries.extend_from_slice(&[
        ENTRY_LOCAL_INTERRUPT,
        INT_TYPE_NMI,
        0,
        0,
        ISA_BUS,
        0,
        0xff,
        1,
    ]);
    let entry_count = u16::try_from(cpus + 1 + 1 + u32::from(IOAPIC_PINS) + 2).unwrap_or(0);

    let table_addr = base + FLOATING_POINTER_SIZE as u64;
    let table_len = HEADER_SIZE + entries.len();
    let mut header = Vec::with_capacity(HEADER_SIZE);
    header.extend_from_slice(b"PCMP");
    header.extend_from_slice(&(table_len as u16).to_le_bytes());
    header.push(4); // specification 1.4
    header.push(0); // checksum, below
    header.extend_from_slice(b"LCOW    ");
    header.extend_from_slice(b"LCOW-VMM    ");
    header.extend_from_slice(&0u32.to_le_bytes()); // OEM table
    header.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    header.extend_from_slice(&entry_count.to_le_bytes());
    header.extend_from_slice(&(APIC_START as u32).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes()); // extended table length, checksum, reserved
    let mut table = header;
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut floating = Vec::with_capacity(FLOATING_POINTER_SIZE);
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&(table_addr as u32).to_le_bytes());
    floating.push(1); // length in 16-byte units
    floating.push(4); // specification 1.4
    floating.push(0); // checksum, below
    floating.extend_from_slice(&[0; 5]); // feature bytes: a configuration table is present
    floating[10] = checksum(&floating);

    floating.extend_from_slice(&table);
    Ok(floating)
}

/// The byte that makes `bytes` sum to zero.
fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)))
}

/// Writes the MP table for `cpus` CPUs at [`MPTABLE_START`].
pub fn write(mem: &GuestMemoryMmap, cpus: u32) -> Result<(), MptableError> {
    let bytes = build(MPTABLE_START, cpus)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_START))
        .map_err(MptableError::Write)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn test_build_checksums_zero_and_pointer_to_table() {
        let bytes = build(MPTABLE_START, 2).unwrap();

        let (floating, table) = bytes.split_at(FLOATING_POINTER_SIZE);
        assert_eq!(&floating[..4], b"_MP_");
        assert_eq!(sum(floating), 0);
        let table_addr = u32::from_le_bytes(floating[4..8].try_into().unwrap());
        assert_eq!(u64::from(table_addr), MPTABLE_START + 16);
        assert_eq!(&table[..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(sum(table), 0);
    }

    #[test]
    fn test_build_lists_each_cpu_first_is_boot_processor() {
        let bytes = build(MPTABLE_START, 3).unwrap();
        let entries = &bytes[FLOATING_POINTER_SIZE + HEADER_SIZE..];

        let cpus: Vec<(u8, u8)> = entries
            .chunks(20)
            .take(3)
            .map(|e| {
                assert_eq!(e[0], ENTRY_PROCESSOR);
                (e[1], e[3])
            })
            .collect();

        assert_eq!(cpus, [(0, 3), (1, 1), (2, 1)]);
        let count = u16::from_le_bytes([bytes[16 + 34], bytes[16 + 35]]);
        assert_eq!(count, 3 + 2 + 24 + 2);
    }

    #[test]
    fn test_build_max_cpus_fits_below_high_memory() {
        let bytes = build(MPTABLE_START, MAX_VCPUS).unwrap();
        assert!(MPTABLE_START + bytes.len() as u64 <= 0xa0000);
    }

    #[test]
    fn test_build_zero_or_too_many_cpus_rejected() {
        assert!(build(MPTABLE_START, 0).is_err());
        assert!(matches!(
            build(MPTABLE_START, MAX_VCPUS + 1),
            Err(MptableError::TooManyCpus { .. })
        ));
    }
}
