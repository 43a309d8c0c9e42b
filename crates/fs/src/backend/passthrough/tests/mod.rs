//! Tests of the passthrough backend against temporary directories.
//!
//! Every fixture has a share directory and, beside it, an `outside` directory holding a
//! sentinel file whose atime is set far in the past: on a `relatime` host any read through the
//! server would move it, so [`Fixture::assert_outside_untouched`] notices reads as well as
//! writes, new files and changed metadata.

#![allow(clippy::unwrap_used)]

mod confinement;
mod io;
mod locks;
mod namespace;
mod readonly;
mod xattr;

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::{Config, Passthrough};
use crate::backend::{Backend, Entry, HandleId, NodeId, Result, ROOT_NODE};

pub(crate) const SENTINEL: &[u8] = b"sentinel: must never be read or written by the server";

pub(super) struct Fixture {
    _tmp: TempDir,
    pub(super) share: PathBuf,
    pub(super) outside: PathBuf,
    pub(super) fs: Passthrough,
    before: Snapshot,
}

/// What is observable of the `outside` directory and its sentinel.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    entries: Vec<String>,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    xattrs: usize,
}

/// Records the `outside` directory's listing and its sentinel's metadata.
pub(crate) fn snapshot(outside: &Path) -> Snapshot {
    let mut entries: Vec<String> = fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let sentinel = outside.join("sentinel");
    let m = fs::symlink_metadata(&sentinel).unwrap();
    let path = std::ffi::CString::new(sentinel.to_str().unwrap()).unwrap();
    // SAFETY: a valid path; a null buffer of length 0 only asks for the size.
    let xattrs = unsafe { libc::llistxattr(path.as_ptr(), std::ptr::null_mut(), 0) };
    Snapshot {
        entries,
        atime: (m.atime(), m.atime_nsec()),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        size: m.size(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
        xattrs: usize::try_from(xattrs).unwrap_or(0),
    }
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self::with(Config::default())
    }

    pub(super) fn read_only() -> Self {
        Self::with(Config {
            read_only: true,
            ..Config::default()
        })
    }

    fn with(config: Config) -> Self {
        let tmp = TempDir::new().unwrap();
        let share = tmp.path().join("share");
        let outside = tmp.path().join("outside");
        fs::create_dir(&share).unwrap();
        let before = make_outside(&outside);
        let fs = Passthrough::new(&share, config).unwrap();
        Fixture {
            _tmp: tmp,
            share,
            outside,
            fs,
            before,
        }
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

    pub(super) fn lookup(&self, parent: NodeId, name: &str) -> Entry {
        self.fs.lookup(parent, name.as_bytes()).unwrap()
    }

    pub(super) fn root_lookup(&self, name: &str) -> Entry {
        self.lookup(ROOT_NODE, name)
    }

    /// Writes a host file inside the share.
    pub(super) fn put(&self, rel: &str, data: &[u8]) {
        fs::write(self.share.join(rel), data).unwrap();
    }

    pub(super) fn open(&self, name: &str, flags: i32) -> HandleId {
        let e = self.root_lookup(name);
        self.fs.open(e.node, flags).unwrap()
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

/// Makes directory `outside` holding the sentinel, its atime set far in the past, and returns
/// its snapshot.
pub(crate) fn make_outside(outside: &Path) -> Snapshot {
    fs::create_dir(outside).unwrap();
    fs::write(outside.join("sentinel"), SENTINEL).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800); // 2000-01-01
    File::options()
        .write(true)
        .open(outside.join("sentinel"))
        .unwrap()
        .set_times(FileTimes::new().set_accessed(old).set_modified(old))
        .unwrap();
    snapshot(outside)
}

/// The errno of a failed result.
pub(crate) fn errno<T: std::fmt::Debug>(r: Result<T>) -> i32 {
    r.unwrap_err().errno()
}

/// Whether the tests run as root; prints the skip line when not.
pub(crate) fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        true
    } else {
        println!("SKIP: needs root ({test})");
        false
    }
}
