//! Images made by Debian's `qemu-img` (VHD fixed and dynamic, VHDX, raw) read and written by
//! this crate, checked against the raw bytes and by `qemu-img check` and `qemu-img convert`;
//! then broken images, which must fail by name. (Linux only: `qemu-img` is Debian's.)

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lcow_disk::{detect, open, DiskError, Format, ImageFile};

const SIZE: u64 = 24 << 20;

/// `qemu-img` and its arguments; panics with its output when it fails.
fn qemu_img(args: &[&str]) -> String {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img runs (make deps installs qemu-utils)");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A raw image with a recognisable pattern in a few places (the rest zeros).
fn pattern() -> Vec<u8> {
    let mut data = vec![0u8; SIZE as usize];
    for (start, len, seed) in [
        (0usize, 4096usize, 1u8),
        (3 << 20, 100_000, 7),
        ((SIZE - 512) as usize, 512, 9),
    ] {
        for (i, b) in data[start..start + len].iter_mut().enumerate() {
            *b = seed.wrapping_add((i % 251) as u8);
        }
    }
    data
}

struct Images {
    dir: tempfile::TempDir,
    raw: Vec<u8>,
}

impl Images {
    fn new() -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let raw = pattern();
        std::fs::write(dir.path().join("raw.img"), &raw).unwrap();
        Images { dir, raw }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `raw.img` converted to `format` (`-O` value) with `options`.
    fn make(&self, name: &str, format: &str, options: &str) -> PathBuf {
        let out = self.path(name);
        let src = self.path("raw.img");
        let mut args = vec!["convert", "-f", "raw", "-O", format];
        if !options.is_empty() {
            args.extend(["-o", options]);
        }
        args.extend([src.to_str().unwrap(), out.to_str().unwrap()]);
        qemu_img(&args);
        out
    }

    /// The raw bytes `qemu-img` reads from `image` of `format`.
    fn as_raw(&self, image: &Path, format: &str) -> Vec<u8> {
        let out = self.path("back.raw");
        qemu_img(&[
            "convert",
            "-f",
            format,
            "-O",
            "raw",
            image.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        std::fs::read(out).unwrap()
    }
}

fn read_all(path: &Path) -> Vec<u8> {
    let disk = open(path, true).unwrap();
    let mut out = vec![0u8; disk.size() as usize];
    // In uneven pieces, so requests cross block boundaries.
    let mut at = 0usize;
    while at < out.len() {
        let n = (out.len() - at).min(777_777);
        disk.read_at(&mut out[at..at + n], at as u64).unwrap();
        at += n;
    }
    out
}

/// Writes that cross blocks and land in blocks not yet allocated.
fn scribble(path: &Path, expect: &mut [u8]) {
    let disk = open(path, false).unwrap();
    for (at, len, seed) in [
        (1usize << 20, 5000usize, 40u8),
        ((8 << 20) - 100, 300, 50),
        ((20 << 20) + 1, 3 << 20, 60),
    ] {
        let len = len.min(expect.len() - at);
        let data: Vec<u8> = (0..len)
            .map(|i| seed.wrapping_add((i % 13) as u8))
            .collect();
        disk.write_at(&data, at as u64).unwrap();
        expect[at..at + len].copy_from_slice(&data);
    }
    disk.flush().unwrap();
}

fn roundtrip(format_arg: &str, options: &str, format: Format) {
    let im = Images::new();
    let path = im.make("disk", format_arg, options);
    assert_eq!(
        detect(&ImageFile::open(&path, true).unwrap()).unwrap(),
        format
    );
    assert_eq!(read_all(&path), im.raw, "our reader sees qemu-img's bytes");
    let mut expect = im.raw.clone();
    scribble(&path, &mut expect);
    assert_eq!(read_all(&path), expect, "our writes read back");
    // qemu-img checks VHDX images (not VHD ones: "does not support checks").
    if format_arg == "vhdx" {
        qemu_img(&["check", "-f", "vhdx", path.to_str().unwrap()]);
    }
    assert_eq!(
        im.as_raw(&path, format_arg),
        expect,
        "qemu-img sees our writes"
    );
}

#[test]
fn test_raw_image() {
    roundtrip("raw", "", Format::Raw);
}

#[test]
fn test_fixed_vhd_from_qemu_img() {
    roundtrip("vpc", "subformat=fixed,force_size=on", Format::Vhd);
}

#[test]
fn test_dynamic_vhd_from_qemu_img() {
    roundtrip("vpc", "subformat=dynamic,force_size=on", Format::Vhd);
}

#[test]
fn test_dynamic_vhdx_from_qemu_img() {
    roundtrip("vhdx", "subformat=dynamic,block_size=1M", Format::Vhdx);
}

#[test]
fn test_fixed_vhdx_from_qemu_img() {
    roundtrip("vhdx", "subformat=fixed", Format::Vhdx);
}

#[test]
fn test_vhdx_with_default_block_size_and_4k_sectors() {
    let im = Images::new();
    let path = im.make("disk", "vhdx", "log_size=1M");
    assert_eq!(read_all(&path), im.raw);
}

fn open_err(path: &Path, read_only: bool) -> DiskError {
    open(path, read_only).unwrap_err()
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x55;
    std::fs::write(path, b).unwrap();
}

#[test]
fn test_requests_past_the_end_and_writes_to_read_only_disks() {
    let im = Images::new();
    let path = im.make("disk.vhdx", "vhdx", "");
    let disk = open(&path, true).unwrap();
    let mut buf = [0u8; 1024];
    assert!(matches!(
        disk.read_at(&mut buf, SIZE - 512),
        Err(DiskError::OutOfRange { .. })
    ));
    assert!(matches!(
        disk.read_at(&mut buf, u64::MAX - 10),
        Err(DiskError::OutOfRange { .. })
    ));
    assert!(matches!(disk.write_at(&buf, 0), Err(DiskError::ReadOnly)));
}

#[test]
fn test_corrupt_vhd_footers_and_headers_fail_by_name() {
    let im = Images::new();
    let fixed = im.make("fixed.vhd", "vpc", "subformat=fixed,force_size=on");
    let len = std::fs::metadata(&fixed).unwrap().len();
    // A footer byte changed: the checksum no longer matches. (The cookie still says VHD.)
    flip(&fixed, len - 512 + 40);
    let e = open_err(&fixed, true);
    assert!(
        matches!(
            e,
            DiskError::Corrupt {
                what: "footer checksum",
                ..
            }
        ),
        "{e}"
    );
    let dynamic = im.make("dyn.vhd", "vpc", "subformat=dynamic,force_size=on");
    // The dynamic header's checksum.
    flip(&dynamic, 512 + 20);
    let e = open_err(&dynamic, true);
    assert!(
        matches!(
            e,
            DiskError::Corrupt {
                what: "dynamic header checksum",
                ..
            }
        ),
        "{e}"
    );
    // A dynamic image cut short after its block table: it opens, and a read of a block whose
    // data was cut off is an error naming it (never bytes from outside the image).
    let cut = im.make("cut.vhd", "vpc", "subformat=dynamic,force_size=on");
    let b = std::fs::read(&cut).unwrap();
    let mut short = b[..2048].to_vec();
    short.extend_from_slice(&b[b.len() - 512..]);
    std::fs::write(&cut, short).unwrap();
    let disk = open(&cut, true).unwrap();
    let mut buf = [0u8; 512];
    let e = disk.read_at(&mut buf, 0).unwrap_err();
    assert!(
        matches!(
            e,
            DiskError::Corrupt {
                what: "block past the end of the file",
                ..
            }
        ),
        "{e}"
    );
    // Cut inside the block table itself: refused at open.
    let mut shorter = b[..1560].to_vec();
    shorter.extend_from_slice(&b[b.len() - 512..]);
    std::fs::write(&cut, shorter).unwrap();
    let e = open_err(&cut, true);
    assert!(matches!(e, DiskError::Corrupt { .. }), "{e}");
}

#[test]
fn test_corrupt_vhdx_headers_and_regions_fail_by_name() {
    let im = Images::new();
    let path = im.make("a.vhdx", "vhdx", "");
    // Both headers broken.
    flip(&path, (64 << 10) + 100);
    flip(&path, (128 << 10) + 100);
    let e = open_err(&path, true);
    assert!(
        matches!(
            e,
            DiskError::Corrupt {
                what: "no valid header",
                ..
            }
        ),
        "{e}"
    );
    // One header broken: the other serves.
    let one = im.make("b.vhdx", "vhdx", "");
    flip(&one, (64 << 10) + 100);
    let other = im.make("b2.vhdx", "vhdx", "");
    flip(&other, (128 << 10) + 100);
    assert_eq!(read_all(&one), im.raw);
    assert_eq!(read_all(&other), im.raw);
    // Both region tables broken.
    let regions = im.make("c.vhdx", "vhdx", "");
    flip(&regions, (192 << 10) + 20);
    flip(&regions, (256 << 10) + 20);
    let e = open_err(&regions, true);
    assert!(
        matches!(
            e,
            DiskError::Corrupt {
                what: "no valid region table",
                ..
            }
        ),
        "{e}"
    );
    // Too short for its headers.
    let short = im.path("short.vhdx");
    std::fs::write(&short, b"vhdxfile").unwrap();
    assert!(matches!(open_err(&short, true), DiskError::Corrupt { .. }));
}

#[test]
fn test_vhdx_with_a_log_to_replay_is_refused() {
    let im = Images::new();
    let path = im.make("dirty.vhdx", "vhdx", "");
    // Give the current header a log GUID (and a valid checksum): a file not closed cleanly.
    let mut b = std::fs::read(&path).unwrap();
    for at in [64usize << 10, 128 << 10] {
        let h = &mut b[at..at + 4096];
        h[48..64].copy_from_slice(&[0xab; 16]);
        let sum = lcow_disk::vhdx::crc32c(h, 4);
        h[4..8].copy_from_slice(&sum.to_le_bytes());
    }
    std::fs::write(&path, b).unwrap();
    let e = open_err(&path, false);
    assert!(matches!(e, DiskError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("log to replay"), "{e}");
}

#[test]
fn test_vhdx_writes_mark_the_headers() {
    let im = Images::new();
    let path = im.make("w.vhdx", "vhdx", "");
    let seq = |b: &[u8]| {
        [64usize << 10, 128 << 10]
            .iter()
            .filter_map(|&at| {
                let h: [u8; 4096] = b[at..at + 4096].try_into().unwrap();
                lcow_disk::vhdx::parse_header(&h).map(|h| h.sequence)
            })
            .max()
            .unwrap()
    };
    let before = seq(&std::fs::read(&path).unwrap());
    {
        let disk = open(&path, false).unwrap();
        disk.write_at(&[1u8; 512], 0).unwrap();
        disk.write_at(&[2u8; 512], 4096).unwrap();
    }
    let after = seq(&std::fs::read(&path).unwrap());
    assert_eq!(after, before + 1, "one header update per session");
}
