//! Reply encoders and decoders, and directory entry packing.

use super::*;
use crate::linux;

#[test]
fn test_reply_error_out_of_range_errno_sends_eio() {
    for errno in [0, -1, 512, 4095, i32::MAX, i32::MIN] {
        let buf = reply_error(1, errno);
        let reply = decode_reply(&buf).unwrap();
        assert_eq!(reply.errno(), Some(linux::EIO), "errno {errno}");
    }
    let buf = reply_error(1, linux::ENOSYS);
    let reply = decode_reply(&buf).unwrap();
    assert_eq!(reply.errno(), Some(linux::ENOSYS));
    assert!(reply.body.is_empty());
}

#[test]
fn test_reply_data_len_filled_in_roundtrips() {
    let buf = reply_data(9, b"hello").unwrap();
    assert_eq!(&buf[..4], &21u32.to_le_bytes());
    let reply = decode_reply(&buf).unwrap();
    assert_eq!(reply.header.unique, 9);
    assert_eq!(reply.body, b"hello");
    let buf = reply_empty(10);
    let empty = decode_reply(&buf).unwrap();
    assert_eq!((empty.header.len, empty.errno()), (16, None));
}

#[test]
fn test_reply_decode_hostile_is_error() {
    let good = reply_data(9, b"hello").unwrap();
    for cut in 0..good.len() {
        assert!(decode_reply(&good[..cut]).is_err(), "cut {cut}");
    }
    let mut lying = good.clone();
    lying[..4].copy_from_slice(&100u32.to_le_bytes());
    assert!(decode_reply(&lying).is_err());
    // An error with a body, and errors out of range.
    let mut err_body = good.clone();
    err_body[4..8].copy_from_slice(&(-2i32).to_le_bytes());
    assert_eq!(
        decode_reply(&err_body).unwrap_err(),
        FuseWireError::ErrorWithBody(5)
    );
    for e in [1, -512, i32::MIN] {
        let mut bad = reply_error(1, 2);
        bad[4..8].copy_from_slice(&e.to_le_bytes());
        assert_eq!(
            decode_reply(&bad).unwrap_err(),
            FuseWireError::InvalidReplyError(e)
        );
    }
    // A body of the wrong size for the struct.
    let reply = decode_reply(&good).unwrap();
    assert!(reply.parse::<WriteOut>().is_err());
}

fn entry(i: u64, name: &[u8]) -> DirEntry<'_> {
    DirEntry {
        ino: 100 + i,
        off: i + 1,
        typ: 8,
        name,
    }
}

#[test]
fn test_dirent_writer_stops_at_size_bound() {
    // Records of 24 + 5 -> 32 bytes: 100 bytes hold three.
    let mut w = DirentWriter::new(100);
    let names: Vec<Vec<u8>> = (0..5).map(|i| format!("file{i}").into_bytes()).collect();
    let mut added = 0;
    for (i, n) in names.iter().enumerate() {
        if !w.add(&entry(i as u64, n)).unwrap() {
            break;
        }
        added += 1;
    }
    assert_eq!(added, 3);
    assert_eq!(w.len(), 96);
    let buf = w.into_bytes();
    let parsed = parse_dirents(&buf).unwrap();
    assert_eq!(parsed.len(), 3);
    for (i, e) in parsed.iter().enumerate() {
        assert_eq!(*e, entry(i as u64, &names[i]));
    }
}

#[test]
fn test_dirent_writer_zero_size_adds_nothing() {
    let mut w = DirentWriter::new(0);
    assert!(!w.add(&entry(0, b"a")).unwrap());
    assert!(w.is_empty());
}

#[test]
fn test_direntplus_roundtrip_equal() {
    let mut w = DirentWriter::new(4096);
    let out = EntryOut {
        nodeid: 5,
        attr: attr(),
        ..Default::default()
    };
    let long = [b'z'; 255];
    for (i, n) in [&b"."[..], b"..", b"eight888", &long].iter().enumerate() {
        assert!(w.add_plus(&out, &entry(i as u64, n)).unwrap());
    }
    let buf = w.into_bytes();
    assert_eq!(buf.len() % 8, 0);
    let parsed = parse_direntplus(&buf).unwrap();
    assert_eq!(parsed.len(), 4);
    assert_eq!(parsed[3], (out, entry(3, &long)));
    assert_eq!(parsed[2].1.name, b"eight888");
}

#[test]
fn test_dirent_invalid_name_is_refused() {
    let mut w = DirentWriter::new(4096);
    let long = [b'z'; 256];
    for name in [&b""[..], b"a/b", b"a\0b", &long] {
        assert_eq!(
            w.add(&entry(0, name)).unwrap_err(),
            FuseWireError::InvalidDirent
        );
    }
    assert!(w.is_empty());
}

#[test]
fn test_parse_dirents_hostile_is_error() {
    let mut w = DirentWriter::new(4096);
    w.add(&entry(0, b"abc")).unwrap();
    w.add(&entry(1, b"defgh")).unwrap();
    let buf = w.into_bytes();
    for cut in 1..buf.len() {
        if cut == 32 {
            continue; // a whole first record
        }
        assert!(parse_dirents(&buf[..cut]).is_err(), "cut {cut}");
    }
    let mut huge = buf.clone();
    huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse_dirents(&huge).is_err());
    let mut zero = buf;
    zero[16..20].copy_from_slice(&0u32.to_le_bytes());
    assert!(parse_dirents(&zero).is_err());
}
