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
    /// The container id (names the guest paths of its shares).
    pub id: String,
    /// VM file shares bound into the container.
    pub shares: Vec<crate::share::Share>,
}

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
    crate::share::add_to_spec(&mut spec, &run.id, &run.shares)?;
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
