//! `lcow-fstest`: checks, run inside a guest on a file share, that locks and SQLite behave as on
//! a local disk. Each check prints `ok: ...` lines and ends with `PASS <check>`, or prints
//! `FAIL: ...` and exits 1.
//!
//! - `locks DIR`: POSIX record locks (fcntl) and flock between two processes: conflicts are
//!   refused, F_GETLK names the holder, a blocked F_SETLKW waits for the release, two
//!   descriptors of one process share its POSIX locks and closing either releases them.
//! - `sqlite DIR`: a database in WAL mode written by two processes at once (busy timeout), read
//!   meanwhile by a third; every row arrives and `PRAGMA integrity_check` says ok.
//! - `xattr DIR [NAMESPACE]`: set, get, list, replace and remove a NAMESPACE.* (default user.*) extended attribute.
//! - `bench DIR`: `name value unit` lines for sequential and random I/O and metadata work.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod bench;
mod xattr;

const ROWS_PER_WRITER: u32 = 300;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("locks") if args.len() == 3 => locks(Path::new(&args[2])),
        Some("sqlite") if args.len() == 3 => sqlite(Path::new(&args[2])),
        Some("bench") if args.len() == 3 => bench::run(Path::new(&args[2])),
        Some("mmap") if args.len() == 3 => mmap(Path::new(&args[2])),
        Some("xattr") if args.len() == 3 => xattr::run(Path::new(&args[2]), "user"),
        Some("xattr") if args.len() == 4 => xattr::run(Path::new(&args[2]), &args[3]),
        Some("child-mmap") if args.len() == 3 => mmap_child(Path::new(&args[2])),
        Some("child") if args.len() >= 4 => child(&args[2], Path::new(&args[3]), &args[4..]),
        Some("child-sqlite") if args.len() == 4 => match args[3].parse() {
            Ok(w) => sqlite_writer(Path::new(&args[2]), w),
            Err(_) => Err(anyhow::anyhow!("bad writer number {}", args[3])),
        },
        _ => {
            eprintln!(
                "usage: lcow-fstest locks DIR | sqlite DIR | mmap DIR | xattr DIR [NAMESPACE] | bench DIR\n\
                 Checks lock semantics, SQLite WAL, shared mappings and xattrs on the file system holding DIR, or\n\
                 measures it (sequential and 4 KiB random I/O, file create/walk/remove)."
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("FAIL: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ok(what: &str) {
    println!("ok: {what}");
}

// ---------------------------------------------------------------------------------------------
// fcntl and flock

fn flock_of(kind: i32, start: i64, len: i64) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start;
    fl.l_len = len;
    fl
}

/// fcntl(F_SETLK/F_SETLKW); Ok(false) when a conflicting lock is held.
fn setlk(f: &File, kind: i32, start: i64, len: i64, wait: bool) -> Result<bool> {
    let fl = flock_of(kind, start, len);
    let cmd = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    // SAFETY: fcntl with a valid descriptor and a pointer to a live flock.
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e).context("fcntl(F_SETLK)"),
    }
}

/// fcntl(F_GETLK): the conflicting lock's type and pid, or None.
fn getlk(f: &File, kind: i32, start: i64, len: i64) -> Result<Option<(i32, i32)>> {
    let mut fl = flock_of(kind, start, len);
    // SAFETY: fcntl with a valid descriptor and a pointer to a live flock it fills in.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) } != 0 {
        return Err(std::io::Error::last_os_error()).context("fcntl(F_GETLK)");
    }
    Ok((i32::from(fl.l_type) != libc::F_UNLCK).then_some((i32::from(fl.l_type), fl.l_pid)))
}

/// flock(2); Ok(false) when it would block.
fn flock(f: &File, op: i32) -> Result<bool> {
    // SAFETY: flock with a valid descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(e).context("flock")
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

fn spawn_child(args: &[&str]) -> Result<Child> {
    Command::new(std::env::current_exe().context("own path")?)
        .arg("child")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .context("spawn a child process")
}

fn child_says(child: Child) -> Result<String> {
    let out = child.wait_with_output().context("wait for the child")?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        bail!("child failed ({}): {text}", out.status);
    }
    Ok(text)
}

/// What a second process sees.
fn child(what: &str, path: &Path, rest: &[String]) -> Result<()> {
    let f = open_rw(path)?;
    match what {
        "try-write" => {
            // try-write START LEN
            let start: i64 = rest.first().context("start")?.parse()?;
            let len: i64 = rest.get(1).context("len")?.parse()?;
            println!(
                "{}",
                if setlk(&f, libc::F_WRLCK, start, len, false)? {
                    "got"
                } else {
                    "busy"
                }
            );
        }
        "getlk" => match getlk(&f, libc::F_WRLCK, 0, 0)? {
            Some((kind, pid)) => {
                println!("{} {pid}", if kind == libc::F_WRLCK { "W" } else { "R" })
            }
            None => println!("none"),
        },
        "wait-write" => {
            // Proves the lock is held when the wait starts, then waits for it.
            if setlk(&f, libc::F_WRLCK, 0, 100, false)? {
                bail!("the range was free when the waiter started");
            }
            println!("waiting");
            setlk(&f, libc::F_WRLCK, 0, 100, true)?;
            println!("got");
        }
        "try-flock" => {
            println!(
                "{}",
                if flock(&f, libc::LOCK_EX | libc::LOCK_NB)? {
                    "got"
                } else {
                    "busy"
                }
            );
        }
        other => bail!("unknown child check {other}"),
    }
    Ok(())
}

fn locks(dir: &Path) -> Result<()> {
    let path = dir.join("lcow-fstest.lock");
    let _ = std::fs::remove_file(&path);
    let p = path.to_str().context("path is not UTF-8")?;
    let me = std::process::id() as i32;
    let f = open_rw(&path)?;

    // fcntl: conflicts between processes.
    if !setlk(&f, libc::F_WRLCK, 0, 100, false)? {
        bail!("F_SETLK on a fresh file was refused");
    }
    let seen = child_says(spawn_child(&["try-write", p, "50", "100"])?)?;
    if seen != "busy" {
        bail!("another process locked bytes 50..150 over our write lock on 0..100 ({seen})");
    }
    ok("fcntl: an overlapping write lock from another process is refused");
    let seen = child_says(spawn_child(&["try-write", p, "100", "100"])?)?;
    if seen != "got" {
        bail!("another process could not lock the free bytes 100..200 ({seen})");
    }
    ok("fcntl: a disjoint range is free for another process");
    let seen = child_says(spawn_child(&["getlk", p])?)?;
    if seen != format!("W {me}") {
        bail!("F_GETLK in another process says {seen:?}, expected \"W {me}\"");
    }
    ok("fcntl: F_GETLK names the holder's type and pid");

    // A waiter blocks while the lock is held and wakes when the holder unlocks. Timed from
    // the waiter's own "waiting" line, so a slow process start does not matter.
    let mut waiter = spawn_child(&["wait-write", p])?;
    let mut out = std::io::BufReader::new(waiter.stdout.take().context("waiter's stdout")?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).context("read the waiter")?;
    if line.trim() != "waiting" {
        let _ = waiter.wait();
        bail!(
            "the waiter did not find the range locked: {:?}",
            line.trim()
        );
    }
    std::thread::sleep(Duration::from_millis(400));
    if let Some(status) = waiter.try_wait().context("poll the waiter")? {
        bail!("F_SETLKW returned ({status}) while the lock was still held");
    }
    setlk(&f, libc::F_UNLCK, 0, 0, false)?;
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).context("read the waiter")?;
    let status = waiter.wait().context("wait for the waiter")?;
    if line.trim() != "got" || !status.success() {
        bail!(
            "the waiter did not get the lock after the release ({status}): {:?}",
            line.trim()
        );
    }
    ok("fcntl: F_SETLKW blocks while the lock is held and wakes on its release");

    // POSIX: locks belong to the process; a second descriptor shares them and closing any
    // descriptor of the file releases them all.
    let g = open_rw(&path)?;
    if !setlk(&f, libc::F_WRLCK, 0, 100, false)? || !setlk(&g, libc::F_WRLCK, 0, 100, false)? {
        bail!("one process could not write-lock the same range through two descriptors");
    }
    ok("fcntl: two descriptors of one process do not conflict");
    drop(g);
    let seen = child_says(spawn_child(&["try-write", p, "0", "100"])?)?;
    if seen != "got" {
        bail!("closing one descriptor did not release the process's locks ({seen})");
    }
    ok("fcntl: closing a descriptor releases the process's locks");

    // flock: per open file description.
    let h = open_rw(&path)?;
    if !flock(&h, libc::LOCK_EX | libc::LOCK_NB)? {
        bail!("flock on a fresh file was refused");
    }
    let seen = child_says(spawn_child(&["try-flock", p])?)?;
    if seen != "busy" {
        bail!("another process took flock LOCK_EX over ours ({seen})");
    }
    ok("flock: LOCK_EX from another process is refused");
    flock(&h, libc::LOCK_UN)?;
    let seen = child_says(spawn_child(&["try-flock", p])?)?;
    if seen != "got" {
        bail!("flock stayed held after LOCK_UN ({seen})");
    }
    ok("flock: LOCK_UN frees it");
    drop(f);
    std::fs::remove_file(&path).ok();
    println!("PASS locks");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared mappings

const MAP_LEN: usize = 32 << 10;
const MAP_ROUNDS: u32 = 2000;

/// Maps `path` shared, read-write.
fn map_shared(path: &Path) -> Result<(File, *mut u32)> {
    let f = open_rw(path)?;
    f.set_len(MAP_LEN as u64)?;
    // SAFETY: a fresh shared mapping of a file this process opened; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            MAP_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error()).context("mmap MAP_SHARED");
    }
    Ok((f, p.cast()))
}

/// Two processes count up in one shared mapping, each in its own page, and read the other's.
fn mmap(dir: &Path) -> Result<()> {
    let path = dir.join("lcow-fstest.map");
    let _ = std::fs::remove_file(&path);
    let (_f, p) = map_shared(&path)?;
    let child = Command::new(std::env::current_exe()?)
        .args(["child-mmap", path.to_str().context("path is not UTF-8")?])
        .stdout(Stdio::piped())
        .spawn()
        .context("spawn the mapping child")?;
    let words = MAP_LEN / 4;
    for round in 1..=MAP_ROUNDS {
        for page in (0..words).step_by(1024 * 2) {
            // SAFETY: `page` < words, inside the live mapping; volatile because another
            // process writes the same memory.
            unsafe { std::ptr::write_volatile(p.add(page), round) };
        }
    }
    let said = child_says(child)?;
    // SAFETY: msync of the whole live mapping.
    if unsafe { libc::msync(p.cast(), MAP_LEN, libc::MS_SYNC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("msync");
    }
    // SAFETY: index 1024 (the child's page) lies inside the mapping.
    let theirs = unsafe { std::ptr::read_volatile(p.add(1024)) };
    if theirs != MAP_ROUNDS {
        bail!("the other process's page reads {theirs}, expected {MAP_ROUNDS} ({said})");
    }
    ok(&format!(
        "mmap: two processes share a MAP_SHARED file mapping ({said})"
    ));
    let data = std::fs::read(&path)?;
    let on_disk = u32::from_ne_bytes(data[4096..4100].try_into()?);
    if on_disk != MAP_ROUNDS {
        bail!("after msync the file holds {on_disk}, expected {MAP_ROUNDS}");
    }
    ok("mmap: msync wrote the pages to the file");
    std::fs::remove_file(&path).ok();
    println!("PASS mmap");
    Ok(())
}

fn mmap_child(path: &Path) -> Result<()> {
    let (_f, p) = map_shared(path)?;
    let t = Instant::now();
    let mut seen = 0;
    for round in 1..=MAP_ROUNDS {
        // SAFETY: index 1024 and 0 lie inside the live mapping.
        unsafe { std::ptr::write_volatile(p.add(1024), round) };
        seen = seen.max(unsafe { std::ptr::read_volatile(p) });
    }
    println!(
        "child wrote {MAP_ROUNDS} rounds in {} ms, saw the parent at {seen}",
        t.elapsed().as_millis()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SQLite

fn db_open(path: &Path) -> Result<rusqlite::Connection> {
    let db =
        rusqlite::Connection::open(path).with_context(|| format!("open {}", path.display()))?;
    db.busy_timeout(Duration::from_secs(30))?;
    Ok(db)
}

fn sqlite(dir: &Path) -> Result<()> {
    let path: PathBuf = dir.join("lcow-fstest.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let db = db_open(&path)?;
    // LCOW_FSTEST_JOURNAL (wal by default) and LCOW_FSTEST_WRITERS (2) vary the workload when a
    // failure needs narrowing down.
    let journal = std::env::var("LCOW_FSTEST_JOURNAL").unwrap_or_else(|_| "wal".into());
    let writers_n: u32 = std::env::var("LCOW_FSTEST_WRITERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let mode: String = db.query_row(&format!("PRAGMA journal_mode={journal}"), [], |r| r.get(0))?;
    if mode != journal {
        bail!("journal_mode={journal} answered {mode:?}");
    }
    db.execute_batch("CREATE TABLE t (writer INTEGER, n INTEGER, PRIMARY KEY (writer, n));")?;
    ok(&format!("sqlite: journal mode {journal}"));
    let p = path.to_str().context("path is not UTF-8")?;
    let exe = std::env::current_exe()?;
    let writers = (1..=writers_n)
        .map(|w| {
            Command::new(&exe)
                .args(["child-sqlite", p, &w.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .context("spawn a writer")
        })
        .collect::<Result<Vec<_>>>()?;
    // Read while they write: counts only grow.
    let mut last = 0i64;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(120) {
        let n: i64 = db.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        if n < last {
            bail!("a reader saw the row count go back from {last} to {n}");
        }
        last = n;
        if n == i64::from(writers_n * ROWS_PER_WRITER) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for w in writers {
        let said = child_says(w)?;
        ok(&format!("sqlite: {said}"));
    }
    let n: i64 = db.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    if n != i64::from(writers_n * ROWS_PER_WRITER) {
        bail!("{n} rows after {writers_n} writers of {ROWS_PER_WRITER} each");
    }
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        bail!("integrity_check: {check}");
    }
    ok(&format!(
        "sqlite: {n} rows from two concurrent writers, integrity ok"
    ));
    drop(db);
    println!("PASS sqlite");
    Ok(())
}

/// A writer process: one transaction per row.
fn sqlite_writer(path: &Path, writer: u32) -> Result<()> {
    let db = db_open(path)?;
    let t = Instant::now();
    for n in 0..ROWS_PER_WRITER {
        db.execute("INSERT INTO t (writer, n) VALUES (?1, ?2)", (writer, n))
            .with_context(|| format!("writer {writer} row {n}"))?;
    }
    println!(
        "writer {writer}: {ROWS_PER_WRITER} transactions in {} ms",
        t.elapsed().as_millis()
    );
    Ok(())
}
