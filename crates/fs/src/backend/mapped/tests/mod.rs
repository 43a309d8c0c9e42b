//! Tests of the mapped backend against temporary directories on a file system with user xattrs.
//!
//! The fixture mirrors the passthrough one (a share and, beside it, an `outside` directory with
//! a sentinel whose snapshot must not change). A test whose host offers no directory with user
//! xattr support prints a `SKIP:` line and passes.

#![allow(clippy::unwrap_used)]

mod cleanup;
mod confinement;
mod delegation;
mod metadata;
mod readonly;
mod special;
mod xattr;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{Config, Mapped};
use crate::backend::passthrough::tests::{make_outside, snapshot, Snapshot, SENTINEL};
use crate::backend::{Backend, Entry, HandleId, ROOT_NODE};

pub(super) use crate::backend::passthrough::tests::{errno, root_or_skip};

pub(super) struct Fixture {
    _tmp: TempDir,
    pub(super) share: PathBuf,
    pub(super) outside: PathBuf,
    pub(super) fs: Mapped,
    before: Snapshot,
}

/// Whether the file system holding `dir` stores user xattrs.
fn supports_user_xattrs(dir: &Path) -> bool {
    let probe = dir.join("xattr-probe");
    if fs::write(&probe, b"").is_err() {
        return false;
    }
    let ok = set_raw(&probe, "user.probe", b"1").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

/// A fresh temporary directory on a file system with user xattrs, or `None` (and a SKIP line).
pub(super) fn xattr_tempdir(test: &str) -> Option<TempDir> {
    for base in [std::env::temp_dir(), PathBuf::from("/var/tmp")] {
        if let Ok(tmp) = TempDir::new_in(&base) {
            if supports_user_xattrs(tmp.path()) {
                return Some(tmp);
            }
        }
    }
    println!("SKIP: no temporary directory with user xattr support ({test})");
    None
}

impl Fixture {
    pub(super) fn new(test: &str) -> Option<Self> {
        Self::with(test, Config::default())
    }

    pub(super) fn read_only(test: &str) -> Option<Self> {
        Self::with(
            test,
            Config {
                read_only: true,
                ..Config::default()
            },
        )
    }

    fn with(test: &str, config: Config) -> Option<Self> {
        let tmp = xattr_tempdir(test)?;
        let share = tmp.path().join("share");
        let outside = tmp.path().join("outside");
        fs::create_dir(&share).unwrap();
        let before = make_outside(&outside);
        let fs = Mapped::new(&share, config).unwrap();
        Some(Fixture {
            _tmp: tmp,
            share,
            outside,
            fs,
            before,
        })
    }

    /// Nothing outside the share was read, written, created or changed.
    pub(super) fn assert_outside_untouched(&self) {
        assert_eq!(
            snapshot(&self.outside),
            self.before,
            "outside the share changed"
        );
        assert_eq!(fs::read(self.outside.join("sentinel")).unwrap(), SENTINEL);
    }

    pub(super) fn root_lookup(&self, name: &str) -> Entry {
        self.fs.lookup(ROOT_NODE, name.as_bytes()).unwrap()
    }

    /// Writes a host file inside the share.
    pub(super) fn put(&self, rel: &str, data: &[u8]) {
        fs::write(self.share.join(rel), data).unwrap();
    }

    /// The host's own `lstat` of a path inside the share.
    pub(super) fn host(&self, rel: &str) -> fs::Metadata {
        fs::symlink_metadata(self.share.join(rel)).unwrap()
    }

    /// The raw bytes of xattr `name` of a path inside the share (`None` if absent).
    pub(super) fn raw(&self, rel: &str, name: &str) -> Option<Vec<u8>> {
        get_raw(&self.share.join(rel), name)
    }

    /// The names of the share's entries (host view), sorted.
    pub(super) fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.share)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub(super) fn read_all(&self, h: HandleId) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.fs.read(h, out.len() as u64, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// `lgetxattr` of a host path.
pub(super) fn get_raw(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = cpath(path);
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings; `buf` is writable for its length.
    let ret = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 256) };
    let len = usize::try_from(ret).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// `lsetxattr` of a host path.
pub(super) fn set_raw(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = cpath(path);
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings; `value` is readable for its length.
    let ret = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The server's own effective uid.
pub(super) fn server_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The little-endian bytes of a `u32`, as the metadata xattrs hold it.
pub(super) fn le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// Asserts the host object is a plain file or directory of the server with the mapped host mode.
pub(super) fn assert_host_plain(m: &fs::Metadata) {
    assert_eq!(m.uid(), server_uid(), "host owner is the server");
    let kind = m.mode() & libc::S_IFMT;
    match kind {
        libc::S_IFREG => assert_eq!(m.mode() & 0o7777, 0o600, "host file mode"),
        libc::S_IFDIR => assert_eq!(m.mode() & 0o7777, 0o700, "host dir mode"),
        other => panic!("host object of type {other:o}"),
    }
}
