//! `containerd-shim-lcow-v1 check`: what this host offers the runtime and what is missing, in
//! plain words, with exit status 0 only when a container can run.

use std::path::Path;
use std::process::Command;

use lcow_protocol::vm::HostProbe;

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
            "{} not found (set `{key}` in the lcow configuration, or {})",
            path.display(),
            crate::sys::INSTALL_HINT
        )
    };
    Finding { what, ok, detail }
}

/// The hypervisor finding, from `VMM probe --json` (lcow-vmm knows the host's hypervisor; the
/// shim does not link it).
pub fn hypervisor(vmm: &Path) -> Finding {
    let what = "hypervisor";
    let out = match Command::new(vmm).args(["probe", "--json"]).output() {
        Ok(o) => o,
        Err(e) => {
            return Finding {
                what,
                ok: false,
                detail: format!("cannot ask {} (`probe`): {e}", vmm.display()),
            }
        }
    };
    match serde_json::from_slice::<HostProbe>(&out.stdout) {
        Ok(p) => Finding {
            what,
            ok: p.ready && out.status.success(),
            detail: format!("{}: {}", p.hypervisor, p.detail),
        },
        Err(_) => Finding {
            what,
            ok: false,
            detail: format!(
                "{} probe --json did not answer ({}; is it lcow-vmm {}?): {}",
                vmm.display(),
                out.status,
                env!("CARGO_PKG_VERSION"),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
    }
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
    out.push(file("vmm", "vmm", &config.vmm));
    out.push(hypervisor(&config.vmm));
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
            detail: crate::sys::CONTAINERD_HINT.to_owned(),
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
                "kernel = '{0}/none'\nvmm = '{0}/no-vmm'\nstate_dir = '{0}'\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let all = findings(Some(&cfg));
        let k = all.iter().find(|f| f.what == "kernel").unwrap();
        assert!(!k.ok);
        assert!(k.detail.contains("none") && k.detail.contains("`kernel`"));
        let h = all.iter().find(|f| f.what == "hypervisor").unwrap();
        assert!(!h.ok && h.detail.contains("cannot ask"), "{h:?}");
    }

    /// `check` believes the VMM's probe, and a VMM that does not speak it is named.
    #[cfg(target_os = "linux")]
    #[test]
    fn test_hypervisor_finding_from_the_vmms_probe() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let vmm = dir.path().join("vmm");
        let script = |body: &str| {
            std::fs::write(&vmm, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&vmm, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            r#"[ "$1 $2" = "probe --json" ] || exit 2; echo '{"hypervisor":"kvm","ready":true,"detail":"hw"}'"#,
        );
        let h = hypervisor(&vmm);
        assert!(h.ok && h.detail == "kvm: hw", "{h:?}");
        script(r#"echo '{"hypervisor":"whp","ready":false,"detail":"turn it on"}'; exit 1"#);
        let h = hypervisor(&vmm);
        assert!(!h.ok && h.detail == "whp: turn it on", "{h:?}");
        script("echo 'unknown subcommand' >&2; exit 2");
        let h = hypervisor(&vmm);
        assert!(!h.ok && h.detail.contains("unknown subcommand"), "{h:?}");
    }
}
