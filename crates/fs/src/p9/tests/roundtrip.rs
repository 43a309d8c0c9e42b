//! Every message survives encode then decode unchanged, in both directions.

use std::collections::BTreeSet;

use super::*;

#[test]
fn test_tmessage_every_type_roundtrips() {
    for (i, msg) in sample_tmessages().iter().enumerate() {
        let tag = u16::try_from(i).unwrap();
        let buf = frame_t(tag, msg);
        assert_eq!(
            usize::try_from(u32::from_le_bytes(buf[..4].try_into().unwrap())).unwrap(),
            buf.len()
        );
        assert_eq!(buf[4], msg.msg_type());
        let (got_tag, got) = decode_tmessage(&buf).unwrap();
        assert_eq!(got_tag, tag);
        assert_eq!(&got, msg);
    }
}

#[test]
fn test_rmessage_every_type_roundtrips() {
    for (i, msg) in sample_rmessages().iter().enumerate() {
        let tag = u16::try_from(i).unwrap();
        let mut buf = Vec::new();
        encode_rmessage(tag, msg, &mut buf).unwrap();
        assert_eq!(buf[4], msg.msg_type());
        let (got_tag, got) = decode_rmessage(&buf).unwrap();
        assert_eq!(got_tag, tag);
        assert_eq!(&got, msg);
    }
}

#[test]
fn test_samples_cover_every_message_type() {
    let t: BTreeSet<u8> = sample_tmessages().iter().map(Tmessage::msg_type).collect();
    let r: BTreeSet<u8> = sample_rmessages().iter().map(Rmessage::msg_type).collect();
    let expected_t: BTreeSet<u8> = [
        8, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76, 100, 102, 104,
        108, 110, 116, 118, 120, 122,
    ]
    .into_iter()
    .collect();
    let mut expected_r: BTreeSet<u8> = expected_t.iter().map(|t| t + 1).collect();
    expected_r.insert(consts::msg::RLERROR);
    assert_eq!(t, expected_t);
    assert_eq!(r, expected_r);
}

#[test]
fn test_reply_type_is_request_type_plus_one() {
    for (t, r) in sample_tmessages()
        .iter()
        .zip(sample_rmessages().iter().skip(1))
    {
        assert_eq!(t.msg_type() + 1, r.msg_type(), "{t:?} / {r:?}");
    }
}

#[test]
fn test_encode_appends_after_existing_bytes() {
    let mut out = vec![0xaa, 0xbb];
    encode_rmessage(1, &Rclunk.into(), &mut out).unwrap();
    assert_eq!(out, [0xaa, 0xbb, 7, 0, 0, 0, consts::msg::RCLUNK, 1, 0]);
    let (tag, msg) = decode_rmessage(&out[2..]).unwrap();
    assert_eq!((tag, msg), (1, Rclunk.into()));
}

#[test]
fn test_twalk_sixteen_names_roundtrips() {
    let msg: Tmessage = Twalk {
        fid: 1,
        newfid: 2,
        wnames: (0..16).map(|i| name(&format!("d{i}"))).collect(),
    }
    .into();
    let buf = frame_t(0, &msg);
    assert_eq!(decode_tmessage(&buf).unwrap().1, msg);
}

#[test]
fn test_twrite_under_negotiated_msize_roundtrips() {
    let msize = 8192;
    let count = msize - consts::TWRITE_HEADER_SIZE;
    let msg: Tmessage = Twrite {
        fid: 1,
        offset: 0,
        data: Data(vec![0x5a; usize::try_from(count).unwrap()]),
    }
    .into();
    let buf = frame_t(3, &msg);
    assert_eq!(buf.len(), usize::try_from(msize).unwrap());
    assert_eq!(decode_tmessage_with_msize(&buf, msize).unwrap().1, msg);
}

#[test]
fn test_rread_at_max_read_count_fills_msize() {
    let msize = 8192;
    let msg: Rmessage = Rread {
        data: Data(vec![
            1;
            usize::try_from(consts::max_read_count(msize)).unwrap()
        ]),
    }
    .into();
    let mut buf = Vec::new();
    encode_rmessage(0, &msg, &mut buf).unwrap();
    assert_eq!(buf.len(), usize::try_from(msize).unwrap());
}

#[test]
fn test_readdir_writer_output_roundtrips_in_rreaddir() {
    let mut w = DirentWriter::new(1000);
    for (i, n) in [".", "..", "file", "\u{fc}ber"].iter().enumerate() {
        let entry = DirEntry {
            qid: qid(u64::try_from(i).unwrap()),
            offset: u64::try_from(i + 1).unwrap(),
            ty: 4,
            name: name(n),
        };
        assert!(w.push(&entry).unwrap());
    }
    let msg: Rmessage = w.finish().into();
    let mut buf = Vec::new();
    encode_rmessage(5, &msg, &mut buf).unwrap();
    let (_, got) = decode_rmessage(&buf).unwrap();
    let Rmessage::Readdir(Rreaddir { data }) = got else {
        panic!("not an Rreaddir: {got:?}");
    };
    let entries = parse_dirents(&data.0).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[3].name.to_str().unwrap(), "\u{fc}ber");
}
