//! READDIR and READDIRPLUS reply bodies: `fuse_dirent` records (24 bytes, then the name)
//! or `fuse_direntplus` records (`fuse_entry_out`, then a `fuse_dirent`), each padded with
//! zeros to a multiple of 8 bytes. [`DirentWriter`] packs records into a buffer no larger
//! than the size READDIR asked for; [`parse_dirents`] and [`parse_direntplus`] read them
//! back, for tests and clients.

use super::abi::{DirentHeader, EntryOut, MAX_NAME_LEN};
use super::wire::{FuseWireError, Reader, Wire};

/// One directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Inode number.
    pub ino: u64,
    /// Cookie of the entry after this one (the offset of the next READDIR).
    pub off: u64,
    /// DT_* type.
    pub typ: u32,
    /// Name: 1..=255 bytes, no NUL, no `/`.
    pub name: &'a [u8],
}

/// `x` rounded up to a multiple of 8, or `None` on overflow.
fn align8(x: usize) -> Option<usize> {
    x.checked_add(7).map(|v| v & !7)
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && !name.iter().any(|&b| b == 0 || b == b'/')
}

/// Packs directory entries into a size-bounded READDIR or READDIRPLUS body. Use
/// [`add`](Self::add) for READDIR and [`add_plus`](Self::add_plus) for READDIRPLUS, one
/// kind per buffer.
#[derive(Debug, Clone)]
pub struct DirentWriter {
    buf: Vec<u8>,
    max: usize,
}

impl DirentWriter {
    /// A writer whose buffer never exceeds `max_size` bytes (the READDIR request's size).
    pub fn new(max_size: usize) -> Self {
        Self {
            buf: Vec::new(),
            max: max_size,
        }
    }

    /// Appends a `fuse_dirent`. `Ok(false)` when it does not fit (the buffer is unchanged
    /// and the entry belongs in the next READDIR); an error for an invalid name.
    pub fn add(&mut self, entry: &DirEntry<'_>) -> Result<bool, FuseWireError> {
        self.push(None, entry)
    }

    /// Appends a `fuse_direntplus`: `out` describes the entry as LOOKUP would (its nodeid
    /// counts as a lookup reference unless 0). `Ok(false)` when it does not fit.
    pub fn add_plus(
        &mut self,
        out: &EntryOut,
        entry: &DirEntry<'_>,
    ) -> Result<bool, FuseWireError> {
        self.push(Some(out), entry)
    }

    fn push(
        &mut self,
        out: Option<&EntryOut>,
        entry: &DirEntry<'_>,
    ) -> Result<bool, FuseWireError> {
        if !valid_name(entry.name) {
            return Err(FuseWireError::InvalidDirent);
        }
        let fixed = DirentHeader::SIZE + out.map_or(0, |_| EntryOut::SIZE);
        let size = fixed
            .checked_add(entry.name.len())
            .and_then(align8)
            .ok_or(FuseWireError::InvalidDirent)?;
        if self
            .buf
            .len()
            .checked_add(size)
            .is_none_or(|end| end > self.max)
        {
            return Ok(false);
        }
        let start = self.buf.len();
        if let Some(out) = out {
            out.encode(&mut self.buf);
        }
        DirentHeader {
            ino: entry.ino,
            off: entry.off,
            // valid_name bounds the length by 255.
            namelen: u32::try_from(entry.name.len()).map_err(|_| FuseWireError::InvalidDirent)?,
            typ: entry.typ,
        }
        .encode(&mut self.buf);
        self.buf.extend_from_slice(entry.name);
        self.buf.resize(start + size, 0);
        Ok(true)
    }

    /// Bytes packed so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no entry has been packed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The packed body, for [`reply_data`](super::reply::reply_data).
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

fn parse_one<'a>(r: &mut Reader<'a>) -> Result<DirEntry<'a>, FuseWireError> {
    let head = DirentHeader::decode(r)?;
    let namelen = usize::try_from(head.namelen).map_err(|_| FuseWireError::InvalidDirent)?;
    if namelen > MAX_NAME_LEN {
        return Err(FuseWireError::InvalidDirent);
    }
    let name = r.take(namelen)?;
    if !valid_name(name) {
        return Err(FuseWireError::InvalidDirent);
    }
    // Padding to the next multiple of 8; fixed parts are multiples of 8 already.
    let pad = align8(namelen).map_or(0, |a| a - namelen);
    r.take(pad)?;
    Ok(DirEntry {
        ino: head.ino,
        off: head.off,
        typ: head.typ,
        name,
    })
}

/// Parses a READDIR body into its entries; every record must be whole, padding included.
pub fn parse_dirents(buf: &[u8]) -> Result<Vec<DirEntry<'_>>, FuseWireError> {
    let mut r = Reader::new(buf);
    let mut entries = Vec::new();
    while r.remaining() > 0 {
        entries.push(parse_one(&mut r)?);
    }
    Ok(entries)
}

/// Parses a READDIRPLUS body into its entries.
pub fn parse_direntplus(buf: &[u8]) -> Result<Vec<(EntryOut, DirEntry<'_>)>, FuseWireError> {
    let mut r = Reader::new(buf);
    let mut entries = Vec::new();
    while r.remaining() > 0 {
        let out = EntryOut::decode(&mut r)?;
        entries.push((out, parse_one(&mut r)?));
    }
    Ok(entries)
}
