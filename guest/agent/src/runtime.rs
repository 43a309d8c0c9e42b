//! The container runtime behind a trait: youki's libcontainer in the guest, a fake in tests.
//!
//! libcontainer does the OCI work for real — namespaces, mounts, capabilities, seccomp,
//! rlimits, cgroups. The agent decides around it: which stdio, which console socket, whether
//! pivot_root can work. Callers hold the spawn lock (see `reaper.rs`) around `create`,
//! `start`, `exec` and `delete`, which fork or wait for children.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;

use crate::copy::ChildStdio;

/// A boxed error from the runtime library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the runtime, sorted by whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The container is not in a state that allows the operation.
    #[error("{0}")]
    WrongState(String),
    /// The spec (or process) is not acceptable.
    #[error("invalid container spec")]
    InvalidSpec(#[source] BoxError),
    /// Anything else.
    #[error("container runtime error")]
    Failed(#[source] BoxError),
}

impl From<LibcontainerError> for RuntimeError {
    fn from(e: LibcontainerError) -> Self {
        match e {
            LibcontainerError::IncorrectStatus(status) => Self::WrongState(format!(
                "the container is {}",
                status.to_string().to_lowercase()
            )),
            LibcontainerError::Exist => Self::WrongState("the container already exists".into()),
            LibcontainerError::InvalidID(_)
            | LibcontainerError::MissingSpec(_)
            | LibcontainerError::InvalidSpec(_)
            | LibcontainerError::Spec(_)
            | LibcontainerError::InvalidInput(_) => Self::InvalidSpec(Box::new(e)),
            other => Self::Failed(Box::new(other)),
        }
    }
}

/// What creating a container needs.
#[derive(Debug)]
pub struct CreateRequest<'a> {
    /// The container id (already validated).
    pub id: &'a str,
    /// The bundle directory holding `config.json`.
    pub bundle: &'a Path,
    /// Use MS_MOVE + chroot instead of pivot_root (see `Config::no_pivot`).
    pub no_pivot: bool,
    /// The process's stdio, without a terminal.
    pub stdio: Option<ChildStdio>,
    /// The console socket, with a terminal.
    pub console_socket: Option<&'a Path>,
}

/// What exec'ing a process in a container needs.
#[derive(Debug)]
pub struct ExecRequest<'a> {
    /// The container id.
    pub id: &'a str,
    /// The OCI `process` JSON file.
    pub process_json: &'a Path,
    /// The process's stdio, without a terminal.
    pub stdio: Option<ChildStdio>,
    /// The console socket, with a terminal.
    pub console_socket: Option<&'a Path>,
}

/// The container operations the agent needs.
pub trait Runtime: Send + Sync + Debug {
    /// Creates the container; its init process waits to be started. Returns its pid.
    fn create(&self, req: CreateRequest<'_>) -> Result<i32, RuntimeError>;
    /// Lets the init process exec the workload.
    fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Runs another process in the running container. Returns its pid.
    fn exec(&self, req: ExecRequest<'_>) -> Result<i32, RuntimeError>;
    /// Freezes the container's cgroup.
    fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    /// Thaws it.
    fn resume(&self, id: &str) -> Result<(), RuntimeError>;
    /// Deletes a stopped container: its cgroup and runtime state.
    fn delete(&self, id: &str) -> Result<(), RuntimeError>;
}

/// youki's libcontainer, state under `state_root`.
#[derive(Debug, Clone)]
pub struct Libcontainer {
    /// libcontainer's root directory (one subdirectory per container).
    pub state_root: PathBuf,
}

impl Libcontainer {
    fn builder(
        &self,
        id: &str,
        stdio: Option<ChildStdio>,
        console_socket: Option<&Path>,
    ) -> Result<ContainerBuilder, RuntimeError> {
        let mut b = ContainerBuilder::new(id.to_owned(), SyscallType::Linux)
            .with_executor(crate::executor::PathExecutor)
            .with_root_path(&self.state_root)?
            .with_console_socket(console_socket);
        if let Some(stdio) = stdio {
            b = b
                .with_stdin(stdio.stdin)
                .with_stdout(stdio.stdout)
                .with_stderr(stdio.stderr);
        }
        Ok(b)
    }

    fn load(&self, id: &str) -> Result<Container, RuntimeError> {
        Ok(Container::load(self.state_root.join(id))?)
    }
}

impl Runtime for Libcontainer {
    fn create(&self, req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
        let container = self
            .builder(req.id, req.stdio, req.console_socket)?
            .as_init(req.bundle)
            .with_systemd(false)
            .with_detach(true)
            .with_no_pivot(req.no_pivot)
            .build()?;
        container
            .pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| RuntimeError::Failed("libcontainer returned no init pid".into()))
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(self.load(id)?.start()?)
    }

    fn exec(&self, req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        let pid = self
            .builder(req.id, req.stdio, req.console_socket)?
            .as_tenant()
            .with_detach(true)
            .with_process(Some(req.process_json))
            .build()?;
        Ok(pid.as_raw())
    }

    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(self.load(id)?.pause()?)
    }

    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(self.load(id)?.resume()?)
    }

    fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(self.load(id)?.delete(true)?)
    }
}
