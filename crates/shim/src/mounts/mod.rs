//! Host mounts that give a container its files through the VM's share.
//!
//! Under `shared/<container>/` the shim mounts the rootfs containerd prepared (the `rootfs`
//! mounts of Create: overlay, bind, ...) at `rootfs`, and each bind mount of the OCI spec at
//! `m<N>` (read-only binds are remounted read-only on the host, so the file server itself
//! refuses writes). The guest mounts the share once per VM and the spec's binds are rewritten
//! to point below that mount ([`lcow_protocol::share::guest_share_path`]). Every mount goes
//! through [`HostMounts`]; removing them is [`crate::cleanup`]'s.

use std::fs;
use std::path::{Path, PathBuf};

use containerd_shim_protos::api::Mount;
use lcow_protocol::share::guest_share_path;
use serde_json::Value;

mod flags;
mod host;
pub mod layers;

#[cfg(test)]
pub mod fake;

pub use flags::MountFlags;
pub use host::{parse_mountinfo, HostMounts};

/// Errors of making a container's host mounts.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A directory or file to mount on cannot be made.
    #[error("cannot create the mount point {}", path.display())]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A rootfs mount failed.
    #[error("cannot mount the rootfs ({kind} {source_path}) on {}: {message}", target.display())]
    Rootfs {
        /// The mount type.
        kind: String,
        /// The mount source.
        source_path: String,
        /// The target.
        target: PathBuf,
        /// What the mount helper said.
        message: String,
    },
    /// A bind mount's source is missing or of a kind that cannot be shared.
    #[error("bind mount {dest}: source {source_path}: {reason}")]
    BadBindSource {
        /// The container path.
        dest: String,
        /// The host source.
        source_path: String,
        /// Why.
        reason: String,
    },
    /// A bind mount failed.
    #[error("cannot bind {source_path} for {dest}")]
    Bind {
        /// The container path.
        dest: String,
        /// The host source.
        source_path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec's mounts are malformed.
    #[error("the OCI spec's mounts are invalid: {0}")]
    Spec(String),
}

/// The host directory of container `id` beneath the share.
pub fn container_dir(shared: &Path, id: &str) -> PathBuf {
    shared.join(id)
}

/// The guest path of `relative` in container `id`'s directory of the share `tag`.
pub fn guest_path(tag: &str, id: &str, relative: &str) -> String {
    guest_share_path(tag, &format!("{id}/{relative}"))
}

/// Mounts the rootfs containerd prepared on `shared/<id>/rootfs`; with no mounts, binds the
/// bundle's own `rootfs` directory. Returns the guest path of the rootfs in the share `tag`.
pub fn mount_rootfs(
    host: &dyn HostMounts,
    (shared, tag): (&Path, &str),
    id: &str,
    bundle: &Path,
    mounts: &[Mount],
) -> Result<String, MountError> {
    let target = container_dir(shared, id).join("rootfs");
    make_dir(&target)?;
    let fallback;
    let mounts = if mounts.is_empty() {
        fallback = [Mount {
            type_: "bind".to_owned(),
            source: bundle.join("rootfs").display().to_string(),
            options: vec!["rbind".to_owned(), "rw".to_owned()],
            ..Default::default()
        }];
        &fallback[..]
    } else {
        mounts
    };
    for m in mounts {
        mount_one(host, m, &target).map_err(|message| MountError::Rootfs {
            kind: m.type_.clone(),
            source_path: m.source.clone(),
            target: target.clone(),
            message,
        })?;
    }
    Ok(guest_path(tag, id, "rootfs"))
}

/// The mount(2) flag an option sets (`true`) or clears (`false`), or `None` for fs data.
fn option_flag(option: &str) -> Option<(bool, MountFlags)> {
    Some(match option {
        "defaults" => (true, MountFlags::empty()),
        "ro" => (true, MountFlags::RDONLY),
        "rw" => (false, MountFlags::RDONLY),
        "bind" => (true, MountFlags::BIND),
        "rbind" => (true, MountFlags::BIND | MountFlags::REC),
        "nosuid" => (true, MountFlags::NOSUID),
        "suid" => (false, MountFlags::NOSUID),
        "nodev" => (true, MountFlags::NODEV),
        "dev" => (false, MountFlags::NODEV),
        "noexec" => (true, MountFlags::NOEXEC),
        "exec" => (false, MountFlags::NOEXEC),
        "sync" => (true, MountFlags::SYNCHRONOUS),
        "async" => (false, MountFlags::SYNCHRONOUS),
        "dirsync" => (true, MountFlags::DIRSYNC),
        "noatime" => (true, MountFlags::NOATIME),
        "atime" => (false, MountFlags::NOATIME),
        "nodiratime" => (true, MountFlags::NODIRATIME),
        "diratime" => (false, MountFlags::NODIRATIME),
        "relatime" => (true, MountFlags::RELATIME),
        "norelatime" => (false, MountFlags::RELATIME),
        "strictatime" => (true, MountFlags::STRICTATIME),
        // Propagation of the host mount does not concern the guest.
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
            (true, MountFlags::empty())
        }
        _ => return None,
    })
}

/// The flags and the fs data (comma-joined) of containerd's mount options.
fn split_options(options: &[String]) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match option_flag(o) {
            Some((true, f)) => flags |= f,
            Some((false, f)) => flags &= !f,
            None => data.push(o.as_str()),
        }
    }
    (flags, data.join(","))
}

/// The most fs data mount(2) takes (one page).
const MAX_MOUNT_DATA: usize = 4095;

/// Mounts one of containerd's rootfs mounts on `target` (no fork: the shim is threaded).
fn mount_one(host: &dyn HostMounts, m: &Mount, target: &Path) -> Result<(), String> {
    let (flags, data) = split_options(&m.options);
    if data.len() > MAX_MOUNT_DATA {
        return Err(format!(
            "its options are {} bytes, more than one mount(2) takes (too many layers)",
            data.len()
        ));
    }
    let source = Some(m.source.as_str()).filter(|s| !s.is_empty());
    if flags.contains(MountFlags::BIND) {
        return bind(
            host,
            source,
            target,
            flags & (MountFlags::BIND | MountFlags::REC),
            flags.contains(MountFlags::RDONLY),
        )
        .map_err(|e| e.to_string());
    }
    let fstype = Some(m.type_.as_str()).filter(|t| !t.is_empty());
    let data = Some(data.as_str()).filter(|d| !d.is_empty());
    host.mount(source, target, fstype, flags, data)
        .map_err(|e| e.to_string())
}

/// A bind mount (`flags`: MS_BIND, with MS_REC for rbind) of `source` on `target`, then
/// remounted read-only when `read_only` (a bind mount ignores MS_RDONLY on its first mount).
fn bind(
    host: &dyn HostMounts,
    source: Option<&str>,
    target: &Path,
    flags: MountFlags,
    read_only: bool,
) -> std::io::Result<()> {
    host.mount(source, target, None, flags, None)?;
    if read_only {
        host.mount(
            None,
            target,
            None,
            MountFlags::BIND | MountFlags::REMOUNT | MountFlags::RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<(), MountError> {
    fs::create_dir_all(path).map_err(|source| MountError::MountPoint {
        path: path.to_owned(),
        source,
    })
}

fn is_bind(m: &Value) -> bool {
    m["type"] == "bind"
        || m["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// Binds every bind mount's host source of `spec` under `shared/<id>/m<N>` and rewrites its
/// source to the guest path in the share `tag`. Drops `hooks` (host binaries cannot run in the
/// guest).
pub fn share_binds(
    host: &dyn HostMounts,
    (shared, tag): (&Path, &str),
    id: &str,
    spec: &mut Value,
) -> Result<(), MountError> {
    if let Some(obj) = spec.as_object_mut() {
        if obj.remove("hooks").is_some_and(|h| !h.is_null()) {
            tracing::warn!(
                container_id = id,
                "OCI hooks are not run: they name host binaries"
            );
        }
    }
    let Some(mounts) = spec.get_mut("mounts") else {
        return Ok(());
    };
    let mounts = mounts
        .as_array_mut()
        .ok_or_else(|| MountError::Spec("mounts is not a list".to_owned()))?;
    let dir = container_dir(shared, id);
    for (n, m) in mounts.iter_mut().enumerate() {
        if !is_bind(m) {
            continue;
        }
        let dest = m["destination"].as_str().unwrap_or_default().to_owned();
        let source = m["source"]
            .as_str()
            .ok_or_else(|| MountError::Spec(format!("bind mount {dest} has no source")))?
            .to_owned();
        let bad = |reason: &str| MountError::BadBindSource {
            dest: dest.clone(),
            source_path: source.clone(),
            reason: reason.to_owned(),
        };
        let meta = fs::metadata(&source).map_err(|e| bad(&e.to_string()))?;
        let target = dir.join(format!("m{n}"));
        if meta.is_dir() {
            make_dir(&target)?;
        } else if meta.is_file() {
            make_dir(&dir)?;
            fs::write(&target, b"").map_err(|source| MountError::MountPoint {
                path: target.clone(),
                source,
            })?;
        } else {
            return Err(bad(
                "only directories and regular files can be shared with the vm",
            ));
        }
        let read_only = read_only(&m["options"]);
        let bind_err = |source| MountError::Bind {
            dest: dest.clone(),
            source_path: m["source"].as_str().unwrap_or_default().to_owned(),
            source,
        };
        bind(
            host,
            Some(source.as_str()),
            &target,
            MountFlags::BIND | MountFlags::REC,
            read_only,
        )
        .map_err(bind_err)?;
        m["source"] = Value::String(guest_path(tag, id, &format!("m{n}")));
    }
    Ok(())
}

/// Whether an OCI mount's `options` make it read-only, read in order as mount(8) does: the
/// last of `ro` and `rw` wins.
fn read_only(options: &Value) -> bool {
    let options: Vec<String> = options
        .as_array()
        .map(|o| {
            o.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    split_options(&options).0.contains(MountFlags::RDONLY)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::fake::FakeMounts;
    use super::*;

    #[test]
    fn test_share_binds_leaves_non_binds_and_drops_hooks() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = json!({
            "hooks": {"prestart": [{"path": "/usr/bin/x"}]},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
            ]
        });
        share_binds(
            &FakeMounts::default(),
            (dir.path(), "lcow"),
            "c1",
            &mut spec,
        )
        .unwrap();
        assert!(spec.get("hooks").is_none());
        assert_eq!(spec["mounts"][0]["source"], "proc");
        assert_eq!(spec["mounts"][1]["source"], "tmpfs");
    }

    #[test]
    fn test_share_binds_missing_source_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = json!({"mounts": [
            {"destination": "/data", "type": "bind", "source": "/nonexistent/x", "options": ["rbind"]}
        ]});
        let e = share_binds(
            &FakeMounts::default(),
            (dir.path(), "lcow"),
            "c1",
            &mut spec,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("/data") && text.contains("/nonexistent/x"),
            "{text}"
        );
    }

    #[test]
    fn test_split_options_flags_and_data() {
        let o: Vec<String> = [
            "ro",
            "nosuid",
            "lowerdir=/a:/b",
            "upperdir=/u",
            "rw",
            "index=off",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (flags, data) = split_options(&o);
        assert_eq!(flags, MountFlags::NOSUID);
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u,index=off");
        let (flags, data) = split_options(&["rbind".to_owned(), "ro".to_owned()]);
        assert!(flags.contains(MountFlags::BIND | MountFlags::REC | MountFlags::RDONLY));
        assert!(data.is_empty());
    }

    #[test]
    fn test_read_only_last_of_ro_and_rw_wins() {
        assert!(read_only(&json!(["rbind", "ro"])));
        assert!(!read_only(&json!(["rbind", "ro", "rw"])));
        assert!(read_only(&json!(["rw", "nosuid", "ro"])));
        assert!(!read_only(&json!(["rbind"])));
        assert!(!read_only(&json!(null)));
        assert!(!read_only(&json!(["rbind", 7, "rorw"])));
    }

    #[test]
    fn test_guest_paths() {
        assert_eq!(guest_path("lcow", "c1", "m0"), "/run/lcow/share/lcow/c1/m0");
        assert_eq!(container_dir(Path::new("/s"), "c1"), Path::new("/s/c1"));
    }
}
