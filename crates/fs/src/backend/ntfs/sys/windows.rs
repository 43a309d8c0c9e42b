//! [`WinNt`]: the [`Nt`] calls as ntdll makes them on a Windows host.
//!
//! Every handle is opened synchronous (`FILE_SYNCHRONOUS_IO_NONALERT`, so `SYNCHRONIZE` is
//! always asked) and with `FILE_OPEN_REPARSE_POINT`, sharing read, write and delete so that
//! POSIX semantics (renaming or deleting a file others hold open) work. A volume without POSIX
//! delete and rename (FAT and exFAT, Windows before 10 1709, Wine) gets the classic calls
//! instead: the name then goes when the last handle closes, not at once. Names are relative to
//! the parent handle (`OBJECT_ATTRIBUTES.RootDirectory`), with `OBJ_CASE_INSENSITIVE`: a
//! directory's own case-sensitivity flag then decides, as WSL opens them.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{null, null_mut};

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    FileAttributeTagInformation, FileBasicInformation, FileCaseSensitiveInformation,
    FileDispositionInformation, FileDispositionInformationEx, FileEndOfFileInformation,
    FileFsFullSizeInformation, FileFsVolumeInformation, FileIdFullDirectoryInformation,
    FileInternalInformation, FileLinkInformation, FileRenameInformation, FileRenameInformationEx,
    FileStandardInformation, FileStatInformation, NtCreateFile, NtFlushBuffersFile,
    NtFsControlFile, NtLockFile, NtQueryDirectoryFile, NtQueryEaFile, NtQueryInformationFile,
    NtQueryVolumeInformationFile, NtReadFile, NtSetEaFile, NtSetInformationFile, NtUnlockFile,
    NtWriteFile, FILE_BASIC_INFORMATION, FILE_CASE_SENSITIVE_INFORMATION, FILE_CREATE,
    FILE_DIRECTORY_FILE, FILE_DISPOSITION_DELETE, FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE,
    FILE_DISPOSITION_INFORMATION, FILE_DISPOSITION_INFORMATION_EX,
    FILE_DISPOSITION_POSIX_SEMANTICS, FILE_ID_FULL_DIR_INFORMATION, FILE_INTERNAL_INFORMATION,
    FILE_LINK_INFORMATION, FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_IF,
    FILE_OPEN_REPARSE_POINT, FILE_OVERWRITE, FILE_RENAME_IGNORE_READONLY_ATTRIBUTE,
    FILE_RENAME_INFORMATION, FILE_RENAME_POSIX_SEMANTICS, FILE_RENAME_REPLACE_IF_EXISTS,
    FILE_STANDARD_INFORMATION, FILE_STAT_INFORMATION, FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Wdk::System::SystemServices::{
    FILE_ATTRIBUTE_TAG_INFORMATION, FILE_END_OF_FILE_INFORMATION, FILE_FS_FULL_SIZE_INFORMATION,
    FILE_FS_VOLUME_INFORMATION,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, HANDLE, NTSTATUS, OBJ_CASE_INSENSITIVE, STATUS_INVALID_INFO_CLASS,
    STATUS_NOT_IMPLEMENTED, UNICODE_STRING,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
};
use windows_sys::Win32::System::Ioctl::{FSCTL_GET_REPARSE_POINT, FSCTL_SET_REPARSE_POINT};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

use crate::backend::ntfs::dirinfo;
use crate::backend::ntfs::nt::*;
use crate::wsl::reparse::MAX_BUFFER;
use crate::wsl::status::{
    STATUS_END_OF_FILE, STATUS_INVALID_PARAMETER, STATUS_NO_EAS_ON_FILE, STATUS_NO_MORE_FILES,
};

// The directory entry layout `dirinfo` parses by offset is windows-sys's.
const _: () = {
    assert!(offset_of!(FILE_ID_FULL_DIR_INFORMATION, NextEntryOffset) == dirinfo::NEXT);
    assert!(offset_of!(FILE_ID_FULL_DIR_INFORMATION, FileAttributes) == dirinfo::ATTRIBUTES);
    assert!(offset_of!(FILE_ID_FULL_DIR_INFORMATION, FileNameLength) == dirinfo::NAME_LENGTH);
    assert!(offset_of!(FILE_ID_FULL_DIR_INFORMATION, EaSize) == dirinfo::EA_SIZE);
    assert!(offset_of!(FILE_ID_FULL_DIR_INFORMATION, FileId) == dirinfo::FILE_ID);
    assert!(offset_of!(FILE_ID_FULL_DIR_INFORMATION, FileName) == dirinfo::NAME);
};

/// `IO_STATUS_BLOCK.Information` after `NtCreateFile`.
const FILE_OPENED: usize = 1;
const FILE_CREATED: usize = 2;
const FILE_OVERWRITTEN: usize = 3;
/// The largest EA set NTFS keeps per file, with room for the chain's alignment.
const EA_BUFFER: usize = 128 * 1024;
/// One `NtQueryDirectoryFile` batch.
const LIST_BUFFER: usize = 64 * 1024;

/// An open NT handle, closed on drop.
#[derive(Debug)]
pub struct NtHandle(HANDLE);

// SAFETY: an NT file handle may be used and closed from any thread.
unsafe impl Send for NtHandle {}
// SAFETY: every call on it is a system call that the kernel serialises as needed.
unsafe impl Sync for NtHandle {}

impl Drop for NtHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and open; nothing uses it after this.
        unsafe { CloseHandle(self.0) };
    }
}

/// The NT file calls of the host, for one share. The share never leaves its volume (reparse
/// points, volume mount points included, are opened, never followed), so the volume's serial
/// number is asked once and kept.
#[derive(Debug, Default)]
pub struct WinNt {
    serial: std::sync::OnceLock<u64>,
}

impl WinNt {
    /// The calls for a new share.
    pub fn new() -> Self {
        Self::default()
    }

    /// The volume serial of `file`'s volume, asked on the first call.
    fn volume_serial(&self, file: &NtHandle) -> NtResult<u64> {
        if let Some(&serial) = self.serial.get() {
            return Ok(serial);
        }
        let serial = Self::serial(file)?;
        Ok(*self.serial.get_or_init(|| serial))
    }
}

fn check(status: NTSTATUS) -> NtResult<()> {
    if status < 0 {
        // The bits of a failure status, as the wire of `crate::wsl::status` names them.
        Err(status as u32)
    } else {
        Ok(())
    }
}

/// Whether `status` says the volume has no POSIX delete or rename (the `…InformationEx`
/// classes or their POSIX flag unknown to it).
fn no_posix(status: u32) -> bool {
    status == STATUS_NOT_IMPLEMENTED as u32
        || status == STATUS_INVALID_INFO_CLASS as u32
        || status == STATUS_INVALID_PARAMETER
        || status == windows_sys::Win32::Foundation::STATUS_NOT_SUPPORTED as u32
}

fn iosb() -> IO_STATUS_BLOCK {
    IO_STATUS_BLOCK::default()
}

/// A `UNICODE_STRING` over `name` (which outlives it).
fn unicode(name: &[u16]) -> NtResult<UNICODE_STRING> {
    let bytes = u16::try_from(name.len() * 2).map_err(|_| STATUS_INVALID_PARAMETER)?;
    Ok(UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: name.as_ptr().cast_mut(),
    })
}

impl WinNt {
    /// Opens directory `path` (an absolute host path the operator gave) as a share root.
    pub fn open_dir(path: &Path) -> std::io::Result<NtHandle> {
        let mut full: Vec<u16> = r"\??\".encode_utf16().collect();
        full.extend(path.as_os_str().encode_wide());
        let name = unicode(&full).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        let oa = OBJECT_ATTRIBUTES {
            Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: null_mut(),
            ObjectName: &name,
            Attributes: OBJ_CASE_INSENSITIVE,
            SecurityDescriptor: null(),
            SecurityQualityOfService: null(),
        };
        let mut handle: HANDLE = null_mut();
        let mut io = iosb();
        // SAFETY: every pointer is to a live local; the result is checked.
        let status = unsafe {
            NtCreateFile(
                &mut handle,
                access::READ_DATA
                    | access::READ_ATTRIBUTES
                    | access::WRITE_ATTRIBUTES
                    | access::READ_EA
                    | access::WRITE_EA
                    | access::SYNCHRONIZE,
                &oa,
                &mut io,
                null(),
                0,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                FILE_OPEN,
                FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT,
                null(),
                0,
            )
        };
        check(status).map_err(|s| {
            std::io::Error::other(format!("cannot open share directory (NTSTATUS {s:#010x})"))
        })?;
        Ok(NtHandle(handle))
    }

    fn query<T: Default>(file: &NtHandle, class: i32) -> NtResult<T> {
        let mut out = T::default();
        let mut io = iosb();
        // SAFETY: `out` is writable for its size; the class fits the type the caller names.
        let status = unsafe {
            NtQueryInformationFile(
                file.0,
                &mut io,
                (&mut out as *mut T).cast(),
                size_of::<T>() as u32,
                class,
            )
        };
        check(status).map(|()| out)
    }

    fn set<T>(file: &NtHandle, class: i32, value: &T) -> NtResult<()> {
        Self::set_bytes(file, class, (value as *const T).cast(), size_of::<T>())
    }

    /// `NtSetInformationFile` of `len` bytes at `value`, which the caller keeps readable.
    fn set_bytes(file: &NtHandle, class: i32, value: *const c_void, len: usize) -> NtResult<()> {
        let mut io = iosb();
        let len = u32::try_from(len).map_err(|_| STATUS_INVALID_PARAMETER)?;
        // SAFETY: the caller's `value` is readable for `len` bytes.
        let status = unsafe { NtSetInformationFile(file.0, &mut io, value, len, class) };
        check(status)
    }

    fn stat_from_parts(file: &NtHandle) -> NtResult<FILE_STAT_INFORMATION> {
        let basic: FILE_BASIC_INFORMATION = Self::query(file, FileBasicInformation)?;
        let standard: FILE_STANDARD_INFORMATION = Self::query(file, FileStandardInformation)?;
        let internal: FILE_INTERNAL_INFORMATION = Self::query(file, FileInternalInformation)?;
        let tag: FILE_ATTRIBUTE_TAG_INFORMATION = Self::query(file, FileAttributeTagInformation)?;
        Ok(FILE_STAT_INFORMATION {
            FileId: internal.IndexNumber,
            CreationTime: basic.CreationTime,
            LastAccessTime: basic.LastAccessTime,
            LastWriteTime: basic.LastWriteTime,
            ChangeTime: basic.ChangeTime,
            AllocationSize: standard.AllocationSize,
            EndOfFile: standard.EndOfFile,
            FileAttributes: tag.FileAttributes,
            ReparseTag: tag.ReparseTag,
            NumberOfLinks: standard.NumberOfLinks,
            EffectiveAccess: 0,
        })
    }

    fn serial(file: &NtHandle) -> NtResult<u64> {
        // The fixed fields, and room for a label.
        #[repr(C, align(8))]
        struct Buf([u8; 512]);
        let mut buf = Buf([0; 512]);
        let mut io = iosb();
        // SAFETY: `buf` is writable and aligned for the structure.
        let status = unsafe {
            NtQueryVolumeInformationFile(
                file.0,
                &mut io,
                buf.0.as_mut_ptr().cast(),
                buf.0.len() as u32,
                FileFsVolumeInformation,
            )
        };
        // A label too long for the buffer still fills the fixed fields.
        if status < 0 && status as u32 != crate::wsl::status::STATUS_BUFFER_OVERFLOW {
            return Err(status as u32);
        }
        // SAFETY: the kernel filled the fixed part of the structure at the start of `buf`.
        let info = unsafe { &*(buf.0.as_ptr().cast::<FILE_FS_VOLUME_INFORMATION>()) };
        Ok(u64::from(info.VolumeSerialNumber))
    }

    /// A `FILE_RENAME_INFORMATION`/`FILE_LINK_INFORMATION`-shaped buffer (the two share a
    /// layout): flags, the target directory, the name.
    fn rename_buffer(flags: u32, dir: HANDLE, name: &[u16]) -> NtResult<Vec<u64>> {
        const _: () = assert!(
            offset_of!(FILE_RENAME_INFORMATION, FileName)
                == offset_of!(FILE_LINK_INFORMATION, FileName)
        );
        let at = offset_of!(FILE_RENAME_INFORMATION, FileName);
        let bytes = name.len() * 2;
        let words = (at + bytes)
            .max(size_of::<FILE_RENAME_INFORMATION>())
            .div_ceil(8);
        let mut buf = vec![0u64; words];
        let len = u32::try_from(bytes).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let info = buf.as_mut_ptr().cast::<FILE_RENAME_INFORMATION>();
        // SAFETY: `buf` is 8-aligned and long enough for the header and the name.
        unsafe {
            (*info).Anonymous.Flags = flags;
            (*info).RootDirectory = dir;
            (*info).FileNameLength = len;
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                buf.as_mut_ptr().cast::<u8>().add(at).cast::<u16>(),
                name.len(),
            );
        }
        Ok(buf)
    }

    /// The length passed with a rename or link buffer: the header and the name, and never
    /// less than the structure's own size (which counts one name unit; Wine insists on it).
    fn rename_len<T>(name: &[u16]) -> usize {
        (offset_of!(FILE_RENAME_INFORMATION, FileName) + name.len() * 2).max(size_of::<T>())
    }

    fn fsctl(file: &NtHandle, code: u32, input: &[u8], output: &mut [u8]) -> NtResult<usize> {
        let mut io = iosb();
        // SAFETY: the buffers are live for their lengths; the handle is synchronous, so the
        // call completes before it returns.
        let status = unsafe {
            NtFsControlFile(
                file.0,
                null_mut(),
                None,
                null(),
                &mut io,
                code,
                input.as_ptr().cast(),
                input.len() as u32,
                output.as_mut_ptr().cast(),
                output.len() as u32,
            )
        };
        check(status).map(|()| io.Information)
    }
}

impl Nt for WinNt {
    type File = NtHandle;

    fn open(
        &self,
        parent: &NtHandle,
        name: &[u16],
        request: &OpenRequest<'_>,
    ) -> NtResult<(NtHandle, Action)> {
        let us = unicode(name)?;
        let oa = OBJECT_ATTRIBUTES {
            Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: parent.0,
            ObjectName: &us,
            Attributes: OBJ_CASE_INSENSITIVE,
            SecurityDescriptor: null(),
            SecurityQualityOfService: null(),
        };
        let disposition = match request.disposition {
            Disposition::Open => FILE_OPEN,
            Disposition::Create => FILE_CREATE,
            Disposition::OpenIf => FILE_OPEN_IF,
            Disposition::Overwrite => FILE_OVERWRITE,
        };
        let options = FILE_OPEN_REPARSE_POINT
            | FILE_SYNCHRONOUS_IO_NONALERT
            | match request.want {
                Want::Any => 0,
                Want::Directory => FILE_DIRECTORY_FILE,
                Want::NonDirectory => FILE_NON_DIRECTORY_FILE,
            };
        let (ea, ea_len) = if request.eas.is_empty() {
            (null(), 0)
        } else {
            (
                request.eas.as_ptr().cast::<c_void>(),
                u32::try_from(request.eas.len()).map_err(|_| STATUS_INVALID_PARAMETER)?,
            )
        };
        let mut handle: HANDLE = null_mut();
        let mut io = iosb();
        // SAFETY: every pointer is to a live local or to the caller's buffers; the result is
        // checked before the handle is used.
        let status = unsafe {
            NtCreateFile(
                &mut handle,
                request.access | access::SYNCHRONIZE,
                &oa,
                &mut io,
                null(),
                request.attributes,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                disposition,
                options,
                ea,
                ea_len,
            )
        };
        check(status)?;
        let action = match io.Information {
            FILE_CREATED => Action::Created,
            FILE_OVERWRITTEN => Action::Overwritten,
            FILE_OPENED => Action::Opened,
            _ => Action::Opened,
        };
        Ok((NtHandle(handle), action))
    }

    fn info(&self, file: &NtHandle) -> NtResult<Info> {
        let st: FILE_STAT_INFORMATION = match Self::query(file, FileStatInformation) {
            Ok(st) => st,
            // Before Windows 10 1709 (and under Wine) there is no FileStatInformation: the same
            // fields from four older classes.
            Err(s)
                if s == STATUS_INVALID_INFO_CLASS as u32 || s == STATUS_NOT_IMPLEMENTED as u32 =>
            {
                Self::stat_from_parts(file)?
            }
            Err(s) => return Err(s),
        };
        Ok(Info {
            volume: self.volume_serial(file)?,
            file_id: st.FileId as u64,
            attributes: st.FileAttributes,
            reparse_tag: st.ReparseTag,
            size: u64::try_from(st.EndOfFile).unwrap_or(0),
            allocated: u64::try_from(st.AllocationSize).unwrap_or(0),
            nlink: st.NumberOfLinks,
            created: st.CreationTime,
            accessed: st.LastAccessTime,
            written: st.LastWriteTime,
            changed: st.ChangeTime,
        })
    }

    fn eas(&self, file: &NtHandle) -> NtResult<Vec<u8>> {
        let mut buf = vec![0u8; EA_BUFFER];
        let mut io = iosb();
        // SAFETY: `buf` is writable for its length; no EA list is passed.
        let status = unsafe {
            NtQueryEaFile(
                file.0,
                &mut io,
                buf.as_mut_ptr().cast(),
                buf.len() as u32,
                false,
                null(),
                0,
                null(),
                true,
            )
        };
        if status as u32 == STATUS_NO_EAS_ON_FILE {
            return Ok(Vec::new());
        }
        check(status)?;
        buf.truncate(io.Information.min(buf.len()));
        Ok(buf)
    }

    fn set_eas(&self, file: &NtHandle, chain: &[u8]) -> NtResult<()> {
        let mut io = iosb();
        let len = u32::try_from(chain.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
        // SAFETY: `chain` is readable for its length.
        check(unsafe { NtSetEaFile(file.0, &mut io, chain.as_ptr().cast(), len) })
    }

    fn reparse_point(&self, file: &NtHandle) -> NtResult<Vec<u8>> {
        let mut buf = vec![0u8; MAX_BUFFER];
        let n = Self::fsctl(file, FSCTL_GET_REPARSE_POINT, &[], &mut buf)?;
        buf.truncate(n.min(MAX_BUFFER));
        Ok(buf)
    }

    fn set_reparse_point(&self, file: &NtHandle, buffer: &[u8]) -> NtResult<()> {
        Self::fsctl(file, FSCTL_SET_REPARSE_POINT, buffer, &mut []).map(drop)
    }

    fn read(&self, file: &NtHandle, offset: u64, buf: &mut [u8]) -> NtResult<usize> {
        let at = i64::try_from(offset).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut io = iosb();
        // SAFETY: `buf` is writable for `len` bytes; the handle is synchronous.
        let status = unsafe {
            NtReadFile(
                file.0,
                null_mut(),
                None,
                null(),
                &mut io,
                buf.as_mut_ptr().cast(),
                len,
                &at,
                null(),
            )
        };
        if status as u32 == STATUS_END_OF_FILE {
            return Ok(0);
        }
        check(status).map(|()| io.Information.min(buf.len()))
    }

    fn write(&self, file: &NtHandle, offset: Option<u64>, data: &[u8]) -> NtResult<usize> {
        // `FILE_WRITE_TO_END_OF_FILE` in both halves: append.
        let at = match offset {
            Some(o) => i64::try_from(o).map_err(|_| STATUS_INVALID_PARAMETER)?,
            None => -1,
        };
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut io = iosb();
        // SAFETY: `data` is readable for `len` bytes; the handle is synchronous.
        let status = unsafe {
            NtWriteFile(
                file.0,
                null_mut(),
                None,
                null(),
                &mut io,
                data.as_ptr().cast(),
                len,
                &at,
                null(),
            )
        };
        check(status).map(|()| io.Information.min(data.len()))
    }

    fn set_size(&self, file: &NtHandle, size: u64) -> NtResult<()> {
        let info = FILE_END_OF_FILE_INFORMATION {
            EndOfFile: i64::try_from(size).map_err(|_| STATUS_INVALID_PARAMETER)?,
        };
        Self::set(file, FileEndOfFileInformation, &info)
    }

    fn set_times(&self, file: &NtHandle, times: &Times) -> NtResult<()> {
        // 0 leaves a time (and the attributes) as they are.
        let info = FILE_BASIC_INFORMATION {
            CreationTime: 0,
            LastAccessTime: times.accessed.unwrap_or(0),
            LastWriteTime: times.written.unwrap_or(0),
            ChangeTime: times.changed.unwrap_or(0),
            FileAttributes: 0,
        };
        Self::set(file, FileBasicInformation, &info)
    }

    fn flush(&self, file: &NtHandle) -> NtResult<()> {
        let mut io = iosb();
        // SAFETY: a plain call on our handle.
        check(unsafe { NtFlushBuffersFile(file.0, &mut io) })
    }

    fn delete(&self, file: &NtHandle) -> NtResult<()> {
        let info = FILE_DISPOSITION_INFORMATION_EX {
            Flags: FILE_DISPOSITION_DELETE
                | FILE_DISPOSITION_POSIX_SEMANTICS
                | FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE,
        };
        match Self::set(file, FileDispositionInformationEx, &info) {
            Err(s) if no_posix(s) => {
                tracing::debug!(status = s, "no POSIX delete on this volume: classic delete");
                let classic = FILE_DISPOSITION_INFORMATION { DeleteFile: true };
                Self::set(file, FileDispositionInformation, &classic)
            }
            other => other,
        }
    }

    fn rename(
        &self,
        file: &NtHandle,
        new_parent: &NtHandle,
        name: &[u16],
        replace: bool,
    ) -> NtResult<()> {
        let mut flags = FILE_RENAME_POSIX_SEMANTICS | FILE_RENAME_IGNORE_READONLY_ATTRIBUTE;
        if replace {
            flags |= FILE_RENAME_REPLACE_IF_EXISTS;
        }
        let buf = Self::rename_buffer(flags, new_parent.0, name)?;
        let len = Self::rename_len::<FILE_RENAME_INFORMATION>(name);
        match Self::set_bytes(file, FileRenameInformationEx, buf.as_ptr().cast(), len) {
            Err(s) if no_posix(s) => {
                tracing::debug!(status = s, "no POSIX rename on this volume: classic rename");
                // FileRenameInformation: the same buffer, the first byte ReplaceIfExists.
                let buf = Self::rename_buffer(u32::from(replace), new_parent.0, name)?;
                Self::set_bytes(file, FileRenameInformation, buf.as_ptr().cast(), len)
            }
            other => other,
        }
    }

    fn link(&self, file: &NtHandle, new_parent: &NtHandle, name: &[u16]) -> NtResult<()> {
        // FileLinkInformation: ReplaceIfExists FALSE.
        let buf = Self::rename_buffer(0, new_parent.0, name)?;
        let len = Self::rename_len::<FILE_LINK_INFORMATION>(name);
        Self::set_bytes(file, FileLinkInformation, buf.as_ptr().cast(), len)
    }

    fn list(&self, dir: &NtHandle, restart: bool) -> NtResult<Vec<Listed>> {
        let mut buf = vec![0u64; LIST_BUFFER / 8];
        let mut io = iosb();
        // SAFETY: `buf` is 8-aligned and writable for its length; the handle is synchronous.
        let status = unsafe {
            NtQueryDirectoryFile(
                dir.0,
                null_mut(),
                None,
                null(),
                &mut io,
                buf.as_mut_ptr().cast(),
                LIST_BUFFER as u32,
                FileIdFullDirectoryInformation,
                false,
                null(),
                restart,
            )
        };
        if status as u32 == STATUS_NO_MORE_FILES {
            return Ok(Vec::new());
        }
        check(status)?;
        // SAFETY: the u64 buffer viewed as its bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), LIST_BUFFER) };
        dirinfo::parse(&bytes[..io.Information.min(LIST_BUFFER)]).ok_or(STATUS_INVALID_PARAMETER)
    }

    fn set_case_sensitive(&self, dir: &NtHandle, on: bool) -> NtResult<()> {
        let info = FILE_CASE_SENSITIVE_INFORMATION {
            Flags: u32::from(on),
        };
        Self::set(dir, FileCaseSensitiveInformation, &info)
    }

    fn volume(&self, file: &NtHandle) -> NtResult<Volume> {
        let mut full = FILE_FS_FULL_SIZE_INFORMATION::default();
        let mut io = iosb();
        // SAFETY: `full` is writable for its size.
        let status = unsafe {
            NtQueryVolumeInformationFile(
                file.0,
                &mut io,
                (&mut full as *mut FILE_FS_FULL_SIZE_INFORMATION).cast(),
                size_of::<FILE_FS_FULL_SIZE_INFORMATION>() as u32,
                FileFsFullSizeInformation,
            )
        };
        check(status)?;
        Ok(Volume {
            cluster: full
                .SectorsPerAllocationUnit
                .saturating_mul(full.BytesPerSector),
            total: u64::try_from(full.TotalAllocationUnits).unwrap_or(0),
            free: u64::try_from(full.ActualAvailableAllocationUnits).unwrap_or(0),
            available: u64::try_from(full.CallerAvailableAllocationUnits).unwrap_or(0),
            max_name: 255,
            serial: Self::serial(file)?,
        })
    }

    fn lock(&self, file: &NtHandle, offset: u64, len: u64, exclusive: bool) -> NtResult<()> {
        let at = i64::try_from(offset).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let n = i64::try_from(len).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let mut io = iosb();
        // SAFETY: plain values; the handle is synchronous.
        check(unsafe {
            NtLockFile(
                file.0,
                null_mut(),
                None,
                null(),
                &mut io,
                &at,
                &n,
                0,
                true,
                exclusive,
            )
        })
    }

    fn unlock(&self, file: &NtHandle, offset: u64, len: u64) -> NtResult<()> {
        let at = i64::try_from(offset).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let n = i64::try_from(len).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let mut io = iosb();
        // SAFETY: plain values on our handle.
        check(unsafe { NtUnlockFile(file.0, &mut io, &at, &n, 0) })
    }
}
