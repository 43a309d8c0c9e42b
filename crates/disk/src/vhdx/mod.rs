//! VHDX ([MS-VHDX]): a file identifier (`vhdxfile`), two headers (64 KiB and 128 KiB; the
//! valid one with the higher sequence number is current), two region tables (192 KiB and
//! 256 KiB) locating the block allocation table (BAT) and the metadata region, whose items
//! give the block size, the virtual size and the logical sector size. Every header and
//! region table carries a CRC-32C; all fields are little-endian.
//!
//! A BAT entry's low three bits are the block's state and bits 20-63 its file offset in MiB;
//! after every `chunk ratio` payload entries comes one sector-bitmap entry (used only by
//! differencing disks). A payload block that is not present (or zero, or unmapped) reads as
//! zeros; one fully present reads from its offset.
//!
//! Writes: before the first write of a session the non-current header is rewritten with the
//! next sequence number and new write GUIDs (as the format asks, so other readers see the
//! file changed). A write to an absent block grows the file by one block, aligned to 1 MiB
//! (the new bytes are zeros), flushes, and then sets the block's BAT entry in place (8
//! bytes, one sector). This crate keeps no log: an image with a log to replay (not closed
//! cleanly) is refused, and our own updates are ordered so that a crash leaves the old data
//! or the new, plus unused space. Differencing disks are refused.

mod crc;

use std::sync::Mutex;

pub use self::crc::crc32c;
use crate::{check_range, Disk, DiskError, ImageFile, Result};

/// The file identifier's signature.
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
const HEADER_OFFSETS: [u64; 2] = [64 << 10, 128 << 10];
const HEADER_SIZE: usize = 4096;
const REGION_OFFSETS: [u64; 2] = [192 << 10, 256 << 10];
const REGION_SIZE: usize = 64 << 10;
const MIB: u64 = 1 << 20;
const FORMAT: &str = "VHDX";

/// BAT region `2DC27766-F623-4200-9D64-115E9BFD4A08`, as stored (GUIDs are mixed-endian).
pub const BAT_GUID: [u8; 16] = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
/// Metadata region `8B7CA206-4790-4B9A-B8FE-575F050F886E`.
pub const METADATA_GUID: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
/// File parameters item `CAA16737-FA36-4D43-B3B6-33F0AA44E76B`.
pub const FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
/// Virtual disk size item `2FA54224-CD1B-4876-B211-5DBED83BF4B8`.
pub const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
/// Logical sector size item `8141BF1D-A96F-4709-BA47-F233A8FAAB5F`.
pub const LOGICAL_SECTOR_SIZE: [u8; 16] = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);

/// A GUID in its stored byte order.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// A payload block's BAT states.
const PAYLOAD_FULLY_PRESENT: u64 = 6;
const PAYLOAD_PARTIALLY_PRESENT: u64 = 7;

fn corrupt(what: &'static str) -> DiskError {
    DiskError::Corrupt {
        format: FORMAT,
        what,
    }
}

fn unsupported(what: &'static str) -> DiskError {
    DiskError::Unsupported {
        format: FORMAT,
        what,
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A header: signature `head` (0), checksum (4), sequence number (8), file write GUID (16),
/// data write GUID (32), log GUID (48), log version (64), version (66), log length (68), log
/// offset (72).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sequence number: the valid header with the higher one is current.
    pub sequence: u64,
    /// Non-zero while the log has entries to replay.
    pub log_guid: [u8; 16],
    /// The header's bytes.
    pub raw: [u8; HEADER_SIZE],
}

/// Reads a header, or `None` if it is not a valid one.
pub fn parse_header(b: &[u8; HEADER_SIZE]) -> Option<Header> {
    if &b[..4] != b"head" || crc32c(b, 4) != le32(b, 4) || le16(b, 66) != 1 {
        return None;
    }
    let mut log_guid = [0u8; 16];
    log_guid.copy_from_slice(&b[48..64]);
    Some(Header {
        sequence: le64(b, 8),
        log_guid,
        raw: *b,
    })
}

/// One region table entry: GUID (0), file offset (16), length (24), required (28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    guid: [u8; 16],
    offset: u64,
    length: u32,
    required: bool,
}

/// Reads a region table: signature `regi` (0), checksum (4), entry count (8), entries from 16.
fn parse_regions(b: &[u8]) -> Option<Vec<Region>> {
    if &b[..4] != b"regi" || crc32c(b, 4) != le32(b, 4) {
        return None;
    }
    let count = le32(b, 8) as usize;
    if count > 2047 {
        return None;
    }
    Some(
        (0..count)
            .map(|i| {
                let e = &b[16 + i * 32..16 + (i + 1) * 32];
                let mut guid = [0u8; 16];
                guid.copy_from_slice(&e[..16]);
                Region {
                    guid,
                    offset: le64(e, 16),
                    length: le32(e, 24),
                    required: le32(e, 28) & 1 != 0,
                }
            })
            .collect(),
    )
}

/// What the metadata region says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Bytes per payload block (1 MiB to 256 MiB, a power of two).
    pub block_size: u64,
    /// The virtual size.
    pub size: u64,
    /// 512 or 4096.
    pub logical_sector: u64,
}

/// Reads the metadata region: signature `metadata` (0), entry count (10), entries from 32 of
/// 32 bytes: item GUID (0), offset in the region (16), length (20), flags (24).
pub fn parse_metadata(region: &[u8]) -> Result<Params> {
    if region.len() < 64 << 10 || &region[..8] != b"metadata" {
        return Err(corrupt("metadata table signature"));
    }
    let count = usize::from(le16(region, 10));
    if count > 2047 {
        return Err(corrupt("metadata entry count"));
    }
    let item = |id: &[u8; 16], len: usize| -> Result<&[u8]> {
        for i in 0..count {
            let e = &region[32 + i * 32..32 + (i + 1) * 32];
            if &e[..16] == id {
                let off = le32(e, 16) as usize;
                let l = le32(e, 20) as usize;
                if l < len || off < 64 << 10 {
                    return Err(corrupt("metadata item offset or length"));
                }
                return region
                    .get(off..off + len)
                    .ok_or(corrupt("metadata item past the region"));
            }
        }
        Err(corrupt("a required metadata item is missing"))
    };
    let fp = item(&FILE_PARAMETERS, 8)?;
    let block_size = u64::from(le32(fp, 0));
    if le32(fp, 4) & 2 != 0 {
        return Err(unsupported("differencing disk (a parent image is needed)"));
    }
    let size = le64(item(&VIRTUAL_DISK_SIZE, 8)?, 0);
    let logical_sector = u64::from(le32(item(&LOGICAL_SECTOR_SIZE, 4)?, 0));
    if !block_size.is_power_of_two() || !(MIB..=256 * MIB).contains(&block_size) {
        return Err(corrupt("block size"));
    }
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(corrupt("logical sector size"));
    }
    if size == 0 || size > 64 << 40 || size % logical_sector != 0 {
        return Err(corrupt("virtual disk size"));
    }
    Ok(Params {
        block_size,
        size,
        logical_sector,
    })
}

#[derive(Debug)]
struct State {
    bat: Vec<u64>,
    /// The end of the file (where a new block goes, 1 MiB aligned).
    end: u64,
    /// Whether this session has marked the headers written.
    marked: bool,
    current: Header,
    current_slot: usize,
}

/// A VHDX image (see the module doc).
#[derive(Debug)]
pub struct Vhdx {
    file: ImageFile,
    params: Params,
    chunk_ratio: u64,
    bat_offset: u64,
    read_only: bool,
    state: Mutex<State>,
}

impl Vhdx {
    /// The disk `file` holds.
    pub fn new(file: ImageFile, read_only: bool) -> Result<Self> {
        let len = file.len()?;
        if len < 1 << 20 {
            return Err(corrupt("file shorter than its headers"));
        }
        let mut sig = [0u8; 8];
        file.read_exact_at(&mut sig, 0)?;
        if &sig != FILE_SIGNATURE {
            return Err(corrupt("file identifier"));
        }
        let mut headers = Vec::new();
        for (slot, at) in HEADER_OFFSETS.iter().enumerate() {
            let mut b = [0u8; HEADER_SIZE];
            file.read_exact_at(&mut b, *at)?;
            if let Some(h) = parse_header(&b) {
                headers.push((slot, h));
            }
        }
        let (current_slot, current) = headers
            .into_iter()
            .max_by_key(|(_, h)| h.sequence)
            .ok_or(corrupt("no valid header"))?;
        if current.log_guid != [0; 16] {
            return Err(unsupported(
                "it has a log to replay (it was not closed cleanly): open it once with \
                 Windows or `qemu-img check -r all`",
            ));
        }
        let mut regions = None;
        for at in REGION_OFFSETS {
            let mut b = vec![0u8; REGION_SIZE];
            file.read_exact_at(&mut b, at)?;
            if let Some(r) = parse_regions(&b) {
                regions = Some(r);
                break;
            }
        }
        let regions = regions.ok_or(corrupt("no valid region table"))?;
        let find = |g: &[u8; 16]| regions.iter().find(|r| &r.guid == g).copied();
        if let Some(r) = regions
            .iter()
            .find(|r| r.required && r.guid != BAT_GUID && r.guid != METADATA_GUID)
        {
            tracing::debug!(guid = ?r.guid, "unknown required VHDX region");
            return Err(unsupported("a required region this reader does not know"));
        }
        let bat = find(&BAT_GUID).ok_or(corrupt("no BAT region"))?;
        let meta = find(&METADATA_GUID).ok_or(corrupt("no metadata region"))?;
        for r in [bat, meta] {
            if r.offset % MIB != 0
                || r.offset
                    .checked_add(u64::from(r.length))
                    .is_none_or(|e| e > len)
                || u64::from(r.length) > 256 * MIB
            {
                return Err(corrupt("region offset or length"));
            }
        }
        let mut meta_bytes = vec![0u8; meta.length as usize];
        file.read_exact_at(&mut meta_bytes, meta.offset)?;
        let params = parse_metadata(&meta_bytes)?;
        let chunk_ratio = ((1u64 << 23) * params.logical_sector) / params.block_size;
        let blocks = params.size.div_ceil(params.block_size);
        let entries = blocks + (blocks - 1) / chunk_ratio;
        if entries * 8 > u64::from(bat.length) {
            return Err(corrupt("BAT region smaller than the disk"));
        }
        let mut bat_bytes = vec![0u8; (entries * 8) as usize];
        file.read_exact_at(&mut bat_bytes, bat.offset)?;
        let entries: Vec<u64> = bat_bytes.chunks_exact(8).map(|c| le64(c, 0)).collect();
        Ok(Vhdx {
            file,
            params,
            chunk_ratio,
            bat_offset: bat.offset,
            read_only,
            state: Mutex::new(State {
                bat: entries,
                end: len.div_ceil(MIB) * MIB,
                marked: false,
                current,
                current_slot,
            }),
        })
    }

    /// The disk's parameters.
    pub fn params(&self) -> Params {
        self.params
    }

    fn bat_index(&self, block: u64) -> usize {
        (block + block / self.chunk_ratio) as usize
    }

    /// Where block `block` is in the file, if it is present.
    fn block_offset(&self, state: &State, block: u64) -> Result<Option<u64>> {
        let entry = *state
            .bat
            .get(self.bat_index(block))
            .ok_or(corrupt("block past the BAT"))?;
        match entry & 7 {
            PAYLOAD_FULLY_PRESENT => {
                let offset = (entry >> 20) * MIB;
                if offset < MIB
                    || offset
                        .checked_add(self.params.block_size)
                        .is_none_or(|e| e > state.end)
                {
                    return Err(corrupt("block past the end of the file"));
                }
                Ok(Some(offset))
            }
            PAYLOAD_PARTIALLY_PRESENT => Err(corrupt(
                "partially present block outside a differencing disk",
            )),
            0..=3 => Ok(None),
            _ => Err(corrupt("BAT entry state")),
        }
    }

    /// Marks the file written (the first write of a session): the other header slot gets the
    /// next sequence number and fresh write GUIDs.
    fn mark_written(&self, state: &mut State) -> Result<()> {
        if state.marked {
            return Ok(());
        }
        let mut h = state.current.raw;
        let seq = state.current.sequence + 1;
        h[8..16].copy_from_slice(&seq.to_le_bytes());
        h[16..32].copy_from_slice(&fresh_guid(1));
        h[32..48].copy_from_slice(&fresh_guid(2));
        let sum = crc32c(&h, 4);
        h[4..8].copy_from_slice(&sum.to_le_bytes());
        let slot = 1 - state.current_slot;
        self.file.write_all_at(&h, HEADER_OFFSETS[slot])?;
        self.file.sync()?;
        state.current = parse_header(&h).ok_or(corrupt("header we wrote"))?;
        state.current_slot = slot;
        state.marked = true;
        Ok(())
    }

    /// Allocates block `block` at the end of the file (see the module doc); its offset.
    fn allocate(&self, state: &mut State, block: u64) -> Result<u64> {
        let offset = state.end;
        self.file.set_len(offset + self.params.block_size)?;
        self.file.sync()?;
        let entry = (offset / MIB) << 20 | PAYLOAD_FULLY_PRESENT;
        let index = self.bat_index(block);
        self.file
            .write_all_at(&entry.to_le_bytes(), self.bat_offset + index as u64 * 8)?;
        state.bat[index] = entry;
        state.end = offset + self.params.block_size;
        Ok(offset)
    }
}

/// A GUID no other session makes (time, process and a per-call salt through the standard
/// library's randomly keyed hasher).
fn fresh_guid(salt: u64) -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_exact_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_u64(salt);
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

impl Disk for Vhdx {
    fn size(&self) -> u64 {
        self.params.size
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.params.size)?;
        let bs = self.params.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (block, within) = (at / bs, at % bs);
            let n = ((bs - within) as usize).min(buf.len() - done);
            let found = {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                self.block_offset(&state, block)?
            };
            match found {
                Some(o) => self
                    .file
                    .read_exact_at(&mut buf[done..done + n], o + within)?,
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
        check_range(offset, buf.len(), self.params.size)?;
        let bs = self.params.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (block, within) = (at / bs, at % bs);
            let n = ((bs - within) as usize).min(buf.len() - done);
            let target = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                self.mark_written(&mut state)?;
                match self.block_offset(&state, block)? {
                    Some(o) => o,
                    None => self.allocate(&mut state, block)?,
                }
            };
            self.file
                .write_all_at(&buf[done..done + n], target + within)?;
            done += n;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.file.sync()
    }
}
