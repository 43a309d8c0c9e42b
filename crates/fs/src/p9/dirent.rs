//! Rreaddir entries: `qid[13] offset[8] type[1] name[s]`, packed back to back into the
//! reply's data, never more bytes than the Treaddir count allows and never a partial entry.

use super::rmessage::Rreaddir;
use super::wire::{Data, Name, Qid, Reader, WireError, WireFormat};

wire_struct! {
    /// One directory entry as Rreaddir carries it.
    DirEntry {
        /// Qid of the entry.
        qid: Qid,
        /// Cookie: the Treaddir offset that resumes after this entry.
        offset: u64,
        /// Linux `d_type` (`DT_DIR` = 4, `DT_REG` = 8, …).
        ty: u8,
        /// Entry name.
        name: Name,
    }
}

impl DirEntry {
    /// Bytes the entry takes on the wire: 24 plus the name.
    pub fn wire_size(&self) -> usize {
        Qid::WIRE_SIZE + 8 + 1 + 2 + self.name.len()
    }
}

/// Packs directory entries into an Rreaddir body of at most `count` bytes.
#[derive(Debug, Clone)]
pub struct DirentWriter {
    buf: Vec<u8>,
    limit: usize,
}

impl DirentWriter {
    /// A writer for a Treaddir of `count` bytes. The caller bounds `count` by the negotiated
    /// msize first ([`super::consts::max_read_count`]).
    pub fn new(count: u32) -> Self {
        let limit = usize::try_from(count).unwrap_or(usize::MAX);
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    /// Appends `entry` if it fits. Returns `Ok(false)`, writing nothing, when it does not: the
    /// reply is full and the entry belongs to the next Treaddir.
    pub fn push(&mut self, entry: &DirEntry) -> Result<bool, WireError> {
        let room = self.limit.saturating_sub(self.buf.len());
        if entry.wire_size() > room {
            return Ok(false);
        }
        let start = self.buf.len();
        if let Err(e) = entry.encode(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
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

    /// The Rreaddir carrying the packed entries.
    pub fn finish(self) -> Rreaddir {
        Rreaddir {
            data: Data(self.buf),
        }
    }
}

/// Parses the entries of an Rreaddir body (the client's side, and tests).
pub fn parse_dirents(data: &[u8]) -> Result<Vec<DirEntry>, WireError> {
    let mut r = Reader::new(data);
    let mut entries = Vec::new();
    while r.remaining() > 0 {
        entries.push(DirEntry::decode(&mut r)?);
    }
    Ok(entries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(name: &str, offset: u64) -> DirEntry {
        DirEntry {
            qid: Qid {
                ty: 0,
                version: 0,
                path: offset,
            },
            offset,
            ty: 8,
            name: Name::try_from(name).unwrap(),
        }
    }

    #[test]
    fn test_dirent_writer_stops_at_count_without_partial_entry() {
        // Two 25-byte entries fit in 60 bytes; the third does not.
        let mut w = DirentWriter::new(60);
        assert!(w.push(&entry("a", 1)).unwrap());
        assert!(w.push(&entry("b", 2)).unwrap());
        assert!(!w.push(&entry("c", 3)).unwrap());
        assert_eq!(w.len(), 50);
        let reply = w.finish();
        let parsed = parse_dirents(&reply.data.0).unwrap();
        assert_eq!(parsed, vec![entry("a", 1), entry("b", 2)]);
    }

    #[test]
    fn test_dirent_writer_exact_fit_is_accepted() {
        let e = entry("abc", 7);
        let mut w = DirentWriter::new(u32::try_from(e.wire_size()).unwrap());
        assert!(w.push(&e).unwrap());
        assert!(!w.push(&e).unwrap());
    }

    #[test]
    fn test_dirent_layout_is_qid_offset_type_name() {
        let mut out = Vec::new();
        entry("x", 0x0102).encode(&mut out).unwrap();
        #[rustfmt::skip]
        let expected = [
            0x00, 0, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0, // qid
            0x02, 0x01, 0, 0, 0, 0, 0, 0,                   // offset
            8,                                              // type
            1, 0, b'x',                                     // name
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn test_parse_dirents_truncated_entry_is_error() {
        let mut out = Vec::new();
        entry("abc", 1).encode(&mut out).unwrap();
        for cut in 1..out.len() {
            assert!(parse_dirents(&out[..cut]).is_err(), "cut at {cut}");
        }
    }
}
