//! OPENDIR, READDIR, READDIRPLUS (and its lookup references), RELEASEDIR, FSYNCDIR.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::fuse::{parse_direntplus, parse_dirents};
use crate::linux;

pub(super) fn opendir<B: Backend>(fx: &Fixture<B>, node: u64) -> Result<u64, i32> {
    fx.call(node, Operation::Opendir(OpenIn::default()))
        .map(|b| OpenOut::from_bytes(&b).unwrap().fh)
}

fn read_in(fh: u64, offset: u64, size: u32) -> ReadIn {
    ReadIn {
        fh,
        offset,
        size,
        ..ReadIn::default()
    }
}

/// Names and next-offsets of a READDIR from `offset`.
fn readdir(fx: &Fixture, node: u64, fh: u64, offset: u64, size: u32) -> Vec<(String, u64)> {
    let body = fx.ok_body(node, Operation::Readdir(read_in(fh, offset, size)));
    parse_dirents(&body)
        .unwrap()
        .iter()
        .map(|e| (String::from_utf8(e.name.to_vec()).unwrap(), e.off))
        .collect()
}

/// Name → entry of a READDIRPLUS from 0.
pub(super) fn readdirplus<B: Backend>(
    fx: &Fixture<B>,
    node: u64,
    fh: u64,
    size: u32,
) -> Vec<(String, EntryOut, u64)> {
    let body = fx.ok_body(node, Operation::Readdirplus(read_in(fh, 0, size)));
    parse_direntplus(&body)
        .unwrap()
        .iter()
        .map(|(out, e)| (String::from_utf8(e.name.to_vec()).unwrap(), *out, e.ino))
        .collect()
}

fn names(list: &[(String, u64)]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    v.sort();
    v
}

/// A share with directory `d` holding files `a`, `b`, `c`; `d`'s nodeid.
fn populated(fx: &Fixture) -> u64 {
    std::fs::create_dir(fx.path("d")).unwrap();
    for n in ["a", "b", "c"] {
        fx.put(&format!("d/{n}"), n.as_bytes());
    }
    fx.lookup(ROOT, "d").nodeid
}

#[test]
fn test_readdir_lists_every_entry_with_dots() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let fh = opendir(&fx, d).unwrap();

    let all = readdir(&fx, d, fh, 0, 4096);

    assert_eq!(names(&all), [".", "..", "a", "b", "c"]);
    assert_eq!(fx.release(d, fh), Ok(()));
}

#[test]
fn test_readdir_small_buffer_continues_from_offset() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let fh = opendir(&fx, d).unwrap();
    let mut seen = Vec::new();
    let mut offset = 0;

    // One 32-byte record (24 + a short name, padded) per call.
    loop {
        let page = readdir(&fx, d, fh, offset, 32);
        if page.is_empty() {
            break;
        }
        assert_eq!(page.len(), 1);
        offset = page[0].1;
        seen.extend(page);
        assert!(seen.len() <= 5);
    }

    assert_eq!(names(&seen), [".", "..", "a", "b", "c"]);
}

#[test]
fn test_readdir_size_smaller_than_a_record_is_empty() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let fh = opendir(&fx, d).unwrap();

    assert!(readdir(&fx, d, fh, 0, 8).is_empty());
}

#[test]
fn test_opendir_of_file_enotdir_readdir_unknown_fh_ebadf() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let f = fx.lookup(ROOT, "f").nodeid;

    assert_eq!(opendir(&fx, f), Err(linux::ENOTDIR));
    assert_eq!(
        fx.err(ROOT, Operation::Readdir(read_in(999, 0, 4096))),
        linux::EBADF
    );
}

#[test]
fn test_releasedir_and_fsyncdir() {
    let fx = Fixture::new();
    let fh = opendir(&fx, ROOT).unwrap();

    let synced = fx.call(
        ROOT,
        Operation::Fsyncdir(FsyncIn {
            fh,
            ..FsyncIn::default()
        }),
    );
    let released = fx.call(
        ROOT,
        Operation::Releasedir(ReleaseIn {
            fh,
            ..ReleaseIn::default()
        }),
    );
    let again = fx.err(
        ROOT,
        Operation::Releasedir(ReleaseIn {
            fh,
            ..ReleaseIn::default()
        }),
    );

    assert_eq!(synced, Ok(Vec::new()));
    assert_eq!(released, Ok(Vec::new()));
    assert_eq!(again, linux::EBADF);
}

#[test]
fn test_readdirplus_dots_carry_no_node_others_full_entries() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let fh = opendir(&fx, d).unwrap();

    let list = readdirplus(&fx, d, fh, 4096);

    assert_eq!(list.len(), 5);
    for (name, out, ino) in &list {
        if name == "." || name == ".." {
            assert_eq!(*out, EntryOut::default(), "{name}");
            continue;
        }
        let meta = std::fs::metadata(fx.path(&format!("d/{name}"))).unwrap();
        assert_ne!(out.nodeid, 0);
        assert_ne!(out.nodeid, ROOT);
        assert_eq!(out.attr.ino, meta.ino());
        assert_eq!(*ino, meta.ino());
        assert_eq!(out.attr.size, 1);
        assert_eq!((out.entry_valid, out.attr_valid), (1, 1));
    }
}

#[test]
fn test_readdirplus_each_entry_is_exactly_one_lookup_reference() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let fh = opendir(&fx, d).unwrap();

    let list = readdirplus(&fx, d, fh, 4096);

    for (name, out, _) in list.iter().filter(|(n, _, _)| n != "." && n != "..") {
        // One reference: alive before the forget, gone after it.
        assert!(fx.getattr(out.nodeid).is_ok(), "{name}");
        fx.forget(out.nodeid, 1);
        assert_eq!(fx.getattr(out.nodeid), Err(linux::ESTALE), "{name}");
    }
    // The directory's own reference (its LOOKUP) was not touched by its "." entry.
    assert!(fx.getattr(d).is_ok());
    fx.forget(d, 1);
    assert_eq!(fx.getattr(d), Err(linux::ESTALE));
}

#[test]
fn test_readdirplus_adds_to_references_from_lookup() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let a = fx.lookup(d, "a").nodeid;
    let fh = opendir(&fx, d).unwrap();

    let first = readdirplus(&fx, d, fh, 4096);
    let second = readdirplus(&fx, d, fh, 4096);

    let a_first = first.iter().find(|(n, _, _)| n == "a").unwrap().1.nodeid;
    let a_second = second.iter().find(|(n, _, _)| n == "a").unwrap().1.nodeid;
    assert_eq!((a_first, a_second), (a, a));
    fx.forget(a, 2);
    assert!(fx.getattr(a).is_ok());
    fx.forget(a, 1);
    assert_eq!(fx.getattr(a), Err(linux::ESTALE));
}

#[test]
fn test_readdirplus_entries_not_sent_take_no_reference() {
    let fx = Fixture::new();
    let d = populated(&fx);
    let fh = opendir(&fx, d).unwrap();

    // Room for one 160-byte record only.
    let list = readdirplus(&fx, d, fh, 160);

    assert_eq!(list.len(), 1);
    for name in ["a", "b", "c"] {
        let sent = list.iter().any(|(n, _, _)| n == name);
        let node = fx.lookup(d, name).nodeid;
        fx.forget(node, 1);
        let alive = fx.getattr(node).is_ok();
        assert_eq!(alive, sent, "{name}");
    }
}

#[test]
fn test_readdirplus_dangling_symlink_is_one_reference_to_the_link() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("d")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", fx.path("d/l")).unwrap();
    let d = fx.lookup(ROOT, "d").nodeid;
    let fh = opendir(&fx, d).unwrap();

    let list = readdirplus(&fx, d, fh, 4096);

    let (_, out, _) = list.iter().find(|(n, _, _)| n == "l").unwrap();
    assert_eq!(out.attr.mode & linux::S_IFMT, linux::S_IFLNK);
    fx.forget(out.nodeid, 1);
    assert_eq!(fx.getattr(out.nodeid), Err(linux::ESTALE));
}
