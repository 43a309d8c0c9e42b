//! `containerd-shim-lcow-v1 check`: what this host offers the runtime and what is missing, in
//! plain words, with exit status 0 only when a container can run.

use std::path::Path;
use std::process::Command;

use lcow_hypervisor::kvm::{kvm_kind, KvmKind};

use crate::config::Config;

/// One line of the report.
#[derive(Debug)]
pub struct Finding {
    /// What was looked at.
    pub what: &'static str,
    /// Whether it is usable.
    pub ok: bool,
    /// What was found, or what to do.
    pub detail: String,
}

fn file(what: &'static str, key: &str, path: &Path) -> Finding {
    let ok = path.is_file();
    let detail = if ok {
        path.display().to_string()
    } else {
        format!(
            "{} not found (set `{key}` in the lcow configuration, or run `make install`)",
            path.display()
        )
    };
    Finding { what, ok, detail }
}

/// Looks at the host.
pub fn findings(config_arg: Option<&Path>) -> Vec<Finding> {
    let mut out = Vec::new();
    let config = match Config::load(config_arg) {
        Ok((c, path)) => {
            let present = path.is_file();
            out.push(Finding {
                what: "config",
                ok: true,
                detail: if present {
                    path.display().to_string()
                } else {
                    format!("{} absent: built-in defaults", path.display())
                },
            });
            c
        }
        Err(e) => {
            out.push(Finding {
                what: "config",
                ok: false,
                detail: e.to_string(),
            });
            Config::default()
        }
    };
    let kind = kvm_kind();
    out.push(Finding {
        what: "kvm",
        ok: matches!(kind, KvmKind::Hardware(_)),
        detail: kind.explain().to_owned(),
    });
    out.push(file("vmm", "vmm", &config.vmm));
    out.push(file("kernel", "kernel", &config.kernel));
    out.push(file("initramfs", "initramfs", &config.initramfs));
    let containerd = Command::new("containerd").arg("--version").output();
    out.push(match containerd {
        Ok(o) if o.status.success() => Finding {
            what: "containerd",
            ok: true,
            detail: String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        },
        _ => Finding {
            what: "containerd",
            ok: false,
            detail: "not found on PATH (Debian: apt-get install containerd)".to_owned(),
        },
    });
    let state_ok = std::fs::create_dir_all(&config.state_dir).is_ok();
    out.push(Finding {
        what: "state_dir",
        ok: state_ok,
        detail: if state_ok {
            format!("{} (writable)", config.state_dir.display())
        } else {
            format!("cannot create {} (run as root)", config.state_dir.display())
        },
    });
    out
}

/// Prints the report; true when everything needed is there.
pub fn run(config_arg: Option<&Path>) -> bool {
    let all = findings(config_arg);
    println!(
        "containerd-shim-lcow-v1 {} (runtime io.containerd.lcow.v1)",
        env!("CARGO_PKG_VERSION")
    );
    for f in &all {
        println!(
            "  {:<11} {:<8} {}",
            f.what,
            if f.ok { "ok" } else { "MISSING" },
            f.detail
        );
    }
    let missing = all.iter().filter(|f| !f.ok).count();
    if missing == 0 {
        println!("ready: containers can run here");
    } else {
        println!("not ready: {missing} problem(s) above");
    }
    missing == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_findings_name_missing_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("lcow.toml");
        std::fs::write(
            &cfg,
            format!(
                "kernel = \"{0}/none\"\nstate_dir = \"{0}\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let all = findings(Some(&cfg));
        let k = all.iter().find(|f| f.what == "kernel").unwrap();
        assert!(!k.ok);
        assert!(k.detail.contains("none") && k.detail.contains("`kernel`"));
        assert!(all.iter().any(|f| f.what == "kvm"));
    }
}
