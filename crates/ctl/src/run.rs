//! `lcow-ctl run`: create a container from the guest's test rootfs (or from layer disks of
//! the VM, `--rootfs-disks`), connect its stdio, start it, stream until it ends, remove it, and
//! return its exit status.

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use clap::Args;
use lcow_protocol::agent::{
    ContainerRequest, CreateContainerRequest, ExitStatus, ResizePtyRequest, StartProcessRequest,
    Stdio, WaitProcessRequest,
};
use lcow_protocol::hybrid::HostStream;
use lcow_protocol::layers::LayeredRootfs;
use lcow_protocol::stdio::StreamKind;

use crate::agent::{ctx, rpc_message, Agent, CALL_TIMEOUT};
use crate::spec::{self, RunSpec};
use crate::{exit_code, share, tty};

/// How long output may keep flowing after the process has ended (a daemonised child can hold
/// the pipe open forever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Give the process a pseudo-terminal (stdout and stderr both come through it).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// The terminal size as ROWSxCOLS (default: the operator's terminal, else 24x80).
    #[arg(long, value_name = "ROWSxCOLS", value_parser = tty::parse_size, requires = "tty")]
    pub tty_size: Option<(u16, u16)>,
    /// The container id (default: ctl-<pid>-<time>).
    #[arg(long)]
    pub id: Option<String>,
    /// Start the container and print its id without waiting or streaming stdio.
    #[arg(long, short = 'd', conflicts_with = "tty")]
    pub detach: bool,
    /// A memory limit (memory.max) in bytes, or with a K, M or G suffix.
    #[arg(long, value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// Extra environment entries KEY=VALUE.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// The working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Mount a file share of the VM (lcow-vmm --share TAG=PATH) in the container at DEST.
    /// Options: virtiofs (default) or 9p, the share's protocol; ro. Repeatable.
    #[arg(long, value_name = "TAG:DEST[:OPT,...]", value_parser = share::parse)]
    pub share: Vec<share::Share>,
    /// Build the rootfs from the VM's disks (`lcow-vmm run --disk`, numbered from 0 in order):
    /// LAYERS is a comma-separated list of read-only ext4 layer disks, the base layer first;
    /// SCRATCH the writable ext4 disk that holds the overlay's upper layer. The rootfs is
    /// writable. Default: the test rootfs in the guest's initramfs.
    #[arg(long, value_name = "LAYERS:SCRATCH", value_parser = parse_rootfs_disks)]
    pub rootfs_disks: Option<LayeredRootfs>,
    /// Give the process every capability and a writable rootfs (file-system test suites that
    /// chown, mknod and switch users need it).
    #[arg(long)]
    pub privileged: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, mult) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a size like 16M"))
}

/// Parses `--rootfs-disks LAYERS:SCRATCH` (e.g. `0,1:2`).
fn parse_rootfs_disks(text: &str) -> Result<LayeredRootfs, String> {
    let usage = || format!("{text:?} is not LAYERS:SCRATCH, disk numbers like 0,1:2");
    let (layers, scratch) = text.split_once(':').ok_or_else(usage)?;
    let number = |d: &str| d.trim().parse::<usize>().map_err(|_| usage());
    let layers = layers
        .split(',')
        .map(number)
        .collect::<Result<Vec<_>, _>>()?;
    LayeredRootfs::new(layers, number(scratch)?).map_err(|e| format!("{text:?}: {e}"))
}

fn default_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("ctl-{}-{nanos}", std::process::id())
}

/// Copies `from` into `to` until EOF, then shuts the socket's write side (if any).
fn pump(mut from: impl Read, mut to: impl Write, done: impl FnOnce()) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    done();
}

/// Runs the container; returns the exit code to leave with.
pub fn run(agent: &Agent, args: RunArgs) -> anyhow::Result<u8> {
    let id = args.id.clone().unwrap_or_else(default_id);
    anyhow::ensure!(
        lcow_protocol::valid_id(&id),
        "{id:?} is not a valid container id"
    );
    let spec = spec::build(&RunSpec {
        args: args.command.clone(),
        terminal: args.tty,
        env: args.env.clone(),
        memory: args.memory,
        cwd: args.cwd.clone(),
        shares: args.share.clone(),
        privileged: args.privileged,
        writable_root: args.rootfs_disks.is_some(),
    })?;
    let mut guest_mounts = share::guest_mounts(&args.share)?;
    let rootfs = match &args.rootfs_disks {
        Some(layers) => {
            // The layers, scratch and overlay, then the shares.
            let mut mounts = layers.guest_mounts(&id);
            mounts.append(&mut guest_mounts);
            guest_mounts = mounts;
            LayeredRootfs::rootfs(&id)
        }
        None => String::new(),
    };
    let stdio = Stdio {
        stdin: !args.detach,
        stdout: !args.detach,
        stderr: !args.detach && !args.tty,
        terminal: args.tty,
        ..Default::default()
    };
    let streams = Streams::open(agent, &id, "", &stdio)?;

    let client = &agent.client;
    let cid = || ContainerRequest {
        container_id: id.clone(),
        ..Default::default()
    };
    client
        .create_container(
            ctx(CALL_TIMEOUT),
            &CreateContainerRequest {
                container_id: id.clone(),
                oci_spec: spec,
                rootfs,
                guest_mounts,
                stdio: Some(stdio).into(),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow!("cannot create container {id}: {}", rpc_message(&e)))?;

    let resize = |(rows, cols): (u16, u16)| {
        client.resize_pty(
            ctx(CALL_TIMEOUT),
            &ResizePtyRequest {
                container_id: id.clone(),
                width: u32::from(cols),
                height: u32::from(rows),
                ..Default::default()
            },
        )
    };
    let _raw = if args.tty {
        let size = args.tty_size.or_else(tty::stdin_size).unwrap_or((24, 80));
        resize(size).map_err(|e| anyhow!("cannot size the terminal: {}", rpc_message(&e)))?;
        if tty::stdin_is_tty() {
            Some(tty::raw_stdin().context("cannot put the terminal in raw mode")?)
        } else {
            None
        }
    } else {
        None
    };

    client
        .start_process(
            ctx(CALL_TIMEOUT),
            &StartProcessRequest {
                container_id: id.clone(),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow!("cannot start container {id}: {}", rpc_message(&e)))?;
    if args.detach {
        println!("{id}");
        return Ok(0);
    }

    let status = attach(agent, &id, "", streams, args.tty && args.tty_size.is_none())?;
    drop(_raw);
    if let Ok(stats) = client.stats(ctx(CALL_TIMEOUT), &cid()) {
        if stats.memory_events_oom_kill > 0 {
            eprintln!("lcow-ctl: container {id} was OOM-killed");
        }
    }
    if let Err(e) = client.remove_container(ctx(CALL_TIMEOUT), &cid()) {
        eprintln!(
            "lcow-ctl: cannot remove container {id}: {}",
            rpc_message(&e)
        );
    }
    Ok(exit_code(status.exit_status))
}

/// The connected stdio streams of one process.
#[derive(Debug, Default)]
pub struct Streams {
    stdin: Option<HostStream>,
    stdout: Option<HostStream>,
    stderr: Option<HostStream>,
}

impl Streams {
    /// Opens the streams `stdio` declares for (`id`, `exec`).
    pub fn open(agent: &Agent, id: &str, exec: &str, stdio: &Stdio) -> anyhow::Result<Self> {
        let open = |kind, wanted: bool| -> anyhow::Result<Option<HostStream>> {
            Ok(wanted
                .then(|| agent.open_stream(id, exec, kind))
                .transpose()?)
        };
        Ok(Self {
            stdin: open(StreamKind::Stdin, stdio.stdin)?,
            stdout: open(StreamKind::Stdout, stdio.stdout)?,
            stderr: open(StreamKind::Stderr, stdio.stderr)?,
        })
    }
}

/// Streams the process's stdio to and from ours until it ends and its output is drained;
/// with `follow_winch`, also passes the operator's terminal size changes on.
pub fn attach(
    agent: &Agent,
    id: &str,
    exec: &str,
    streams: Streams,
    follow_winch: bool,
) -> anyhow::Result<ExitStatus> {
    if let Some(s) = streams.stdin {
        thread::spawn(move || {
            let sock = s.try_clone();
            pump(io::stdin().lock(), s, move || {
                if let Ok(sock) = sock {
                    tty::close_write(sock);
                }
            });
        });
    }
    if follow_winch && tty::stdin_is_tty() {
        let client = agent.client.clone();
        let (id, exec) = (id.to_owned(), exec.to_owned());
        thread::spawn(move || {
            while tty::wait_winch().is_ok() {
                if let Some((rows, cols)) = tty::stdin_size() {
                    let _ = client.resize_pty(
                        ctx(CALL_TIMEOUT),
                        &ResizePtyRequest {
                            container_id: id.clone(),
                            exec_id: exec.clone(),
                            width: u32::from(cols),
                            height: u32::from(rows),
                            ..Default::default()
                        },
                    );
                }
            }
        });
    }
    let (drained_tx, drained) = mpsc::channel::<()>();
    let mut outputs = 0;
    for (s, to_stdout) in [(streams.stdout, true), (streams.stderr, false)] {
        let Some(s) = s else { continue };
        let tx = drained_tx.clone();
        outputs += 1;
        thread::spawn(move || {
            let done = move || {
                let _ = tx.send(());
            };
            if to_stdout {
                pump(s, io::stdout(), done);
            } else {
                pump(s, io::stderr(), done);
            }
        });
    }
    drop(drained_tx);
    let status = agent
        .client
        .wait_process(
            ctx(Duration::ZERO),
            &WaitProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec.to_owned(),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow!("cannot wait for {id} {exec}: {}", rpc_message(&e)))?;
    for _ in 0..outputs {
        if drained.recv_timeout(DRAIN_AFTER_EXIT).is_err() {
            break;
        }
    }
    Ok(status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_bytes_suffixes() {
        assert_eq!(parse_bytes("16M").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("4k").unwrap(), 4096);
        assert_eq!(parse_bytes("123").unwrap(), 123);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }

    #[test]
    fn test_parse_rootfs_disks() {
        let r = parse_rootfs_disks("0,1:2").unwrap();
        assert_eq!(r, LayeredRootfs::new(vec![0, 1], 2).unwrap());
        for bad in ["0,1", "a:2", "0:0", ":1", "0,1:"] {
            assert!(parse_rootfs_disks(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn test_default_id_is_valid() {
        assert!(lcow_protocol::valid_id(&default_id()));
    }

    #[test]
    fn test_pump_copies_and_signals_done() {
        let mut out = Vec::new();
        let mut done = false;
        pump(&b"hello"[..], &mut out, || done = true);
        assert_eq!(out, b"hello");
        assert!(done);
    }
}
