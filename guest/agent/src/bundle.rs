//! Turning the host's requests into what libcontainer reads: the OCI spec and process JSON,
//! and the guest mounts made before a container is created.
//!
//! Everything here is untrusted input: sizes are bounded, paths must be absolute without `..`,
//! and the spec's `root.path`, `linux.cgroupsPath` and `process.terminal` are set by the agent.

use std::path::{Component, Path, PathBuf};

use lcow_protocol::agent::Mount;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};

use crate::error::AgentError;
use crate::quote::quote;
use crate::syscall::Syscall;

/// The largest OCI spec, process or resources JSON accepted.
pub const MAX_JSON: usize = 4 << 20;
/// The most guest mounts one container may ask for.
pub const MAX_GUEST_MOUNTS: usize = 64;
/// The cgroup parent of containers whose spec names none.
pub const CGROUP_PARENT: &str = "/lcow";

fn check_len(what: &'static str, json: &[u8]) -> Result<(), AgentError> {
    if json.len() > MAX_JSON {
        return Err(AgentError::BadRequest(format!(
            "the {what} JSON is {} bytes, more than the {MAX_JSON} allowed",
            json.len()
        )));
    }
    Ok(())
}

/// An absolute guest path without `.` or `..` components.
pub fn guest_path(what: &str, path: &str) -> Result<PathBuf, AgentError> {
    let p = Path::new(path);
    let plain = p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if plain && path.len() <= 4096 {
        Ok(p.to_path_buf())
    } else {
        Err(AgentError::BadRequest(format!(
            "{what} {:?} must be an absolute path without '..'",
            quote(path)
        )))
    }
}

/// Parses the OCI spec and sets what the agent decides: `root.path` (`rootfs`, or
/// `default_rootfs` when empty), `linux.cgroupsPath` (`/lcow/<id>` when unset) and
/// `process.terminal`. Returns the spec and its cgroups path.
pub fn prepare_spec(
    json: &[u8],
    container_id: &str,
    rootfs: &str,
    default_rootfs: &Path,
    terminal: bool,
) -> Result<(Spec, String), AgentError> {
    check_len("OCI spec", json)?;
    let mut spec: Spec = serde_json::from_slice(json).map_err(|source| AgentError::BadJson {
        what: "OCI spec",
        source,
    })?;
    let root_path = if rootfs.is_empty() {
        default_rootfs.to_path_buf()
    } else {
        guest_path("rootfs", rootfs)?
    };
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(root_path);
    spec.set_root(Some(root));

    let mut linux = spec.linux().clone().unwrap_or_default();
    // The VM is the network boundary (as in Kata): containers join the VM's network namespace,
    // whose `lo` the agent sets up at boot, and containers of one pod share it as Kubernetes
    // expects. A new namespace would have its `lo` down; a path would be a host path.
    if let Some(namespaces) = linux.namespaces_mut() {
        namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Network);
    }
    let cgroups_path = match linux.cgroups_path() {
        Some(p) => p.to_string_lossy().into_owned(),
        None => format!("{CGROUP_PARENT}/{container_id}"),
    };
    linux.set_cgroups_path(Some(PathBuf::from(&cgroups_path)));
    spec.set_linux(Some(linux));

    let Some(process) = spec.process_mut() else {
        return Err(AgentError::BadRequest(
            "the OCI spec has no process".to_owned(),
        ));
    };
    process.set_terminal(Some(terminal));
    Ok((spec, cgroups_path))
}

/// Parses an exec's OCI `process` JSON and sets `terminal`.
pub fn prepare_process(json: &[u8], terminal: bool) -> Result<Process, AgentError> {
    check_len("process", json)?;
    let mut process: Process =
        serde_json::from_slice(json).map_err(|source| AgentError::BadJson {
            what: "process",
            source,
        })?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(AgentError::BadRequest("the process has no args".to_owned()));
    }
    process.set_terminal(Some(terminal));
    Ok(process)
}

/// Parses `linux.resources` JSON for UpdateContainer.
pub fn parse_resources(json: &[u8]) -> Result<LinuxResources, AgentError> {
    check_len("resources", json)?;
    serde_json::from_slice(json).map_err(|source| AgentError::BadJson {
        what: "resources",
        source,
    })
}

/// A validated guest mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestMount {
    /// mount(2) source ("none" when empty).
    pub source: String,
    /// Where, an absolute guest path.
    pub target: PathBuf,
    /// Filesystem type; `None` for bind mounts.
    pub fstype: Option<String>,
    /// Flags from the options.
    pub flags: MsFlags,
    /// The options that are not flags, comma-joined, for the filesystem.
    pub data: Option<String>,
}

/// Splits mount options into flags and filesystem data.
pub fn parse_options(options: &[String]) -> (MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        match o.as_str() {
            "defaults" | "rw" => {}
            "ro" => flags |= MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    let data = (!data.is_empty()).then(|| data.join(","));
    (flags, data)
}

impl GuestMount {
    /// Validates a protocol mount.
    pub fn parse(m: &Mount) -> Result<Self, AgentError> {
        let target = guest_path("guest mount target", &m.target)?;
        if m.source.len() > 4096 || m.fstype.len() > 64 || m.options.len() > 64 {
            return Err(AgentError::BadRequest(
                "guest mount field too long".to_owned(),
            ));
        }
        let (flags, data) = parse_options(&m.options);
        let fstype = if m.fstype.is_empty() || m.fstype == "bind" {
            None
        } else {
            Some(m.fstype.clone())
        };
        if fstype.is_none() && !flags.contains(MsFlags::MS_BIND) {
            return Err(AgentError::BadRequest(format!(
                "guest mount on {} has no fstype and is not a bind mount",
                target.display()
            )));
        }
        let source = if m.source.is_empty() {
            "none".to_owned()
        } else {
            m.source.clone()
        };
        Ok(Self {
            source,
            target,
            fstype,
            flags,
            data,
        })
    }

    /// Creates the target and mounts; a read-only bind mount is remounted read-only, since
    /// the kernel ignores MS_RDONLY on the bind itself.
    pub fn apply(&self, sys: &dyn Syscall) -> std::io::Result<()> {
        sys.mkdir_all(&self.target, 0o755)?;
        for dir in self.overlay_dirs() {
            sys.mkdir_all(&dir, 0o755)?;
        }
        sys.mount(
            Some(&self.source),
            &self.target,
            self.fstype.as_deref(),
            self.flags,
            self.data.as_deref(),
        )?;
        if self.flags.contains(MsFlags::MS_BIND) && self.flags.contains(MsFlags::MS_RDONLY) {
            let remount = MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | (self.flags
                    & (MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC));
            if let Err(e) = sys.mount(None, &self.target, None, remount, None) {
                let _ = sys.umount(&self.target, true);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl GuestMount {
    /// An overlay's `upperdir` and `workdir`, which must exist before it mounts (on a fresh
    /// scratch disk they do not yet); nothing for other filesystems.
    fn overlay_dirs(&self) -> Vec<PathBuf> {
        if self.fstype.as_deref() != Some("overlay") {
            return Vec::new();
        }
        self.data
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|o| o.strip_prefix("upperdir=").or(o.strip_prefix("workdir=")))
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from)
            .collect()
    }
}

/// Removes a bundle directory without ever crossing into a mounted filesystem: a guest mount
/// under it whose unmount failed (a share of the host's files) is left alone, not emptied.
pub fn remove_bundle(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    fn remove(path: &Path, dev: u64) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return std::fs::remove_file(path);
        }
        if meta.dev() != dev {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ResourceBusy,
                format!("{} is still a mount point", path.display()),
            ));
        }
        for entry in std::fs::read_dir(path)? {
            remove(&entry?.path(), dev)?;
        }
        std::fs::remove_dir(path)
    }
    let dev = std::fs::symlink_metadata(dir)?.dev();
    remove(dir, dev)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, RecordingSyscall};

    const SPEC: &str = r#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":["sh"],
        "user":{"uid":0,"gid":0}},"root":{"path":"rootfs","readonly":true},"linux":{}}"#;

    #[test]
    fn test_prepare_spec_sets_root_cgroup_and_terminal() {
        let (spec, cg) =
            prepare_spec(SPEC.as_bytes(), "c1", "", Path::new("/testroot"), true).unwrap();
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("/testroot"));
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(cg, "/lcow/c1");
        assert_eq!(
            spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
            Some(Path::new("/lcow/c1"))
        );
        assert_eq!(spec.process().as_ref().unwrap().terminal(), Some(true));
    }

    #[test]
    fn test_prepare_spec_keeps_given_cgroup_and_uses_rootfs() {
        let json = SPEC.replace(r#""linux":{}"#, r#""linux":{"cgroupsPath":"/pod/c1"}"#);
        let (spec, cg) = prepare_spec(
            json.as_bytes(),
            "c1",
            "/run/r1",
            Path::new("/testroot"),
            false,
        )
        .unwrap();
        assert_eq!(cg, "/pod/c1");
        assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("/run/r1"));
    }

    #[test]
    fn test_prepare_spec_joins_the_vms_network_namespace() {
        // Arrange: a new network namespace, and a pod's (a host path), beside a pid namespace.
        for net in [
            r#"{"type":"network"}"#,
            r#"{"type":"network","path":"/var/run/netns/cni-1"}"#,
        ] {
            let json = SPEC.replace(
                r#""linux":{}"#,
                &format!(r#""linux":{{"namespaces":[{{"type":"pid"}},{net},{{"type":"mount"}}]}}"#),
            );
            // Act
            let (spec, _) =
                prepare_spec(json.as_bytes(), "c1", "", Path::new("/t"), false).unwrap();
            // Assert
            let kinds: Vec<_> = spec
                .linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .map(|ns| ns.typ())
                .collect();
            assert_eq!(kinds, [LinuxNamespaceType::Pid, LinuxNamespaceType::Mount]);
        }
    }

    #[test]
    fn test_prepare_spec_bad_input_is_invalid_argument() {
        let bad_json = prepare_spec(b"{not json", "c", "", Path::new("/t"), false).unwrap_err();
        assert_eq!(bad_json.code(), ttrpc::Code::INVALID_ARGUMENT);
        let bad_root =
            prepare_spec(SPEC.as_bytes(), "c", "../x", Path::new("/t"), false).unwrap_err();
        assert_eq!(bad_root.code(), ttrpc::Code::INVALID_ARGUMENT);
        let huge = vec![b' '; MAX_JSON + 1];
        let too_big = prepare_spec(&huge, "c", "", Path::new("/t"), false).unwrap_err();
        assert_eq!(too_big.code(), ttrpc::Code::INVALID_ARGUMENT);
    }

    #[test]
    fn test_prepare_process_requires_args() {
        let p = prepare_process(
            br#"{"cwd":"/","args":["ls"],"user":{"uid":0,"gid":0}}"#,
            true,
        )
        .unwrap();
        assert_eq!(p.terminal(), Some(true));
        let err = prepare_process(br#"{"cwd":"/","args":[],"user":{"uid":0,"gid":0}}"#, false)
            .unwrap_err();
        assert_eq!(err.code(), ttrpc::Code::INVALID_ARGUMENT);
    }

    #[test]
    fn test_parse_options_splits_flags_and_data() {
        let opts: Vec<String> = [
            "ro",
            "nosuid",
            "trans=virtio",
            "version=9p2000.L",
            "msize=512000",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (flags, data) = parse_options(&opts);
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(
            data.as_deref(),
            Some("trans=virtio,version=9p2000.L,msize=512000")
        );
    }

    #[test]
    fn test_guest_mount_read_only_bind_is_remounted() {
        // Arrange
        let m = GuestMount::parse(&Mount {
            source: "/run/share/data".into(),
            target: "/run/lcow/c1/data".into(),
            fstype: "bind".into(),
            options: vec!["rbind".into(), "ro".into()],
            ..Default::default()
        })
        .unwrap();
        let sys = RecordingSyscall::default();
        // Act
        m.apply(&sys).unwrap();
        // Assert
        let calls = sys.calls();
        assert_eq!(calls[0], Call::Mkdir("/run/lcow/c1/data".into()));
        assert!(matches!(&calls[1], Call::Mount { fstype: None, flags, .. }
            if flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)));
        assert!(matches!(&calls[2], Call::Mount { flags, .. }
            if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)));
    }

    #[test]
    fn test_overlay_mount_makes_its_upper_and_work_dirs_first() {
        let m = GuestMount::parse(&Mount {
            source: "overlay".into(),
            target: "/run/lcow/layers/c1/rootfs".into(),
            fstype: "overlay".into(),
            options: vec![
                "lowerdir=/l/1:/l/0".into(),
                "upperdir=/s/upper".into(),
                "workdir=/s/work".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        let sys = RecordingSyscall::default();
        m.apply(&sys).unwrap();
        let calls = sys.calls();
        assert_eq!(
            calls[..3],
            [
                Call::Mkdir("/run/lcow/layers/c1/rootfs".into()),
                Call::Mkdir("/s/upper".into()),
                Call::Mkdir("/s/work".into()),
            ]
        );
        assert!(matches!(&calls[3], Call::Mount { fstype: Some(t), .. } if t == "overlay"));
    }

    #[test]
    fn test_remove_bundle_removes_files_dirs_and_links_not_targets() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let b = d.path().join("bundle");
        std::fs::create_dir_all(b.join("rootfs/sub")).unwrap();
        std::fs::write(b.join("config.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&outside, b.join("link")).unwrap();
        remove_bundle(&b).unwrap();
        assert!(!b.exists());
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn test_guest_mount_refuses_relative_or_dotdot_targets() {
        for target in ["rel/path", "/a/../b", ""] {
            let m = Mount {
                source: "tag".into(),
                target: target.into(),
                fstype: "9p".into(),
                ..Default::default()
            };
            assert!(GuestMount::parse(&m).is_err(), "{target:?} accepted");
        }
    }
}
