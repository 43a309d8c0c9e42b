//! The command line of `lcow-fs` subcommands, the same on every host.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use lcow_fs::backend::server_locks::LockKeeping;

/// Which backend serves the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Host ownership and modes as they are (the server needs root to create files for other
    /// users).
    Passthrough,
    /// Ownership, modes and device numbers kept in user.LX* xattrs (no privilege needed).
    Mapped,
}

/// Where locks are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LocksKind {
    /// The host's own locks (OFD byte-range locks and flock): host processes see the guest's.
    Host,
    /// The server's own lock table: for file systems without working locks; host processes
    /// neither see nor are held back by them.
    Server,
}

impl From<LocksKind> for LockKeeping {
    fn from(kind: LocksKind) -> Self {
        match kind {
            LocksKind::Host => LockKeeping::Host,
            LocksKind::Server => LockKeeping::Server,
        }
    }
}

/// Arguments of `lcow-fs mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// How files are stored: "passthrough" keeps the host's own ownership and modes;
    /// "mapped" keeps uid, gid, mode and device numbers in user.LXUID, user.LXGID,
    /// user.LXMOD and user.LXDEV xattrs (the WSL encoding) so the server needs no privilege.
    #[arg(long, value_enum, default_value = "passthrough")]
    pub backend: BackendKind,

    /// Serve read-only: every change answers EROFS.
    #[arg(long)]
    pub ro: bool,

    /// Where POSIX byte-range and flock locks are kept: "host" takes real host locks (other
    /// host processes see them); "server" keeps them in the server alone, with the same
    /// semantics, for file systems whose own locks do not work.
    #[arg(long, value_enum, default_value = "host")]
    pub locks: LocksKind,

    /// Seconds the kernel may cache attributes and names (0 disables the caches; changes made
    /// to SRC behind the server's back show up after at most this long).
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub cache_timeout: f64,

    /// Let other users reach the mount when the server is unprivileged (needs
    /// user_allow_other in /etc/fuse.conf). A server running as root always allows them.
    #[arg(long)]
    pub allow_other: bool,

    /// The directory to serve.
    pub src: PathBuf,

    /// Where to mount it (an existing directory).
    pub mnt: PathBuf,
}
