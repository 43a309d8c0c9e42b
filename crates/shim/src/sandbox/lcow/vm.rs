//! One micro-VM: the `lcow-vmm` process the shim spawns, its state directory, its file share
//! and the connection to its agent (docs/architecture.md, "Shim and VMM").
//!
//! The state directory `<state_dir>/<hash>` holds the shim's marker
//! ([`crate::cleanup::STATE_MARKER`]), the VMM's launch file (`launch.json`, a
//! [`VmLaunch`]), the hybrid-vsock socket `v.sock` (on Windows the pipes
//! `\\.\pipe\lcow-<hash>-<port>` instead: `crate::sys::vsock_endpoint`), the VMM's pid (`vmm.pid`) and log
//! (`vmm.log`), and `shared/`, the one directory the VM's file share serves: each container's
//! rootfs and bind mounts are mounted beneath `shared/<container>/` on the host, so containers
//! added later need no new device. The VM's end comes from lcow-vmm's exit status
//! ([`VmExit`]); with `console_log_dir` set it is also written to `<console_log_dir>/<id>.end`
//! as one line of two words: how it ended (`power-off`, `reset`, `guest-panic`, `vmm-error`,
//! `signal-N`, or `boot-timeout` when the agent never answered) and when (`boot` before the
//! agent answered, `run` after). Tests read that line instead of the shim's log.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use lcow_protocol::client::{ctx, Agent, ClientError};
use lcow_protocol::hybrid::HybridError;
use lcow_protocol::vm::{ConsoleSpec, DiskSpec, ShareSpec, VmExit, VmLaunch};

use crate::cleanup::{self, CleanupError, STATE_MARKER};
use crate::config::Config;
use crate::mounts::HostMounts;
use crate::sandbox::VmEnd;
use crate::sys::{self, kill_pid};

/// The tag of the VM's one file share.
pub const SHARE_TAG: &str = "lcow";
/// How long a powered-off VM may take to exit before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How much of the VMM's log an error quotes.
const LOG_TAIL: u64 = 2048;

/// Errors of booting or stopping a VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The state directory cannot be made.
    #[error("cannot create the vm state directory {}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file the VM needs is missing.
    #[error("the {what} {} is missing (set `{key}` in the lcow configuration, or {})", path.display(), crate::sys::INSTALL_HINT)]
    Missing {
        /// What it is.
        what: &'static str,
        /// The configuration key naming it.
        key: &'static str,
        /// The path looked at.
        path: PathBuf,
    },
    /// lcow-vmm cannot be started.
    #[error("cannot start {}", vmm.display())]
    Spawn {
        /// The binary.
        vmm: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The VMM cannot be tied to the shim's life (Windows: its Job object).
    #[error("cannot put lcow-vmm (pid {pid}) in the shim's job, so it was stopped")]
    Contain {
        /// The VMM's pid.
        pid: u32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The launch file cannot be written.
    #[error("cannot write the vm launch file {}", path.display())]
    Launch {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// lcow-vmm exited before the agent answered.
    #[error("the vm exited during boot ({end}); its log ends with: {log}")]
    ExitedDuringBoot {
        /// How it ended.
        end: VmEnd,
        /// The tail of vmm.log.
        log: String,
    },
    /// The agent did not answer in time.
    #[error("the guest agent did not answer within {waited:?} (is the initramfs an lcow-agent one?); the vmm's log ends with: {log}; the guest console ends with: {console}")]
    BootTimeout {
        /// How long it waited.
        waited: Duration,
        /// The tail of vmm.log.
        log: String,
        /// The tail of the guest's console log, when `console_log_dir` keeps one.
        console: String,
    },
    /// The agent answered but the connection failed.
    #[error("cannot connect to the guest agent")]
    Agent(#[source] ClientError),
}

/// How the VMM ended, once it has.
#[derive(Debug, Default)]
struct ExitState {
    ended: Option<VmEnd>,
}

/// A running VM with a greeted agent.
#[derive(Debug)]
pub struct Vm {
    /// The state directory.
    pub state: PathBuf,
    /// The host directory the VM's share serves.
    pub shared: PathBuf,
    /// The share's protocol.
    pub protocol: lcow_protocol::share::ShareProtocol,
    /// The VMM's pid.
    pub pid: u32,
    /// The agent.
    pub agent: Agent,
    exit: Arc<(Mutex<ExitState>, Condvar)>,
}

fn require(what: &'static str, key: &'static str, path: &Path) -> Result<(), VmError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(VmError::Missing {
            what,
            key,
            path: path.to_owned(),
        })
    }
}

/// The last bytes of `path`, for error messages.
pub fn log_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log)".to_owned();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
    let mut buf = Vec::new();
    let _ = f.take(LOG_TAIL).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).trim().replace('\n', " | ");
    if text.is_empty() {
        "(empty log)".to_owned()
    } else {
        text
    }
}

impl Vm {
    /// The launch file for the VM of container `id` in `state`.
    pub fn launch(config: &Config, state: &Path, id: &str, disks: &[DiskSpec]) -> VmLaunch {
        let console = if config.console_log_dir.as_os_str().is_empty() {
            ConsoleSpec::Off
        } else {
            ConsoleSpec::File(config.console_log_dir.join(format!("{id}.log")))
        };
        let cmdline = format!(
            "console=ttyS0 reboot=k panic=-1 quiet {}",
            config.kernel_params
        );
        VmLaunch {
            kernel: config.kernel.clone(),
            initramfs: Some(config.initramfs.clone()),
            cmdline: cmdline.trim_end().to_owned(),
            memory_mib: config.memory_mib,
            vcpus: config.vcpus,
            console,
            vsock: Some(sys::vsock_endpoint(state)),
            shares: vec![ShareSpec {
                tag: SHARE_TAG.to_owned(),
                path: state.join("shared"),
                read_only: false,
                backend: sys::SHARE_BACKEND,
                protocol: config.share_protocol,
            }],
            disks: disks.to_vec(),
            log: None,
            // The vmm's milestones (devices ready, guest started, how it ended) in vmm.log.
            log_filter: Some(std::env::var("LCOW_VMM_LOG").unwrap_or_else(|_| "info".to_owned())),
        }
    }

    /// Boots a VM for the container `id` in `state` and waits for its agent.
    /// `disks` are the VM's disks in order (a rootfs's layers and scratch).
    pub fn boot(
        config: &Config,
        state: &Path,
        id: &str,
        disks: &[DiskSpec],
    ) -> Result<Self, VmError> {
        require("VMM", "vmm", &config.vmm)?;
        require("guest kernel", "kernel", &config.kernel)?;
        require("guest initramfs", "initramfs", &config.initramfs)?;
        let shared = state.join("shared");
        for dir in [state, &shared] {
            sys::create_private_dir(dir).map_err(|source| VmError::StateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let marker = state.join(STATE_MARKER);
        fs::write(&marker, format!("{id}\n")).map_err(|source| VmError::StateDir {
            path: marker,
            source,
        })?;
        let launch = Self::launch(config, state, id, disks);
        let launch_path = state.join("launch.json");
        serde_json::to_vec_pretty(&launch)
            .map_err(std::io::Error::other)
            .and_then(|b| fs::write(&launch_path, b))
            .map_err(|source| VmError::Launch {
                path: launch_path.clone(),
                source,
            })?;
        let socket = sys::vsock_endpoint(state);
        let log_path = state.join("vmm.log");
        let log = sys::create_private_file(&log_path).map_err(|source| VmError::StateDir {
            path: log_path.clone(),
            source,
        })?;
        let console_log = match &launch.console {
            ConsoleSpec::File(path) => {
                let _ = fs::create_dir_all(&config.console_log_dir);
                Some(path.clone())
            }
            _ => None,
        };
        let end_record = console_log
            .as_ref()
            .map(|_| config.console_log_dir.join(format!("{id}.end")));
        if let Some(record) = &end_record {
            let _ = fs::remove_file(record);
        }
        let mut cmd = Command::new(&config.vmm);
        cmd.arg("run")
            .arg("--launch")
            .arg(&launch_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|source| VmError::Spawn {
            vmm: config.vmm.clone(),
            source,
        })?;
        let pid = child.id();
        if let Err(source) = sys::contain(&child) {
            // A VMM outside the shim's job would outlive a crashed shim: do not run it.
            kill_pid(pid);
            let _ = child.wait();
            return Err(VmError::Contain { pid, source });
        }
        let _ = fs::write(state.join("vmm.pid"), format!("{pid}\n"));
        let exit = Arc::new((Mutex::new(ExitState::default()), Condvar::new()));
        let ready = Arc::new(AtomicBool::new(false));
        watch(
            child,
            Arc::clone(&exit),
            log_path.clone(),
            end_record.clone().map(|r| (r, Arc::clone(&ready))),
        );
        tracing::info!(container_id = id, pid, state = %state.display(), "vm started");

        let deadline = start + Duration::from_secs(config.boot_timeout_secs);
        let host = format!("containerd-shim-lcow-v1 {}", env!("CARGO_PKG_VERSION"));
        let agent = loop {
            if let Some(end) = lock(&exit.0).ended {
                return Err(VmError::ExitedDuringBoot {
                    end,
                    log: log_tail(&log_path),
                });
            }
            match Agent::connect(&socket, Duration::from_millis(200), &host) {
                Ok(agent) => break agent,
                Err(ClientError::Reach(HybridError::Timeout { .. })) => {
                    if Instant::now() >= deadline {
                        kill_pid(pid);
                        if let Some(record) = &end_record {
                            let _ = fs::write(record, "boot-timeout boot\n");
                        }
                        return Err(VmError::BootTimeout {
                            waited: start.elapsed(),
                            log: log_tail(&log_path),
                            console: console_log.as_deref().map_or_else(
                                || "(console off: set console_log_dir to keep it)".to_owned(),
                                log_tail,
                            ),
                        });
                    }
                }
                Err(e) => {
                    kill_pid(pid);
                    return Err(VmError::Agent(e));
                }
            }
        };
        ready.store(true, Ordering::Relaxed);
        tracing::info!(
            container_id = id,
            ready_ms = start.elapsed().as_millis() as u64,
            agent = %agent.hello.agent_version,
            kernel = %agent.hello.kernel,
            "guest agent ready"
        );
        Ok(Self {
            state: state.to_owned(),
            shared,
            protocol: config.share_protocol,
            pid,
            agent,
            exit,
        })
    }

    /// How the VMM ended, if it has.
    pub fn ended(&self) -> Option<VmEnd> {
        lock(&self.exit.0).ended
    }

    /// Blocks until the VMM has ended or `timeout` passed; how it ended.
    pub fn wait_ended(&self, timeout: Duration) -> Option<VmEnd> {
        let (lock_, cv) = &*self.exit;
        let guard = lock(lock_);
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |s| s.ended.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.ended
    }

    /// Powers the guest off (the agent syncs first), kills the VMM if it lingers, and removes
    /// the state directory (only when every mount beneath it is gone: see [`cleanup`]).
    pub fn shutdown(&self, host: &dyn HostMounts) -> Result<(), CleanupError> {
        if self.ended().is_none() {
            if let Err(e) = self
                .agent
                .client
                .shutdown(ctx(Duration::from_secs(5)), &Default::default())
            {
                tracing::warn!(error = %lcow_protocol::client::rpc_message(&e), "agent shutdown failed; killing the vm");
            }
            if self.wait_ended(SHUTDOWN_GRACE).is_none() {
                tracing::warn!(pid = self.pid, "the vm did not power off; killing it");
                kill_pid(self.pid);
                self.wait_ended(SHUTDOWN_GRACE);
            }
        }
        cleanup::remove_state_dir(&self.state, host)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits for the VMM in a thread and records how it ended (and in `end_record`, when set, with
/// whether the agent had answered by then). containerd's log gets the end of vmm.log (how the
/// guest ended), which goes with the state dir.
fn watch(
    mut child: Child,
    exit: Arc<(Mutex<ExitState>, Condvar)>,
    log_path: PathBuf,
    end_record: Option<(PathBuf, Arc<AtomicBool>)>,
) {
    thread::spawn(move || {
        let ended = match child.wait() {
            Ok(status) => VmEnd::Exited(VmExit::from_status(
                status.code(),
                sys::exit_signal(&status),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot wait for the vmm");
                VmEnd::Unknown
            }
        };
        tracing::info!(vm_end = %ended, vmm_log = %log_tail(&log_path), "vm ended");
        if let Some((record, ready)) = end_record {
            // A boot timeout wrote its own line first: keep it.
            if !record.exists() {
                let phase = if ready.load(Ordering::Relaxed) {
                    "run"
                } else {
                    "boot"
                };
                let _ = fs::write(&record, format!("{ended} {phase}\n"));
            }
        }
        lock(&exit.0).ended = Some(ended);
        exit.1.notify_all();
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_boot_names_missing_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let vmm = dir.path().join("vmm");
        fs::write(&vmm, "").unwrap();
        let config = Config {
            vmm,
            kernel: dir.path().join("none"),
            ..Config::default()
        };
        let e = Vm::boot(&config, &dir.path().join("s"), "c1", &[]).unwrap_err();
        assert!(e.to_string().contains("guest kernel"), "{e}");
        assert!(e.to_string().contains("`kernel`"), "{e}");
    }

    /// A configuration whose VMM is the shell script `script` (Linux) and whose kernel and
    /// initramfs are empty files in `dir`.
    #[cfg(target_os = "linux")]
    fn scripted_vmm(dir: &Path, script: &str) -> Config {
        let vmm = dir.join("vmm");
        fs::write(&vmm, script).unwrap();
        fs::set_permissions(&vmm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let kernel = dir.join("k");
        fs::write(&kernel, "").unwrap();
        Config {
            vmm,
            kernel: kernel.clone(),
            initramfs: kernel,
            ..Config::default()
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn test_boot_reports_vmm_exit_with_log() {
        let dir = tempfile::tempdir().unwrap();
        let config = scripted_vmm(dir.path(), "#!/bin/sh\necho 'no kvm here' >&2\nexit 1\n");
        let e = Vm::boot(&config, &dir.path().join("s"), "c1", &[]).unwrap_err();
        assert!(
            matches!(
                e,
                VmError::ExitedDuringBoot {
                    end: VmEnd::Exited(VmExit::VmmError),
                    ..
                }
            ),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.contains("(vmm-error)") && text.contains("no kvm here"),
            "{text}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn test_boot_reset_status_is_typed_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        // Checks its arguments as lcow-vmm takes them, then ends as a guest reset does.
        let config = Config {
            console_log_dir: dir.path().join("consoles"),
            ..scripted_vmm(
                dir.path(),
                "#!/bin/sh\n[ \"$1 $2\" = \"run --launch\" ] && [ -s \"$3\" ] || exit 2\nexit 4\n",
            )
        };
        let e = Vm::boot(&config, &dir.path().join("s"), "c1", &[]).unwrap_err();
        assert!(
            matches!(
                e,
                VmError::ExitedDuringBoot {
                    end: VmEnd::Exited(VmExit::Reset),
                    ..
                }
            ),
            "{e}"
        );
        let record = dir.path().join("consoles/c1.end");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !record.exists() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(fs::read_to_string(record).unwrap(), "reset boot\n");
    }

    #[test]
    fn test_launch_file_carries_the_configuration() {
        let config = Config {
            memory_mib: 512,
            vcpus: 2,
            share_protocol: lcow_protocol::share::ShareProtocol::P9,
            console_log_dir: PathBuf::from("/var/log/lcow"),
            ..Config::default()
        };
        let disk = DiskSpec {
            path: "/layers/base/layer.vhd".into(),
            read_only: true,
        };
        let l = Vm::launch(
            &config,
            Path::new("/run/lcow/ab"),
            "c1",
            std::slice::from_ref(&disk),
        );
        assert_eq!(l.disks, [disk]);
        assert_eq!((l.memory_mib, l.vcpus), (512, 2));
        assert_eq!(
            l.vsock.as_deref(),
            Some(sys::vsock_endpoint(Path::new("/run/lcow/ab")).as_path())
        );
        #[cfg(target_os = "linux")]
        assert_eq!(l.vsock.as_deref(), Some(Path::new("/run/lcow/ab/v.sock")));
        assert_eq!(l.console, ConsoleSpec::File("/var/log/lcow/c1.log".into()));
        assert_eq!(l.shares.len(), 1);
        assert_eq!(l.shares[0].path, Path::new("/run/lcow/ab/shared"));
        assert_eq!(
            l.shares[0].protocol,
            lcow_protocol::share::ShareProtocol::P9
        );
        assert!(l.cmdline.starts_with("console=ttyS0 "), "{}", l.cmdline);
    }
}
