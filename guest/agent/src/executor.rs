//! [`PathExecutor`]: how a container's process is found and started, as runc does it. youki's
//! default executor refuses a process whose environment has no `PATH` ("PATH environment
//! variable is not set"), even for an absolute program; Kubernetes' pause container is such a
//! process. Here a program with a `/` is used as it is, and a bare name is looked up in the
//! spec's `PATH`, or in runc's default when the spec sets none; the process's environment is
//! left as the spec says (no `PATH` is added to it).

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

/// The search path runc uses when the spec's environment has no `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `name` as runc does: as it is when it holds a `/`, else in the directories of `path`.
pub fn resolve(name: &str, path: &str, exists: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let p = PathBuf::from(name);
        return exists(&p).then_some(p);
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|p| exists(p))
}

/// The `PATH` of the spec's environment, or [`DEFAULT_PATH`].
fn search_path(spec: &Spec) -> String {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().rev().find_map(|e| e.strip_prefix("PATH=")))
        .unwrap_or(DEFAULT_PATH)
        .to_owned()
}

fn is_executable_file(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn args(spec: &Spec) -> Option<&Vec<String>> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
}

/// The executor the agent gives libcontainer (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct PathExecutor;

impl Executor for PathExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = args(spec).ok_or(ExecutorError::InvalidArg)?;
        let program = resolve(&args[0], &search_path(spec), &|p| p.exists())
            .ok_or_else(|| ExecutorError::Execution(format!("{:?} not found", args[0]).into()))?;
        let program = CString::new(program.into_os_string().into_encoded_bytes())
            .map_err(|_| ExecutorError::InvalidArg)?;
        let argv = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        let err = nix::unistd::execv(&program, &argv).unwrap_err();
        Err(ExecutorError::Execution(
            format!("cannot execute {program:?}: {err}").into(),
        ))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let Some(args) = args(spec) else {
            return Err(ExecutorValidationError::ArgValidationError(
                "the process has no args".into(),
            ));
        };
        let path = search_path(spec);
        match resolve(&args[0], &path, &|p| p.exists()) {
            None => Err(ExecutorValidationError::ArgValidationError(format!(
                "executable {:?} not found (PATH {path})",
                args[0]
            ))),
            Some(p) if !is_executable_file(&p) => Err(ExecutorValidationError::ArgValidationError(
                format!("{} is not an executable file", p.display()),
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use oci_spec::runtime::{ProcessBuilder, SpecBuilder};

    use super::*;

    fn in_set<'a>(set: &'a [&'a str]) -> impl Fn(&Path) -> bool + 'a {
        move |p| set.iter().any(|s| Path::new(s) == p)
    }

    #[test]
    fn test_resolve_absolute_as_is_bare_in_path_order() {
        let present = ["/pause", "/usr/bin/sh", "/bin/sh", "/opt/x/tool"];
        let exists = in_set(&present);
        assert_eq!(
            resolve("/pause", DEFAULT_PATH, &exists),
            Some("/pause".into())
        );
        assert_eq!(resolve("/missing", DEFAULT_PATH, &exists), None);
        assert_eq!(
            resolve("sh", DEFAULT_PATH, &exists),
            Some("/usr/bin/sh".into())
        );
        assert_eq!(
            resolve("tool", "/opt/x", &exists),
            Some("/opt/x/tool".into())
        );
        assert_eq!(resolve("tool", DEFAULT_PATH, &exists), None);
        assert_eq!(resolve("", DEFAULT_PATH, &exists), None);
        assert_eq!(resolve("sh", "::/bin", &exists), Some("/bin/sh".into()));
    }

    #[test]
    fn test_search_path_from_env_else_runc_default() {
        let spec = |env: Vec<String>| {
            SpecBuilder::default()
                .process(
                    ProcessBuilder::default()
                        .args(vec!["sh".to_owned()])
                        .env(env)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        assert_eq!(search_path(&spec(vec!["HOME=/".into()])), DEFAULT_PATH);
        assert_eq!(
            search_path(&spec(vec!["PATH=/a:/b".into(), "X=1".into()])),
            "/a:/b"
        );
    }

    #[test]
    fn test_validate_without_path_accepts_absolute_program() {
        // This host's /bin/sh stands in for the container's pause binary.
        let spec = SpecBuilder::default()
            .process(
                ProcessBuilder::default()
                    .args(vec!["/bin/sh".to_owned()])
                    .env(Vec::<String>::new())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        PathExecutor.validate(&spec).unwrap();
        let bare = SpecBuilder::default()
            .process(
                ProcessBuilder::default()
                    .args(vec!["sh".to_owned()])
                    .env(Vec::<String>::new())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        PathExecutor.validate(&bare).unwrap();
        let missing = SpecBuilder::default()
            .process(
                ProcessBuilder::default()
                    .args(vec!["no-such-program-lcow".to_owned()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let e = PathExecutor.validate(&missing).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }
}
