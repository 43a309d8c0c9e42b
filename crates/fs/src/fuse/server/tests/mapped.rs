//! The same server over the [`Mapped`] backend: creation with the caller's ids kept as
//! metadata, special files, POSIX and flock locks, READDIRPLUS references.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::dir::{opendir, readdirplus};
use super::lock::*;
use super::*;
use crate::backend::mapped::{self, Mapped};
use crate::linux;

/// A server over a mapped share, or `None` (and a SKIP line) without user xattrs in the
/// temporary directory.
fn mapped_fixture(test: &str) -> Option<Fixture<Mapped>> {
    let tmp = TempDir::new().unwrap();
    let probe = tmp.path().join("probe");
    std::fs::create_dir(&probe).unwrap();
    if let Err(e) = Mapped::new(&probe, mapped::Config::default()) {
        println!(
            "SKIP: mapped backend unavailable here, errno {} ({test})",
            e.errno()
        );
        return None;
    }
    Some(Fixture::with_backend(tmp, |share| {
        Mapped::new(share, mapped::Config::default()).unwrap()
    }))
}

/// A header for a guest user that need not exist on the host.
fn guest_header<B: Backend>(fx: &Fixture<B>, node: u64) -> InHeader {
    InHeader {
        uid: 1234,
        gid: 5678,
        ..fx.header(node)
    }
}

#[test]
fn test_mapped_create_keeps_guest_owner_and_mode_as_metadata() {
    let Some(fx) = mapped_fixture("create") else {
        return;
    };
    let op = Operation::Create {
        arg: CreateIn {
            flags: linux::O_RDWR as u32,
            mode: linux::S_IFREG | 0o666,
            umask: 0o027,
            open_flags: 0,
        },
        name: b"f",
    };

    let out = CreateOut::from_bytes(&fx.call_as(guest_header(&fx, ROOT), op).unwrap()).unwrap();
    let n = fx.write(out.entry.nodeid, out.open.fh, 0, b"mapped");
    let attr = fx.getattr(out.entry.nodeid).unwrap();

    assert_eq!(n, Ok(6));
    assert_eq!((attr.uid, attr.gid), (1234, 5678));
    assert_eq!(attr.mode, linux::S_IFREG | 0o640);
    let host = std::fs::metadata(fx.path("f")).unwrap();
    assert_eq!(host.mode() & 0o7777, 0o600);
    assert_eq!(std::fs::read(fx.path("f")).unwrap(), b"mapped");
}

#[test]
fn test_mapped_fifo_and_symlink_are_metadata_on_plain_files() {
    let Some(fx) = mapped_fixture("special") else {
        return;
    };
    let fifo = Operation::Mknod {
        arg: MknodIn {
            mode: linux::S_IFIFO | 0o644,
            umask: 0,
            ..MknodIn::default()
        },
        name: b"fifo",
    };

    let fifo = EntryOut::from_bytes(&fx.call_as(guest_header(&fx, ROOT), fifo).unwrap()).unwrap();
    let link: EntryOut = fx.ok(
        ROOT,
        Operation::Symlink {
            name: b"l",
            target: b"target",
        },
    );
    let target = fx.ok_body(link.nodeid, Operation::Readlink);

    assert_eq!(fifo.attr.mode, linux::S_IFIFO | 0o644);
    assert_eq!(link.attr.mode & linux::S_IFMT, linux::S_IFLNK);
    assert_eq!(target, b"target");
    assert!(std::fs::symlink_metadata(fx.path("fifo"))
        .unwrap()
        .is_file());
}

#[test]
fn test_mapped_posix_owners_conflict_same_owner_not_flush_frees() {
    let Some(fx) = mapped_fixture("posix locks") else {
        return;
    };
    let (node, fh1, fh2) = two_handles(&fx);

    let a = setlk(&fx, node, lk(fh1, 0xa, WR, 0, 9, 111));
    let a_again = setlk(&fx, node, lk(fh2, 0xa, WR, 5, 14, 111));
    let b = setlk(&fx, node, lk(fh2, 0xb, RD, 0, 0, 222));
    let seen = getlk(&fx, node, lk(fh2, 0xb, RD, 0, EOF, 222)).unwrap();
    fx.ok_body(
        node,
        Operation::Flush(FlushIn {
            fh: fh1,
            lock_owner: 0xa,
            ..FlushIn::default()
        }),
    );
    let b_after = setlk(&fx, node, lk(fh2, 0xb, RD, 0, EOF, 222));

    assert_eq!(a, Ok(Vec::new()));
    assert_eq!(a_again, Ok(Vec::new()));
    assert_eq!(b, Err(linux::EAGAIN));
    assert_eq!((seen.typ, seen.pid), (WR, 111));
    assert_eq!(b_after, Ok(Vec::new()));
}

#[test]
fn test_mapped_setlkw_interrupted_and_flock_conflict() {
    let Some(fx) = mapped_fixture("waits") else {
        return;
    };
    let (node, fh1, fh2) = two_handles(&fx);
    setlk(&fx, node, lk(fh1, 0xa, WR, 0, EOF, 111)).unwrap();
    setlk(&fx, node, flock(fh1, WR)).unwrap();

    let rx = setlkw_in_thread(&fx, node, 7000, lk(fh2, 0xb, WR, 0, EOF, 222));
    std::thread::sleep(Duration::from_millis(50));
    interrupt(&fx, 7000);
    let answer = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let flocked = setlk(&fx, node, flock(fh2, RD));

    assert_eq!(answer, Err(linux::EINTR));
    assert_eq!(flocked, Err(linux::EAGAIN));
}

#[test]
fn test_mapped_readdirplus_one_reference_per_entry() {
    let Some(fx) = mapped_fixture("readdirplus") else {
        return;
    };
    fx.put("a", b"1");
    fx.put("b", b"2");
    let fh = opendir(&fx, ROOT).unwrap();

    let list = readdirplus(&fx, ROOT, fh, 4096);

    let entries: Vec<_> = list
        .iter()
        .filter(|(n, _, _)| n != "." && n != "..")
        .collect();
    assert_eq!(entries.len(), 2);
    for (name, out, _) in entries {
        assert!(fx.getattr(out.nodeid).is_ok(), "{name}");
        fx.forget(out.nodeid, 1);
        assert_eq!(fx.getattr(out.nodeid), Err(linux::ESTALE), "{name}");
    }
}
