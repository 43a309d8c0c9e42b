//! A process's stdio as containerd names it: the FIFO paths of Create and Exec.

/// The FIFO paths containerd gave for a process (empty: not wanted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIo {
    /// stdin FIFO.
    pub stdin: String,
    /// stdout FIFO.
    pub stdout: String,
    /// stderr FIFO.
    pub stderr: String,
    /// Whether the process has a pty.
    pub terminal: bool,
}
