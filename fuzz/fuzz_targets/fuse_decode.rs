//! Fuzzes the FUSE request decoder: arbitrary bytes are one whole request, decoded under both
//! SETXATTR layouts. Decoding must never panic; whatever decodes must encode again and decode
//! to an equal request (padding and the pre-7.36 INIT layout are not kept, so equality is of
//! the decoded values, not of the bytes). The reply decoder and the READDIR/READDIRPLUS
//! parsers get the same bytes, for the client side.

#![no_main]

use lcow_fs::fuse::{
    decode_reply, decode_request_with, encode_request_with, parse_direntplus, parse_dirents,
    Negotiated,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for setxattr_ext in [false, true] {
        let neg = Negotiated {
            setxattr_ext,
            ..Negotiated::default()
        };
        let Ok(req) = decode_request_with(data, &neg) else {
            continue;
        };
        let out = match encode_request_with(&req, &neg) {
            Ok(out) => out,
            Err(e) => panic!("decoded request fails to encode: {e}: {req:?}"),
        };
        match decode_request_with(&out, &neg) {
            Ok(again) => {
                assert_eq!(again.op, req.op, "second decode differs");
                assert_eq!(again.extensions, req.extensions);
                let (mut h1, mut h2) = (req.header, again.header);
                (h1.len, h2.len) = (0, 0);
                assert_eq!(h1, h2, "header differs");
            }
            Err(e) => panic!("re-encoded request fails to decode: {e}: {req:?}"),
        }
    }

    let _ = decode_reply(data);
    let _ = parse_dirents(data);
    let _ = parse_direntplus(data);
});
