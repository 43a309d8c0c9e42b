//! `lcow-fstest bench DIR`: a small, dependency-free I/O benchmark for the guest (where fio is
//! not available), printed as `bench: NAME VALUE UNIT` lines. The page cache is dropped (when
//! the process may) before each read phase so reads reach the file server.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

const SEQ_BYTES: usize = 64 << 20;
const SEQ_BLOCK: usize = 1 << 20;
const RAND_FILE: u64 = 16 << 20;
const RAND_OPS: usize = 2048;
const TREE_DIRS: usize = 20;
const TREE_FILES: usize = 50;

fn drop_caches() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
}

fn report(name: &str, value: f64, unit: &str) {
    println!("bench: {name} {value:.1} {unit}");
}

/// xorshift64: a repeatable pseudo-random offset sequence.
fn offsets(n: usize, blocks: u64) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % blocks) * 4096
        })
        .collect()
}

pub fn run(dir: &Path) -> Result<()> {
    let work = dir.join("lcow-bench");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("mkdir {}", work.display()))?;

    // Sequential write then read.
    let path = work.join("seq");
    let block = vec![0x5au8; SEQ_BLOCK];
    let t = Instant::now();
    let mut f = File::create(&path).context("create seq")?;
    for _ in 0..SEQ_BYTES / SEQ_BLOCK {
        f.write_all(&block).context("seq write")?;
    }
    f.sync_all().context("fsync seq")?;
    drop(f);
    report(
        "seq-write",
        SEQ_BYTES as f64 / t.elapsed().as_secs_f64() / 1e6,
        "MB/s",
    );
    drop_caches();
    let mut buf = vec![0u8; SEQ_BLOCK];
    let f = File::open(&path).context("open seq")?;
    let t = Instant::now();
    let mut off = 0u64;
    loop {
        let n = f.read_at(&mut buf, off).context("seq read")?;
        if n == 0 {
            break;
        }
        off += n as u64;
    }
    report(
        "seq-read",
        off as f64 / t.elapsed().as_secs_f64() / 1e6,
        "MB/s",
    );
    drop(f);

    // 4 KiB random writes (then fsync) and reads.
    let path = work.join("rand");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    f.set_len(RAND_FILE)?;
    let offs = offsets(RAND_OPS, RAND_FILE / 4096);
    let page = vec![0xa5u8; 4096];
    let t = Instant::now();
    for &o in &offs {
        f.write_at(&page, o).context("random write")?;
    }
    f.sync_all()?;
    report(
        "rand-write-4k",
        RAND_OPS as f64 / t.elapsed().as_secs_f64(),
        "IOPS",
    );
    drop_caches();
    let mut page = vec![0u8; 4096];
    let t = Instant::now();
    for &o in offs.iter().rev() {
        f.read_at(&mut page, o).context("random read")?;
    }
    report(
        "rand-read-4k",
        RAND_OPS as f64 / t.elapsed().as_secs_f64(),
        "IOPS",
    );
    drop(f);

    // Metadata: create a tree of small files, walk it, remove it.
    let tree = work.join("tree");
    let t = Instant::now();
    for d in 0..TREE_DIRS {
        let sub = tree.join(format!("d{d}"));
        fs::create_dir_all(&sub)?;
        for i in 0..TREE_FILES {
            fs::write(sub.join(format!("f{i}")), b"0123456789abcdef")?;
        }
    }
    let files = (TREE_DIRS * TREE_FILES) as f64;
    report("create-files", files / t.elapsed().as_secs_f64(), "files/s");
    drop_caches();
    let t = Instant::now();
    let mut seen = 0usize;
    for d in fs::read_dir(&tree)? {
        let d = d?;
        for e in fs::read_dir(d.path())? {
            let e = e?;
            fs::symlink_metadata(e.path())?;
            seen += 1;
        }
    }
    report(
        "walk-stat",
        seen as f64 / t.elapsed().as_secs_f64(),
        "files/s",
    );
    let t = Instant::now();
    fs::remove_dir_all(&tree)?;
    report("remove-files", files / t.elapsed().as_secs_f64(), "files/s");
    fs::remove_dir_all(&work)?;
    Ok(())
}
