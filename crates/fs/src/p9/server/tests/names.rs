//! Treaddir, Tmkdir, Tmknod, Tsymlink, Treadlink, Tlink, Trename, Trenameat, Tunlinkat,
//! Tremove.

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;
use crate::linux;
use crate::p9::{
    parse_dirents, Tgetattr, Tlink, Tmkdir, Tmknod, Treaddir, Treadlink, Tremove, Trename,
    Trenameat, Tsymlink, Tunlinkat,
};

#[test]
fn test_mkdir_mknod_symlink_readlink_create_host_objects() {
    let mut c = Client::new();

    let dir = c.ok(Tmkdir {
        dfid: ROOT,
        name: name("d"),
        mode: 0o750,
        gid: 0,
    });
    c.ok(Tmknod {
        dfid: ROOT,
        name: name("fifo"),
        mode: linux::S_IFIFO | 0o600,
        major: 0,
        minor: 0,
        gid: 0,
    });
    c.ok(Tsymlink {
        fid: ROOT,
        name: name("link"),
        symtgt: "d/target".into(),
        gid: 0,
    });
    c.walk(ROOT, 1, &["link"]);
    let target = c.ok(Treadlink { fid: 1 });

    let meta = std::fs::metadata(c.path("d")).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o7777, 0o750);
    assert!(matches!(dir, Rmessage::Mkdir(ref m) if m.qid.path == meta.ino()));
    assert!(std::fs::symlink_metadata(c.path("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        std::fs::read_link(c.path("link")).unwrap().to_str(),
        Some("d/target")
    );
    assert!(matches!(target, Rmessage::Readlink(ref r) if r.target.as_bytes() == b"d/target"));
    assert_eq!(c.server.refs.len(), 1, "only fid 1's symlink is held");
}

#[test]
fn test_mknod_char_device_gets_makedev_rdev() {
    let mut c = Client::new();

    c.ok(Tmknod {
        dfid: ROOT,
        name: name("null"),
        mode: linux::S_IFCHR | 0o666,
        major: 1,
        minor: 3,
        gid: 0,
    });

    let meta = std::fs::symlink_metadata(c.path("null")).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), libc::makedev(1, 3));
}

#[test]
fn test_link_new_name_nlink_is_real() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.walk(ROOT, 1, &["f"]);

    c.ok(Tlink {
        dfid: ROOT,
        fid: 1,
        name: name("g"),
    });
    let attr = c.ok(Tgetattr {
        fid: 1,
        request_mask: u64::MAX,
    });

    assert!(
        matches!(attr, Rmessage::Getattr(ref a) if a.nlink == 2),
        "{attr:?}"
    );
    assert_eq!(std::fs::metadata(c.path("g")).unwrap().nlink(), 2);
}

#[test]
fn test_rename_into_directory_moves_file_and_fid_follows() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("d")).unwrap();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.walk(ROOT, 1, &["f"]);
    c.walk(ROOT, 2, &["d"]);

    c.ok(Trename {
        fid: 1,
        dfid: 2,
        name: name("moved"),
    });
    // The fid now names d/moved: removing it through the fid removes the new name.
    c.ok(Tremove { fid: 1 });

    assert!(!c.path("f").exists());
    assert!(!c.path("d/moved").exists());
    c.clunk(2);
    assert_eq!(c.server.refs.len(), 0);
}

#[test]
fn test_renameat_between_directories_moves_name() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("d")).unwrap();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.walk(ROOT, 1, &["d"]);

    c.ok(Trenameat {
        olddirfid: ROOT,
        oldname: name("f"),
        newdirfid: 1,
        newname: name("g"),
    });

    assert!(!c.path("f").exists());
    assert_eq!(std::fs::read(c.path("d/g")).unwrap(), b"x");
}

#[test]
fn test_renameat_dotdot_name_is_refused() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();

    let errno = c.err(Trenameat {
        olddirfid: ROOT,
        oldname: name("f"),
        newdirfid: ROOT,
        newname: name(".."),
    });

    assert_ne!(errno, 0);
    assert!(c.path("f").exists());
}

#[test]
fn test_unlinkat_removedir_removes_directory() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("d")).unwrap();
    std::fs::write(c.path("f"), b"x").unwrap();

    let on_dir = c.err(Tunlinkat {
        dirfd: ROOT,
        name: name("d"),
        flags: 0,
    });
    c.ok(Tunlinkat {
        dirfd: ROOT,
        name: name("d"),
        flags: linux::AT_REMOVEDIR as u32,
    });
    c.ok(Tunlinkat {
        dirfd: ROOT,
        name: name("f"),
        flags: 0,
    });

    assert_eq!(on_dir, linux::EISDIR);
    assert!(!c.path("d").exists());
    assert!(!c.path("f").exists());
}

#[test]
fn test_remove_directory_removes_and_clunks() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("d")).unwrap();
    c.walk(ROOT, 1, &["d"]);

    c.ok(Tremove { fid: 1 });

    assert!(!c.path("d").exists());
    assert_eq!(c.err(Tclunk { fid: 1 }), linux::EBADF);
    assert_eq!(c.server.refs.len(), 0);
}

#[test]
fn test_remove_nonempty_directory_fails_but_clunks() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("d")).unwrap();
    std::fs::write(c.path("d/f"), b"x").unwrap();
    c.walk(ROOT, 1, &["d"]);

    assert_eq!(c.err(Tremove { fid: 1 }), linux::ENOTEMPTY);

    assert_eq!(c.err(Tclunk { fid: 1 }), linux::EBADF);
}

#[test]
fn test_remove_root_answers_error_and_clunks() {
    let mut c = Client::new();
    c.walk(ROOT, 1, &[]);

    assert_eq!(c.err(Tremove { fid: 1 }), linux::EBUSY);
    assert!(c.share().exists());
    assert_eq!(c.err(Tclunk { fid: 1 }), linux::EBADF);
}

fn readdir_all(c: &mut Client, fid: u32, count: u32) -> (Vec<Vec<u8>>, usize) {
    let mut names = Vec::new();
    let mut offset = 0;
    let mut calls = 0;
    loop {
        let data = match c.ok(Treaddir { fid, offset, count }) {
            Rmessage::Readdir(r) => r.data.0,
            other => panic!("{other:?}"),
        };
        calls += 1;
        assert!(data.len() <= count as usize);
        let entries = parse_dirents(&data).unwrap();
        let Some(last) = entries.last() else {
            return (names, calls);
        };
        offset = last.offset;
        names.extend(entries.into_iter().map(|e| e.name.into_bytes()));
        assert!(calls < 1000, "readdir does not end");
    }
}

#[test]
fn test_readdir_small_counts_lists_every_entry_once() {
    let mut c = Client::new();
    let mut expected: HashSet<Vec<u8>> = [b".".to_vec(), b"..".to_vec()].into();
    for i in 0..40 {
        let n = format!("file-with-a-longish-name-{i:03}");
        std::fs::write(c.path(&n), b"").unwrap();
        expected.insert(n.into_bytes());
    }
    c.open(1, &[], open_flags::RDONLY | open_flags::DIRECTORY);

    let (names, calls) = readdir_all(&mut c, 1, 100);

    let unique: HashSet<Vec<u8>> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "duplicates");
    assert_eq!(unique, expected);
    assert!(calls > 10, "{calls} calls");
}

#[test]
fn test_readdir_root_dotdot_is_root_qid() {
    let mut c = Client::new();
    let root = c.attach(9);
    c.open(1, &[], open_flags::RDONLY);

    let data = match c.ok(Treaddir {
        fid: 1,
        offset: 0,
        count: 4096,
    }) {
        Rmessage::Readdir(r) => r.data.0,
        other => panic!("{other:?}"),
    };

    let dotdot = parse_dirents(&data)
        .unwrap()
        .into_iter()
        .find(|e| e.name.as_bytes() == b"..")
        .unwrap();
    assert_eq!(dotdot.qid.path, root.path);
}

#[test]
fn test_readdir_count_below_one_entry_answers_einval() {
    let mut c = Client::new();
    c.open(1, &[], open_flags::RDONLY);

    let errno = c.err(Treaddir {
        fid: 1,
        offset: 0,
        count: 10,
    });

    assert_eq!(errno, linux::EINVAL);
}
