//! Twalk: `.` and `..`, partial walks, refused names, confinement.

use super::*;
use crate::linux;
use crate::p9::Tgetattr;

fn ino_of(c: &mut Client, fid: u32) -> u64 {
    match c.ok(Tgetattr {
        fid,
        request_mask: u64::MAX,
    }) {
        Rmessage::Getattr(a) => a.qid.path,
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_walk_dotdot_at_root_stays_at_root() {
    let mut c = Client::new();
    let root_qid = c.attach(9);

    let qids = c.walk(ROOT, 1, &["..", "..", ".."]);

    assert!(qids.iter().all(|q| *q == root_qid));
    assert_eq!(ino_of(&mut c, 1), root_qid.path);
}

#[test]
fn test_walk_dotdot_after_descend_returns_to_parent() {
    let mut c = Client::new();
    std::fs::create_dir_all(c.path("a/b")).unwrap();
    let root_qid = c.attach(9);

    let qids = c.walk(ROOT, 1, &["a", "b", "..", ".", "..", ".."]);

    assert_eq!(qids[2], qids[0]);
    assert_eq!(qids[3], qids[0]);
    assert_eq!(qids[4], root_qid);
    assert_eq!(qids[5], root_qid);
    assert_eq!(
        c.server.refs.len(),
        0,
        "the walked-out nodes were given back"
    );
}

#[test]
fn test_walk_name_with_slash_is_refused_einval() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("a")).unwrap();

    for bad in ["../x", "a/..", "a/b", "/", "", "a\0b"] {
        let errno = c.err(Client::twalk(ROOT, 1, &["a", bad]));
        assert_eq!(errno, linux::EINVAL, "{bad:?}");
    }
    assert_eq!(c.server.fid_count(), 1);
    assert_eq!(c.server.refs.len(), 0);
}

#[test]
fn test_walk_dots_inside_name_is_allowed() {
    let mut c = Client::new();
    std::fs::write(c.path("a..b"), b"").unwrap();

    c.walk(ROOT, 1, &["a..b"]);
}

#[test]
fn test_walk_missing_first_element_answers_enoent() {
    let mut c = Client::new();

    assert_eq!(c.err(Client::twalk(ROOT, 1, &["nope"])), linux::ENOENT);
    assert_eq!(c.server.fid_count(), 1);
}

#[test]
fn test_walk_missing_later_element_is_partial_without_newfid() {
    let mut c = Client::new();
    std::fs::create_dir_all(c.path("a/b")).unwrap();

    let reply = c.call(Client::twalk(ROOT, 1, &["a", "b", "nope", "c"]));

    match reply {
        Rmessage::Walk(w) => assert_eq!(w.wqids.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.err(Tclunk { fid: 1 }), linux::EBADF);
    assert_eq!(c.server.refs.len(), 0);
}

#[test]
fn test_walk_no_names_clones_fid() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("a")).unwrap();
    c.walk(ROOT, 1, &["a"]);

    let qids = c.walk(1, 2, &[]);

    assert!(qids.is_empty());
    assert_eq!(ino_of(&mut c, 2), ino_of(&mut c, 1));
}

#[test]
fn test_walk_newfid_in_use_answers_ebadf() {
    let mut c = Client::new();
    std::fs::create_dir(c.path("a")).unwrap();
    c.walk(ROOT, 1, &[]);

    assert_eq!(c.err(Client::twalk(ROOT, 1, &["a"])), linux::EBADF);
    assert_eq!(c.server.refs.len(), 0);
}

#[test]
fn test_walk_fid_onto_itself_moves_it() {
    let mut c = Client::new();
    std::fs::create_dir_all(c.path("a/b")).unwrap();
    c.walk(ROOT, 1, &["a"]);

    let qids = c.walk(1, 1, &["b"]);

    assert_eq!(ino_of(&mut c, 1), qids[0].path);
    assert_eq!(c.server.refs.len(), 2);
}

#[test]
fn test_walk_symlink_to_outside_is_not_followed() {
    let mut c = Client::new();
    std::os::unix::fs::symlink("/", c.path("escape")).unwrap();

    c.walk(ROOT, 1, &["escape"]);
    let errno = c.err(Client::twalk(1, 2, &["etc"]));

    assert_eq!(errno, linux::ENOTDIR);
}

#[test]
fn test_walk_through_dotdot_cannot_leave_share() {
    let mut c = Client::new();
    std::fs::write(c.share().parent().unwrap().join("secret"), b"s").unwrap();

    let reply = c.call(Client::twalk(ROOT, 1, &["..", "secret"]));

    assert_eq!(errno_of(&reply), None, "partial walk expected: {reply:?}");
    match reply {
        Rmessage::Walk(w) => assert_eq!(w.wqids.len(), 1),
        other => panic!("{other:?}"),
    }
}
