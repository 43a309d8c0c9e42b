//! `lcow-fs mount`: serve a host directory through `/dev/fuse` with the lcow FUSE server.
//!
//! Requests are read by a pool of threads that grows while every reader is busy (a blocking
//! SETLKW holds its thread until the lock is granted or interrupted, and the request that
//! releases the lock must still be read) and shrinks when too many are idle. SIGINT, SIGTERM and
//! SIGHUP unmount; a busy mount is detached instead and served until its last user leaves. A
//! second signal ends the server at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lcow_fs::backend::mapped::{self, Mapped};
use lcow_fs::backend::passthrough::{self, Passthrough};
use lcow_fs::backend::Backend;
use lcow_fs::fuse::server::{Options, Server};
use nix::sys::signal::{SigSet, Signal};

use crate::args::{BackendKind, MountArgs};
use crate::devfuse::{fsname_of, read_request, write_reply, FuseMount, MountOptions};

/// Room for one request: the largest WRITE payload plus its headers, with margin.
const HEADER_ROOM: usize = 64 * 1024;
/// The most reader threads at once.
const MAX_THREADS: usize = 64;
/// Idle readers beyond this many leave.
const MAX_IDLE: usize = 4;

/// Runs `lcow-fs mount` until the file system is unmounted.
pub fn run(args: &MountArgs) -> Result<()> {
    if !args.src.is_dir() {
        bail!("source {} is not a directory", args.src.display());
    }
    if !(0.0..=86400.0).contains(&args.cache_timeout) {
        bail!(
            "--cache-timeout {} is out of range (0 to 86400 seconds)",
            args.cache_timeout
        );
    }
    let timeout = Duration::from_secs_f64(args.cache_timeout);
    let options = Options {
        entry_timeout: timeout,
        attr_timeout: timeout,
        ..Options::default()
    };
    match args.backend {
        BackendKind::Passthrough => {
            let b = Passthrough::new(
                &args.src,
                passthrough::Config {
                    read_only: args.ro,
                    locks: args.locks.into(),
                },
            )
            .with_context(|| format!("cannot serve {}", args.src.display()))?;
            serve(b, options, args)
        }
        BackendKind::Mapped => {
            let b = Mapped::new(
                &args.src,
                mapped::Config {
                    read_only: args.ro,
                    locks: args.locks.into(),
                },
            )
            .with_context(|| format!("cannot serve {}", args.src.display()))?;
            serve(b, options, args)
        }
    }
}

fn serve<B: Backend + 'static>(backend: B, options: Options, args: &MountArgs) -> Result<()> {
    let buf_size = options.max_write as usize + HEADER_ROOM;
    let server = Arc::new(Server::new(backend, options));

    // Signals are taken by one thread with sigwait; every other thread inherits the mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGHUP);
    signals
        .thread_block()
        .context("cannot block SIGINT/SIGTERM")?;

    let mount = Arc::new(FuseMount::mount(
        &args.mnt,
        &MountOptions {
            read_only: args.ro,
            allow_other: args.allow_other,
            fsname: fsname_of(&args.src),
        },
    )?);
    tracing::info!(
        src = %args.src.display(),
        mnt = %mount.mount_point().display(),
        backend = ?args.backend,
        locks = ?args.locks,
        read_only = args.ro,
        "serving"
    );

    let stopping = Arc::new(AtomicBool::new(false));
    {
        let mount = Arc::clone(&mount);
        let stopping = Arc::clone(&stopping);
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || signal_loop(&signals, &mount, &stopping))
            .context("cannot start the signal thread")?;
    }

    let pool = Arc::new(Pool {
        idle: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        done: (std::sync::Mutex::new(()), std::sync::Condvar::new()),
    });
    pool.spawn(&server, &mount, buf_size)?;
    pool.wait_all();
    if pool.failed.load(Ordering::Acquire) {
        // Leave no dead mount behind.
        let _ = mount.unmount(true);
        bail!(
            "the FUSE connection at {} failed (see the log)",
            mount.mount_point().display()
        );
    }
    tracing::info!(mnt = %mount.mount_point().display(), "unmounted");
    Ok(())
}

fn signal_loop(signals: &SigSet, mount: &FuseMount, stopping: &AtomicBool) {
    loop {
        let Ok(sig) = signals.wait() else { continue };
        if stopping.swap(true, Ordering::AcqRel) {
            tracing::warn!(signal = ?sig, "second signal: stopping at once");
            let _ = mount.unmount(true);
            std::process::exit(1);
        }
        tracing::info!(signal = ?sig, mnt = %mount.mount_point().display(), "unmounting");
        if let Err(e) = mount.unmount(false) {
            tracing::warn!(
                error = %format!("{e:#}"),
                "mount busy: detached; serving its current users until they leave (signal again to stop now)"
            );
            if let Err(e) = mount.unmount(true) {
                tracing::error!(error = %format!("{e:#}"), "lazy unmount failed");
            }
        }
    }
}

/// The reader threads.
struct Pool {
    idle: AtomicUsize,
    total: AtomicUsize,
    failed: AtomicBool,
    done: (std::sync::Mutex<()>, std::sync::Condvar),
}

impl Pool {
    fn spawn<B: Backend + 'static>(
        self: &Arc<Self>,
        server: &Arc<Server<B>>,
        mount: &Arc<FuseMount>,
        buf_size: usize,
    ) -> Result<()> {
        self.total.fetch_add(1, Ordering::AcqRel);
        let (pool, server, mount) = (Arc::clone(self), Arc::clone(server), Arc::clone(mount));
        let spawned = thread::Builder::new()
            .name("fuse".into())
            .spawn(move || pool.reader(&server, &mount, buf_size));
        if let Err(e) = spawned {
            self.exit();
            return Err(e).context("cannot start a FUSE reader thread");
        }
        Ok(())
    }

    fn reader<B: Backend + 'static>(
        self: &Arc<Self>,
        server: &Arc<Server<B>>,
        mount: &Arc<FuseMount>,
        buf_size: usize,
    ) {
        let mut buf = vec![0u8; buf_size];
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let got = read_request(mount.dev(), &mut buf);
            let idle_left = self.idle.fetch_sub(1, Ordering::AcqRel) - 1;
            let n = match got {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "reading /dev/fuse failed");
                    self.failed.store(true, Ordering::Release);
                    break;
                }
            };
            if idle_left == 0 && self.total.load(Ordering::Acquire) < MAX_THREADS {
                if let Err(e) = self.spawn(server, mount, buf_size) {
                    tracing::warn!(error = %format!("{e:#}"), "no extra reader thread");
                }
            }
            if let Some(reply) = server.handle(&buf[..n]) {
                if let Err(e) = write_reply(mount.dev(), &reply) {
                    tracing::error!(error = %e, "writing a FUSE reply failed");
                }
            }
            if self.idle.load(Ordering::Acquire) >= MAX_IDLE {
                break;
            }
        }
        self.exit();
    }

    fn exit(&self) {
        let _guard = self.done.0.lock().unwrap_or_else(|p| p.into_inner());
        self.total.fetch_sub(1, Ordering::AcqRel);
        self.done.1.notify_all();
    }

    fn wait_all(&self) {
        let mut guard = self.done.0.lock().unwrap_or_else(|p| p.into_inner());
        while self.total.load(Ordering::Acquire) > 0 {
            guard = self.done.1.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }
}
