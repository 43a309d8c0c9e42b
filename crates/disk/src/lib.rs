//! Disk images as the VMM's virtio-blk device serves them (docs/architecture.md, "Crates":
//! `crates/disk`): [`Disk`] is a fixed-size array of bytes read and written at offsets, over
//! a raw image ([`raw`]), a VHD — fixed or dynamic ([`vhd`]) — or a VHDX ([`vhdx`]), the
//! formats a Windows containerd hands over for a Linux image's layers and scratch.
//!
//! An image file is hostile input: a footer, header, table or offset that does not add up is
//! a [`DiskError::Corrupt`] naming the field, never a panic, and no read or write reaches
//! outside the image's file or its virtual size ([`DiskError::OutOfRange`]). Formats this
//! crate does not serve (differencing disks, a VHDX with a log to replay) are refused by name.

pub mod raw;
pub mod vhd;
pub mod vhdx;

mod file;

use std::path::Path;

pub use file::ImageFile;

/// Why an image cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The host file failed.
    #[error("{op} of the disk image failed")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The host's error.
        #[source]
        source: std::io::Error,
    },
    /// A structure of the image is malformed.
    #[error("corrupt {format} image: {what}")]
    Corrupt {
        /// The format.
        format: &'static str,
        /// What is wrong (a static text, never image data).
        what: &'static str,
    },
    /// The image is of a kind this crate does not serve.
    #[error("unsupported {format} image: {what}")]
    Unsupported {
        /// The format.
        format: &'static str,
        /// What it is.
        what: &'static str,
    },
    /// A request reaches past the end of the virtual disk.
    #[error("request of {len} bytes at {offset} passes the disk's end ({size} bytes)")]
    OutOfRange {
        /// The first byte asked for.
        offset: u64,
        /// How many bytes.
        len: u64,
        /// The virtual size.
        size: u64,
    },
    /// A write to a disk opened read-only.
    #[error("the disk is read-only")]
    ReadOnly,
}

/// The result of a disk operation.
pub type Result<T> = std::result::Result<T, DiskError>;

/// A disk image's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Bytes as they are.
    Raw,
    /// A VHD (fixed or dynamic).
    Vhd,
    /// A VHDX.
    Vhdx,
}

/// A virtual disk: `size()` bytes, read and written at offsets. Calls may come from many
/// threads at once.
pub trait Disk: Send + Sync + std::fmt::Debug {
    /// The virtual size in bytes.
    fn size(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool;
    /// Fills `buf` from `offset` (all of it, or an error).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()>;
    /// Makes every completed write durable.
    fn flush(&self) -> Result<()>;
}

/// Checks that `len` bytes at `offset` lie within a disk of `size` bytes.
pub(crate) fn check_range(offset: u64, len: usize, size: u64) -> Result<()> {
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DiskError::OutOfRange { offset, len, size }),
    }
}

/// The format of the image in `file`: VHDX by its file identifier, VHD by its footer, else
/// raw.
pub fn detect(file: &ImageFile) -> Result<Format> {
    let len = file.len()?;
    let mut head = [0u8; 8];
    if len >= 8 {
        file.read_exact_at(&mut head, 0)?;
        if &head == vhdx::FILE_SIGNATURE {
            return Ok(Format::Vhdx);
        }
    }
    if len >= vhd::FOOTER_SIZE as u64 {
        let mut cookie = [0u8; 8];
        file.read_exact_at(&mut cookie, len - vhd::FOOTER_SIZE as u64)?;
        if &cookie == vhd::COOKIE {
            return Ok(Format::Vhd);
        }
        // Old Virtual PC images end in a 511-byte footer.
        if len >= 511 {
            file.read_exact_at(&mut cookie, len - 511)?;
            if &cookie == vhd::COOKIE {
                return Ok(Format::Vhd);
            }
        }
    }
    Ok(Format::Raw)
}

/// Opens the image at `path` in the format it has (see [`detect`]).
pub fn open(path: &Path, read_only: bool) -> Result<Box<dyn Disk>> {
    let file = ImageFile::open(path, read_only)?;
    let format = detect(&file)?;
    tracing::debug!(path = %path.display(), ?format, read_only, "disk image");
    Ok(match format {
        Format::Raw => Box::new(raw::Raw::new(file, read_only)?),
        Format::Vhd => Box::new(vhd::Vhd::new(file, read_only)?),
        Format::Vhdx => Box::new(vhdx::Vhdx::new(file, read_only)?),
    })
}
