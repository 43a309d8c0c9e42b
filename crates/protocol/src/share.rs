//! The file-share contract between the host and the guest, owned here once for the shim,
//! `lcow-ctl` and `lcow-vmm`: which protocol a share speaks (and the one default), how the guest
//! mounts it, and where in the guest a share's files appear (docs/architecture.md, "Shares").
//!
//! A share is one host directory served by one device, known to the guest by its tag. The
//! guest mounts it with [`GuestMount::for_share`] at a path under [`GUEST_SHARE_ROOT`];
//! a container's rootfs and bind mounts are then paths below that mount
//! ([`guest_share_path`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest 9P mount tag (the limit our virtio-9p configuration space imposes).
pub const MAX_9P_TAG_LEN: usize = 255;
/// The longest virtio-fs tag (the size of the configuration space's tag field).
pub const MAX_VIRTIOFS_TAG_LEN: usize = 36;
/// The 9P message size the guest asks for: the largest its virtio transport carries (a ring of
/// 128 one-page descriptors, less the headers).
pub const P9_MSIZE: u32 = 512_000;
/// Where in the guest the VM's shares are mounted.
pub const GUEST_SHARE_ROOT: &str = "/run/lcow/share";

/// The protocol a share speaks, which is also the device that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ShareProtocol {
    /// virtio-fs (FUSE): the default; fewer round trips per operation than 9P.
    #[default]
    #[serde(rename = "virtiofs", alias = "virtio-fs")]
    VirtioFs,
    /// virtio-9p (9P2000.L).
    #[serde(rename = "9p")]
    P9,
}

impl ShareProtocol {
    /// Every protocol, in the order `--help` texts list them.
    pub const ALL: [ShareProtocol; 2] = [ShareProtocol::VirtioFs, ShareProtocol::P9];

    /// The name command lines and configuration files use.
    pub fn name(self) -> &'static str {
        match self {
            ShareProtocol::VirtioFs => "virtiofs",
            ShareProtocol::P9 => "9p",
        }
    }

    /// The longest tag this protocol's device takes.
    pub fn max_tag_len(self) -> usize {
        match self {
            ShareProtocol::VirtioFs => MAX_VIRTIOFS_TAG_LEN,
            ShareProtocol::P9 => MAX_9P_TAG_LEN,
        }
    }
}

impl fmt::Display for ShareProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A share protocol name that is neither `virtiofs` nor `9p`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown share protocol {0:?} (expected virtiofs or 9p)")]
pub struct UnknownProtocol(pub String);

impl FromStr for ShareProtocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "virtiofs" | "virtio-fs" => Ok(ShareProtocol::VirtioFs),
            "9p" => Ok(ShareProtocol::P9),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

/// How the guest mounts one share: `mount -t FSTYPE -o OPTIONS TAG TARGET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestMount {
    /// The share's tag (the mount source).
    pub tag: String,
    /// The guest directory.
    pub target: String,
    /// `virtiofs` or `9p`.
    pub fstype: &'static str,
    /// The filesystem's options.
    pub options: Vec<String>,
}

impl GuestMount {
    /// The guest mount of the share `tag`, spoken over `protocol`, at `target`.
    pub fn for_share(tag: &str, protocol: ShareProtocol, target: String) -> Self {
        let options = match protocol {
            ShareProtocol::VirtioFs => Vec::new(),
            ShareProtocol::P9 => vec![
                "trans=virtio".to_owned(),
                "version=9p2000.L".to_owned(),
                format!("msize={P9_MSIZE}"),
                // mmap support (SQLite's WAL index lives in a shared mapping).
                "cache=mmap".to_owned(),
            ],
        };
        Self {
            tag: tag.to_owned(),
            target,
            fstype: protocol.name(),
            options,
        }
    }

    /// The agent's message for this mount.
    pub fn to_agent(&self) -> crate::agent::Mount {
        crate::agent::Mount {
            source: self.tag.clone(),
            target: self.target.clone(),
            fstype: self.fstype.to_owned(),
            options: self.options.clone(),
            ..Default::default()
        }
    }
}

/// The guest directory the share `tag` is mounted on.
pub fn guest_mount_point(tag: &str) -> String {
    format!("{GUEST_SHARE_ROOT}/{tag}")
}

/// The guest path of `relative` (a path inside the share, without a leading `/`) in the share
/// `tag`.
pub fn guest_share_path(tag: &str, relative: &str) -> String {
    format!(
        "{}/{}",
        guest_mount_point(tag),
        relative.trim_start_matches('/')
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_protocol_default_is_virtiofs_and_names_round_trip() {
        assert_eq!(ShareProtocol::default(), ShareProtocol::VirtioFs);
        for p in ShareProtocol::ALL {
            assert_eq!(p.name().parse::<ShareProtocol>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(serde_json::from_str::<ShareProtocol>(&json).unwrap(), p);
        }
        assert_eq!(
            "virtio-fs".parse::<ShareProtocol>().unwrap(),
            ShareProtocol::VirtioFs
        );
        let e = "nfs".parse::<ShareProtocol>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown share protocol \"nfs\" (expected virtiofs or 9p)"
        );
    }

    #[test]
    fn test_guest_mount_options_per_protocol() {
        let m = GuestMount::for_share("lcow", ShareProtocol::P9, guest_mount_point("lcow"));
        assert_eq!(m.fstype, "9p");
        assert_eq!(m.target, "/run/lcow/share/lcow");
        assert!(m.options.contains(&"trans=virtio".to_owned()));
        assert!(m.options.contains(&"version=9p2000.L".to_owned()));
        assert!(m.options.contains(&"cache=mmap".to_owned()));
        let v = GuestMount::for_share("lcow", ShareProtocol::VirtioFs, "/x".into());
        assert_eq!((v.fstype, v.options.len()), ("virtiofs", 0));
        let a = v.to_agent();
        assert_eq!((a.source.as_str(), a.target.as_str()), ("lcow", "/x"));
    }

    #[test]
    fn test_guest_share_path_joins_below_the_mount() {
        assert_eq!(
            guest_share_path("lcow", "c1/rootfs"),
            "/run/lcow/share/lcow/c1/rootfs"
        );
        assert_eq!(
            guest_share_path("lcow", "/c1/m0"),
            "/run/lcow/share/lcow/c1/m0"
        );
    }
}
