//! A raw image: the file's bytes are the disk's.

use crate::{check_range, Disk, DiskError, ImageFile, Result};

/// A raw image.
#[derive(Debug)]
pub struct Raw {
    file: ImageFile,
    size: u64,
    read_only: bool,
}

impl Raw {
    /// The disk `file` holds; its size is the file's length.
    pub fn new(file: ImageFile, read_only: bool) -> Result<Self> {
        let size = file.len()?;
        Ok(Raw {
            file,
            size,
            read_only,
        })
    }
}

impl Disk for Raw {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        self.file.write_all_at(buf, offset)
    }

    fn flush(&self) -> Result<()> {
        self.file.sync()
    }
}
