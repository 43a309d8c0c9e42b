//! [`ImageFile`]: an image file read and written at offsets, on every host.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::{DiskError, Result};

/// An open image file (positional I/O: no shared cursor, so threads never race on one).
#[derive(Debug)]
pub struct ImageFile {
    file: File,
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> DiskError {
    move |source| DiskError::Io { op, source }
}

impl ImageFile {
    /// Opens `path`, for reading only or for reading and writing.
    pub fn open(path: &Path, read_only: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(io("open"))?;
        Ok(ImageFile { file })
    }

    /// The file's length.
    pub fn len(&self) -> Result<u64> {
        Ok(self.file.metadata().map_err(io("stat"))?.len())
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Fills `buf` from `offset`; a file that ends first is an error.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        sys::read_exact_at(&self.file, buf, offset).map_err(io("read"))
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        sys::write_all_at(&self.file, buf, offset).map_err(io("write"))
    }

    /// Grows (or cuts) the file to `len` bytes; new bytes read as zeros.
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(io("resize"))
    }

    /// Makes the file's data durable.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(io("flush"))
    }
}

#[cfg(unix)]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    pub(super) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        f.read_exact_at(buf, offset)
    }

    pub(super) fn write_all_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        f.write_all_at(buf, offset)
    }
}

#[cfg(windows)]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::windows::fs::FileExt;

    pub(super) fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match f.seek_read(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    pub(super) fn write_all_at(f: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match f.seek_write(buf, offset)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}
