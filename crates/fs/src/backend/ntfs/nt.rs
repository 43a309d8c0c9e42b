//! [`Nt`]: the NT file calls the NTFS backend makes, as a thin trait. On Windows it is
//! `NtCreateFile` and friends on real NTFS (`sys/windows.rs`); everywhere, [`super::fake`]
//! models the parts Wine fakes (EAs, reparse points, POSIX delete and rename, per-directory
//! case sensitivity), so the backend above it is tested on every host.
//!
//! Each method is one NT call (or a fixed pair), with NT's own semantics: names are one
//! UTF-16 component opened relative to a parent handle (never a path), every open passes
//! `FILE_OPEN_REPARSE_POINT` (a reparse point is opened itself, never followed), deletes and
//! renames have POSIX semantics (the name goes at once, open handles keep the file), and
//! failures are NTSTATUS values ([`crate::wsl::status`]).

use std::fmt::Debug;

use crate::wsl::status::NtStatus;

/// The result of an NT call.
pub type NtResult<T> = std::result::Result<T, NtStatus>;

/// Access rights (the `DesiredAccess` mask bits the backend uses).
pub mod access {
    /// `FILE_READ_DATA` (files) / `FILE_LIST_DIRECTORY` (directories).
    pub const READ_DATA: u32 = 0x0001;
    /// `FILE_WRITE_DATA`.
    pub const WRITE_DATA: u32 = 0x0002;
    /// `FILE_APPEND_DATA`.
    pub const APPEND_DATA: u32 = 0x0004;
    /// `FILE_READ_EA`.
    pub const READ_EA: u32 = 0x0008;
    /// `FILE_WRITE_EA`.
    pub const WRITE_EA: u32 = 0x0010;
    /// `FILE_READ_ATTRIBUTES`.
    pub const READ_ATTRIBUTES: u32 = 0x0080;
    /// `FILE_WRITE_ATTRIBUTES`.
    pub const WRITE_ATTRIBUTES: u32 = 0x0100;
    /// `DELETE`.
    pub const DELETE: u32 = 0x0001_0000;
    /// `SYNCHRONIZE`.
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
}

/// `FILE_ATTRIBUTE_*` bits the backend reads or sets.
pub mod attributes {
    /// `FILE_ATTRIBUTE_READONLY`.
    pub const READONLY: u32 = 0x0001;
    /// `FILE_ATTRIBUTE_DIRECTORY`.
    pub const DIRECTORY: u32 = 0x0010;
    /// `FILE_ATTRIBUTE_ARCHIVE`.
    pub const ARCHIVE: u32 = 0x0020;
    /// `FILE_ATTRIBUTE_NORMAL` (alone: no other attribute).
    pub const NORMAL: u32 = 0x0080;
    /// `FILE_ATTRIBUTE_REPARSE_POINT`.
    pub const REPARSE_POINT: u32 = 0x0400;
}

/// What an open does when the name exists or does not (`CreateDisposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// `FILE_OPEN`: open an existing file, else `STATUS_OBJECT_NAME_NOT_FOUND`.
    Open,
    /// `FILE_CREATE`: make a new file, else `STATUS_OBJECT_NAME_COLLISION`.
    Create,
    /// `FILE_OPEN_IF`: open, or make if absent.
    OpenIf,
    /// `FILE_OVERWRITE`: open an existing file and truncate it.
    Overwrite,
}

/// Which kind of file an open accepts (`FILE_DIRECTORY_FILE` / `FILE_NON_DIRECTORY_FILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Either.
    Any,
    /// A directory (`STATUS_NOT_A_DIRECTORY` otherwise); a create makes one.
    Directory,
    /// Not a directory (`STATUS_FILE_IS_A_DIRECTORY` otherwise).
    NonDirectory,
}

/// One `NtCreateFile`.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest<'a> {
    /// The access wanted ([`access`]).
    pub access: u32,
    /// What to do with an existing or absent name.
    pub disposition: Disposition,
    /// The kind of file accepted or made.
    pub want: Want,
    /// `FILE_ATTRIBUTE_*` of a file made ([`attributes`]).
    pub attributes: u32,
    /// The EAs of a file made, as a `FILE_FULL_EA_INFORMATION` chain (empty: none); they are
    /// written with the file, atomically.
    pub eas: &'a [u8],
}

/// What an open did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `FILE_OPENED`.
    Opened,
    /// `FILE_CREATED`.
    Created,
    /// `FILE_OVERWRITTEN`.
    Overwritten,
}

/// A point in time: 100 ns intervals since 1601-01-01 UTC (an NT `LARGE_INTEGER` time).
pub type NtTime = i64;

/// What `FileStatInformation` (with the volume's serial number) says of an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    /// The volume serial number.
    pub volume: u64,
    /// The file id, unique on the volume for the life of the file.
    pub file_id: u64,
    /// `FILE_ATTRIBUTE_*`.
    pub attributes: u32,
    /// The reparse tag (0: none).
    pub reparse_tag: u32,
    /// `EndOfFile`.
    pub size: u64,
    /// `AllocationSize`.
    pub allocated: u64,
    /// `NumberOfLinks`.
    pub nlink: u32,
    /// `CreationTime`.
    pub created: NtTime,
    /// `LastAccessTime`.
    pub accessed: NtTime,
    /// `LastWriteTime`.
    pub written: NtTime,
    /// `ChangeTime`.
    pub changed: NtTime,
}

impl Info {
    /// Whether the file is a directory.
    pub fn is_dir(&self) -> bool {
        self.attributes & attributes::DIRECTORY != 0
    }
}

/// The times a `FileBasicInformation` set changes (`None`: left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Times {
    /// `LastAccessTime`.
    pub accessed: Option<NtTime>,
    /// `LastWriteTime`.
    pub written: Option<NtTime>,
    /// `ChangeTime`.
    pub changed: Option<NtTime>,
}

/// One entry of `NtQueryDirectoryFile(FileIdExtdDirectoryInformation)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name as stored (UTF-16; `.` and `..` are listed too).
    pub name: Vec<u16>,
    /// The file id.
    pub file_id: u64,
    /// `FILE_ATTRIBUTE_*`.
    pub attributes: u32,
    /// The reparse tag (0: none).
    pub reparse_tag: u32,
}

/// What `FileFsFullSizeInformation` and `FileFsAttributeInformation` say of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Volume {
    /// Bytes per allocation unit.
    pub cluster: u32,
    /// All allocation units.
    pub total: u64,
    /// Free allocation units.
    pub free: u64,
    /// Free allocation units the caller may use (quotas).
    pub available: u64,
    /// The longest name component, in UTF-16 units.
    pub max_name: u32,
    /// The volume serial number.
    pub serial: u64,
}

/// The NT calls (see the module doc). `File` is an open handle; dropping it closes it.
pub trait Nt: Send + Sync + Debug + 'static {
    /// An open file or directory.
    type File: Send + Sync + Debug;

    /// `NtCreateFile` of `name` (one component; empty: `parent` itself again) relative to
    /// `parent`, with `FILE_OPEN_REPARSE_POINT`, sharing read, write and delete.
    fn open(
        &self,
        parent: &Self::File,
        name: &[u16],
        request: &OpenRequest<'_>,
    ) -> NtResult<(Self::File, Action)>;
    /// `FileStatInformation` and the volume serial.
    fn info(&self, file: &Self::File) -> NtResult<Info>;
    /// `NtQueryEaFile` of every EA, as a chain (empty: none).
    fn eas(&self, file: &Self::File) -> NtResult<Vec<u8>>;
    /// `NtSetEaFile` of a chain (a value of length 0 removes that EA).
    fn set_eas(&self, file: &Self::File, chain: &[u8]) -> NtResult<()>;
    /// `FSCTL_GET_REPARSE_POINT`: the whole `REPARSE_DATA_BUFFER`.
    fn reparse_point(&self, file: &Self::File) -> NtResult<Vec<u8>>;
    /// `FSCTL_SET_REPARSE_POINT` of a whole `REPARSE_DATA_BUFFER`.
    fn set_reparse_point(&self, file: &Self::File, buffer: &[u8]) -> NtResult<()>;
    /// `NtReadFile` at `offset`; 0 at or past the end.
    fn read(&self, file: &Self::File, offset: u64, buf: &mut [u8]) -> NtResult<usize>;
    /// `NtWriteFile` at `offset`, or at the end of the file (`None`).
    fn write(&self, file: &Self::File, offset: Option<u64>, data: &[u8]) -> NtResult<usize>;
    /// `FileEndOfFileInformation`.
    fn set_size(&self, file: &Self::File, size: u64) -> NtResult<()>;
    /// `FileBasicInformation` with the times set and the attributes left alone.
    fn set_times(&self, file: &Self::File, times: &Times) -> NtResult<()>;
    /// `NtFlushBuffersFile`.
    fn flush(&self, file: &Self::File) -> NtResult<()>;
    /// `FileDispositionInformationEx` with `DELETE | POSIX_SEMANTICS |
    /// IGNORE_READONLY_ATTRIBUTE`: the name goes now, the file when its last handle closes.
    fn delete(&self, file: &Self::File) -> NtResult<()>;
    /// `FileRenameInformationEx` with `POSIX_SEMANTICS | IGNORE_READONLY_ATTRIBUTE` (and
    /// `REPLACE_IF_EXISTS` when `replace`) to `name` in `new_parent`.
    fn rename(
        &self,
        file: &Self::File,
        new_parent: &Self::File,
        name: &[u16],
        replace: bool,
    ) -> NtResult<()>;
    /// `FileLinkInformation`: a new name `name` in `new_parent` for `file`.
    fn link(&self, file: &Self::File, new_parent: &Self::File, name: &[u16]) -> NtResult<()>;
    /// `NtQueryDirectoryFile`: the next entries of a directory (from the start when
    /// `restart`); empty at the end.
    fn list(&self, dir: &Self::File, restart: bool) -> NtResult<Vec<Listed>>;
    /// `FileCaseSensitiveInformation` of a directory.
    fn set_case_sensitive(&self, dir: &Self::File, on: bool) -> NtResult<()>;
    /// `NtQueryVolumeInformationFile`.
    fn volume(&self, file: &Self::File) -> NtResult<Volume>;
    /// `LockFileEx` with `LOCKFILE_FAIL_IMMEDIATELY` (exclusive or shared).
    fn lock(&self, file: &Self::File, offset: u64, len: u64, exclusive: bool) -> NtResult<()>;
    /// `UnlockFileEx` of exactly a range locked before.
    fn unlock(&self, file: &Self::File, offset: u64, len: u64) -> NtResult<()>;
}
