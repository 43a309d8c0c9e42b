//! VHD (the Virtual Hard Disk Image Format Specification, 2006): a fixed disk is the raw bytes
//! followed by a 512-byte footer; a dynamic disk is a footer copy, a dynamic-disk header, a
//! block allocation table (BAT) and blocks allocated as they are first written, each a sector
//! bitmap then the block's data, then the footer. All fields are big-endian.
//!
//! Footer: `conectix` cookie (0), features (8), version (12), data offset (16: the dynamic
//! header's, or all ones for a fixed disk), current size (48: the virtual size), disk type (60:
//! 2 fixed, 3 dynamic, 4 differencing), checksum (64: the one's complement of the sum of the
//! footer's bytes, the checksum's own four taken as zero). Dynamic header: `cxsparse` (0), table
//! offset (16), max table entries (28), block size (32), checksum (36, computed the same way over
//! its 1024 bytes). A BAT entry is the block's first sector, or `0xFFFFFFFF` while unallocated
//! (reads as zeros).
//!
//! A write to an unallocated block of a dynamic disk grows the file by one block where the
//! footer was (the new bytes are zeros), writes the bitmap (every sector present) and the
//! footer after it, and only then the BAT entry, so a crash in between leaves the disk as it
//! was plus unused space. Differencing disks are refused.

use std::sync::Mutex;

use crate::{check_range, Disk, DiskError, ImageFile, Result};

/// The footer's cookie.
pub const COOKIE: &[u8; 8] = b"conectix";
/// The footer's size.
pub const FOOTER_SIZE: usize = 512;
const DYNAMIC_COOKIE: &[u8; 8] = b"cxsparse";
const DYNAMIC_HEADER_SIZE: usize = 1024;
const SECTOR: u64 = 512;
const UNALLOCATED: u32 = 0xFFFF_FFFF;
const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;
/// The largest virtual size the format allows (2040 GiB).
const MAX_SIZE: u64 = 2040 << 30;
const FORMAT: &str = "VHD";

fn corrupt(what: &'static str) -> DiskError {
    DiskError::Corrupt {
        format: FORMAT,
        what,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// The VHD checksum of `bytes`, whose checksum field is at `at..at + 4`.
pub fn checksum(bytes: &[u8], at: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(at..at + 4).contains(i))
        .fold(0u32, |s, (_, b)| s.wrapping_add(u32::from(*b)));
    !sum
}

/// What the footer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// The dynamic header's offset (all ones for a fixed disk).
    pub data_offset: u64,
    /// The virtual size.
    pub current_size: u64,
    /// 2 fixed, 3 dynamic, 4 differencing.
    pub disk_type: u32,
}

/// Reads a footer (the last 512 bytes of the file; 511 in old Virtual PC images).
pub fn parse_footer(b: &[u8]) -> Result<Footer> {
    if b.len() < 511 || &b[..8] != COOKIE {
        return Err(corrupt("footer cookie"));
    }
    let mut f = [0u8; FOOTER_SIZE];
    f[..b.len().min(FOOTER_SIZE)].copy_from_slice(&b[..b.len().min(FOOTER_SIZE)]);
    if checksum(&f, 64) != be32(&f, 64) {
        return Err(corrupt("footer checksum"));
    }
    let footer = Footer {
        data_offset: be64(&f, 16),
        current_size: be64(&f, 48),
        disk_type: be32(&f, 60),
    };
    if footer.current_size > MAX_SIZE {
        return Err(corrupt("virtual size past 2040 GiB"));
    }
    Ok(footer)
}

#[derive(Debug)]
struct Table {
    bat: Vec<u32>,
    /// Where the footer sits: the end of the last block.
    end: u64,
}

#[derive(Debug)]
struct Dynamic {
    block_size: u64,
    /// The sector bitmap before each block's data, in bytes (a whole number of sectors).
    bitmap: u64,
    table_offset: u64,
    footer: [u8; FOOTER_SIZE],
    table: Mutex<Table>,
}

/// A VHD image (see the module doc).
#[derive(Debug)]
pub struct Vhd {
    file: ImageFile,
    size: u64,
    read_only: bool,
    dynamic: Option<Dynamic>,
}

impl Vhd {
    /// The disk `file` holds.
    pub fn new(file: ImageFile, read_only: bool) -> Result<Self> {
        let len = file.len()?;
        let footer_len = if len >= FOOTER_SIZE as u64 {
            let mut cookie = [0u8; 8];
            file.read_exact_at(&mut cookie, len - FOOTER_SIZE as u64)?;
            if &cookie == COOKIE {
                FOOTER_SIZE as u64
            } else {
                511
            }
        } else {
            return Err(corrupt("file shorter than its footer"));
        };
        let mut raw = [0u8; FOOTER_SIZE];
        file.read_exact_at(&mut raw[..footer_len as usize], len - footer_len)?;
        let footer = parse_footer(&raw[..footer_len as usize])?;
        let size = footer.current_size;
        match footer.disk_type {
            FIXED => {
                if size > len - footer_len {
                    return Err(corrupt("fixed disk larger than its file"));
                }
                Ok(Vhd {
                    file,
                    size,
                    read_only,
                    dynamic: None,
                })
            }
            DYNAMIC => {
                let dynamic = Self::dynamic(&file, &footer, raw, len, footer_len)?;
                Ok(Vhd {
                    file,
                    size,
                    read_only,
                    dynamic: Some(dynamic),
                })
            }
            DIFFERENCING => Err(DiskError::Unsupported {
                format: FORMAT,
                what: "differencing disk (a parent image is needed)",
            }),
            _ => Err(corrupt("disk type")),
        }
    }

    fn dynamic(
        file: &ImageFile,
        footer: &Footer,
        raw: [u8; FOOTER_SIZE],
        len: u64,
        footer_len: u64,
    ) -> Result<Dynamic> {
        let at = footer.data_offset;
        if at
            .checked_add(DYNAMIC_HEADER_SIZE as u64)
            .is_none_or(|e| e > len)
        {
            return Err(corrupt("dynamic header offset"));
        }
        let mut h = [0u8; DYNAMIC_HEADER_SIZE];
        file.read_exact_at(&mut h, at)?;
        if &h[..8] != DYNAMIC_COOKIE {
            return Err(corrupt("dynamic header cookie"));
        }
        if checksum(&h, 36) != be32(&h, 36) {
            return Err(corrupt("dynamic header checksum"));
        }
        let table_offset = be64(&h, 16);
        let entries = u64::from(be32(&h, 28));
        let block_size = u64::from(be32(&h, 32));
        if !block_size.is_power_of_two() || !(4096..=(256 << 20)).contains(&block_size) {
            return Err(corrupt("block size"));
        }
        if entries < footer.current_size.div_ceil(block_size) {
            return Err(corrupt("block table smaller than the disk"));
        }
        let table_bytes = entries * 4;
        if table_offset
            .checked_add(table_bytes)
            .is_none_or(|e| e > len - footer_len)
        {
            return Err(corrupt("block table past the end of the file"));
        }
        let mut bytes = vec![0u8; table_bytes as usize];
        file.read_exact_at(&mut bytes, table_offset)?;
        let bat: Vec<u32> = bytes.chunks_exact(4).map(|c| be32(c, 0)).collect();
        let bitmap = (block_size / SECTOR).div_ceil(8).div_ceil(SECTOR) * SECTOR;
        Ok(Dynamic {
            block_size,
            bitmap,
            table_offset,
            footer: raw,
            table: Mutex::new(Table {
                bat,
                end: (len - footer_len).div_ceil(SECTOR) * SECTOR,
            }),
        })
    }

    /// Where block `block`'s data starts in the file, if it is allocated.
    fn block_data(&self, d: &Dynamic, table: &Table, block: u64) -> Result<Option<u64>> {
        let entry = *table
            .bat
            .get(usize::try_from(block).map_err(|_| corrupt("block index"))?)
            .ok_or(corrupt("block past the table"))?;
        if entry == UNALLOCATED {
            return Ok(None);
        }
        let data = u64::from(entry) * SECTOR + d.bitmap;
        if data + d.block_size > table.end {
            return Err(corrupt("block past the end of the file"));
        }
        Ok(Some(data))
    }

    /// Allocates block `block` (see the module doc); its data's file offset.
    fn allocate(&self, d: &Dynamic, table: &mut Table, block: u64) -> Result<u64> {
        let start = table.end;
        let sector = u32::try_from(start / SECTOR)
            .ok()
            .filter(|s| *s != UNALLOCATED)
            .ok_or(DiskError::Unsupported {
                format: FORMAT,
                what: "image grown past 2 TiB",
            })?;
        let new_end = start + d.bitmap + d.block_size;
        self.file.set_len(new_end + FOOTER_SIZE as u64)?;
        self.file
            .write_all_at(&vec![0xff; d.bitmap as usize], start)?;
        self.file.write_all_at(&d.footer, new_end)?;
        self.file.sync()?;
        self.file
            .write_all_at(&sector.to_be_bytes(), d.table_offset + block * 4)?;
        table.bat[block as usize] = sector;
        table.end = new_end;
        Ok(start + d.bitmap)
    }
}

impl Disk for Vhd {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        let Some(d) = &self.dynamic else {
            return self.file.read_exact_at(buf, offset);
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let block = at / d.block_size;
            let within = at % d.block_size;
            let n = ((d.block_size - within) as usize).min(buf.len() - done);
            let data = {
                let table = d.table.lock().unwrap_or_else(|e| e.into_inner());
                self.block_data(d, &table, block)?
            };
            match data {
                Some(data) => self
                    .file
                    .read_exact_at(&mut buf[done..done + n], data + within)?,
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        let Some(d) = &self.dynamic else {
            return self.file.write_all_at(buf, offset);
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let block = at / d.block_size;
            let within = at % d.block_size;
            let n = ((d.block_size - within) as usize).min(buf.len() - done);
            let data = {
                let mut table = d.table.lock().unwrap_or_else(|e| e.into_inner());
                match self.block_data(d, &table, block)? {
                    Some(data) => data,
                    None => self.allocate(d, &mut table, block)?,
                }
            };
            self.file
                .write_all_at(&buf[done..done + n], data + within)?;
            done += n;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.file.sync()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fixed VHD footer for `size` bytes, as Virtual PC writes one.
    fn footer(size: u64, disk_type: u32) -> [u8; FOOTER_SIZE] {
        let mut f = [0u8; FOOTER_SIZE];
        f[..8].copy_from_slice(COOKIE);
        f[8..12].copy_from_slice(&2u32.to_be_bytes());
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        f[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
        f[40..48].copy_from_slice(&size.to_be_bytes());
        f[48..56].copy_from_slice(&size.to_be_bytes());
        f[60..64].copy_from_slice(&disk_type.to_be_bytes());
        let sum = checksum(&f, 64);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        f
    }

    #[test]
    fn test_footer_checksum_known_answer() {
        let f = footer(1 << 20, FIXED);
        // The one's complement of the byte sum, the checksum field left out.
        let sum: u32 = f[..64].iter().chain(&f[68..]).map(|b| u32::from(*b)).sum();
        assert_eq!(be32(&f, 64), !sum);
        let parsed = parse_footer(&f).unwrap();
        assert_eq!((parsed.current_size, parsed.disk_type), (1 << 20, FIXED));
        let mut bad = f;
        bad[50] ^= 1;
        assert!(matches!(
            parse_footer(&bad),
            Err(DiskError::Corrupt {
                what: "footer checksum",
                ..
            })
        ));
        assert!(parse_footer(&f[..100]).is_err());
    }

    #[test]
    fn test_fixed_vhd_reads_and_writes_its_data_only() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("f.vhd");
        let mut bytes = vec![7u8; 64 << 10];
        bytes.extend_from_slice(&footer(64 << 10, FIXED));
        std::fs::write(&path, &bytes).unwrap();
        let disk = crate::open(&path, false).unwrap();
        assert_eq!(disk.size(), 64 << 10);
        let mut buf = [0u8; 16];
        disk.read_at(&mut buf, 100).unwrap();
        assert_eq!(buf, [7u8; 16]);
        disk.write_at(&[9u8; 16], (64 << 10) - 16).unwrap();
        assert!(
            disk.write_at(&[9u8; 17], (64 << 10) - 16).is_err(),
            "never into the footer"
        );
        drop(disk);
        let after = std::fs::read(&path).unwrap();
        assert_eq!(&after[(64 << 10) - 16..64 << 10], &[9u8; 16]);
        assert_eq!(
            &after[64 << 10..],
            &footer(64 << 10, FIXED),
            "footer intact"
        );
        // A differencing disk is refused by name.
        let diff = dir.path().join("d.vhd");
        let mut bytes = vec![0u8; 4096];
        bytes.extend_from_slice(&footer(4096, DIFFERENCING));
        std::fs::write(&diff, &bytes).unwrap();
        assert!(matches!(
            crate::open(&diff, true),
            Err(DiskError::Unsupported { .. })
        ));
    }
}
