//! Fuzzes the disk image readers (`lcow_disk`): arbitrary bytes are an image file (raw, VHD or
//! VHDX as `lcow_disk::detect` decides: the first bytes and the last 512 pick the format, so
//! the fuzzer reaches every parser). Opening must never panic; an image that opens must answer
//! reads of its first, last and a middle sector, and every read out of range must fail cleanly.
//! The same bytes also go to the header parsers directly.

#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4096 {
        let header: &[u8; 4096] = data[..4096].try_into().unwrap_or(&[0; 4096]);
        let _ = lcow_disk::vhdx::parse_header(header);
    }
    let _ = lcow_disk::vhdx::parse_metadata(data);
    let _ = lcow_disk::vhd::parse_footer(data);

    let path = std::env::temp_dir().join(format!("lcow-fuzz-disk-{}", std::process::id()));
    let Ok(mut f) = std::fs::File::create(&path) else {
        return;
    };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    if let Ok(disk) = lcow_disk::open(&path, true) {
        let size = disk.size();
        let mut buf = [0u8; 512];
        for at in [0, size / 2 / 512 * 512, size.saturating_sub(512)] {
            if at + 512 <= size {
                let _ = disk.read_at(&mut buf, at);
            }
        }
        assert!(disk.read_at(&mut buf, size).is_err(), "a read past the end succeeded");
        assert!(disk.write_at(&buf, 0).is_err(), "a write to a read-only disk succeeded");
    }
    let _ = std::fs::remove_file(&path);
});
