//! The OCI spec `lcow-ctl run` sends: oci-spec's default (runc's), with the command, terminal,
//! environment and memory limit the operator asked for. The agent supplies the rootfs.

use anyhow::Context;
use serde_json::{json, Value};

/// What `run` puts in the spec.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// argv of the process.
    pub args: Vec<String>,
    /// Allocate a pty.
    pub terminal: bool,
    /// Extra `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// memory.max in bytes.
    pub memory: Option<u64>,
    /// Working directory.
    pub cwd: Option<String>,
    /// VM file shares bound into the container.
    pub shares: Vec<crate::share::Share>,
    /// Every capability and a writable rootfs (for file-system suites that chown, mknod and
    /// switch users).
    pub privileged: bool,
    /// A writable rootfs (a rootfs of layer disks with its own scratch).
    pub writable_root: bool,
}

/// Every capability a 6.1 kernel knows.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The spec as JSON bytes.
pub fn build(run: &RunSpec) -> anyhow::Result<Vec<u8>> {
    let mut spec = serde_json::to_value(oci_spec::runtime::Spec::default())
        .context("cannot serialize the default OCI spec")?;
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        format!("TERM={}", if run.terminal { "xterm" } else { "dumb" }),
    ];
    env.extend(run.env.iter().cloned());
    let process = spec
        .get_mut("process")
        .and_then(Value::as_object_mut)
        .context("the default spec has no process")?;
    process.insert("args".to_owned(), json!(run.args));
    process.insert("terminal".to_owned(), json!(run.terminal));
    process.insert("env".to_owned(), json!(env));
    process.insert("cwd".to_owned(), json!(run.cwd.as_deref().unwrap_or("/")));
    spec["hostname"] = json!("lcow");
    if let Some(limit) = run.memory {
        let linux = spec
            .get_mut("linux")
            .and_then(Value::as_object_mut)
            .context("the default spec has no linux section")?;
        let resources = linux.entry("resources").or_insert_with(|| json!({}));
        resources["memory"] = json!({ "limit": limit, "swap": limit });
    }
    if run.privileged {
        let caps = json!(ALL_CAPS);
        spec["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
        });
        spec["root"]["readonly"] = json!(false);
    }
    if run.writable_root {
        spec["root"]["readonly"] = json!(false);
    }
    crate::share::add_to_spec(&mut spec, &run.shares)?;
    serde_json::to_vec(&spec).context("cannot serialize the OCI spec")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_build_sets_args_terminal_env_and_limit() {
        let bytes = build(&RunSpec {
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            terminal: true,
            env: vec!["A=1".into()],
            memory: Some(16 << 20),
            cwd: None,
            ..Default::default()
        })
        .unwrap();
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &["sh", "-c", "echo hi"]);
        assert_eq!(process.terminal(), Some(true));
        assert!(process.env().as_ref().unwrap().contains(&"A=1".to_owned()));
        let limit = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit());
        assert_eq!(limit, Some(16 << 20));
    }

    #[test]
    fn test_build_privileged_has_every_capability_and_a_writable_root() {
        let bytes = build(&RunSpec {
            args: vec!["true".into()],
            privileged: true,
            ..Default::default()
        })
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let caps = v["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap();
        assert!(caps.contains(&json!("CAP_CHOWN")) && caps.contains(&json!("CAP_MKNOD")));
        assert_eq!(v["root"]["readonly"], json!(false));
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).unwrap();
        assert!(spec.process().as_ref().unwrap().capabilities().is_some());
    }

    #[test]
    fn test_build_without_limit_has_no_memory_section() {
        let bytes = build(&RunSpec {
            args: vec!["true".into()],
            ..Default::default()
        })
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v["linux"]["resources"]["memory"].is_null());
        assert_eq!(v["process"]["terminal"], json!(false));
    }
}
