//! The runtime's configuration: which VMM, kernel and initramfs to boot, how big each VM is and
//! how its files are shared.
//!
//! A TOML file, found in this order: the `ConfigPath` of the runtime options containerd passes
//! (CRI: `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lcow.options] ConfigPath =
//! "..."`; ctr: `--runtime-config-path`), then `$LCOW_CONFIG`, then the host's default
//! (`/etc/lcow/lcow.toml`; Windows: `%ProgramData%\lcow\lcow.toml`). A missing default file
//! means "all defaults"; a named file that is missing is an error. The default files are
//! `make install`'s on Linux, the ones beside the shim's `.exe` on Windows (`crate::sys`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable that names another configuration file.
pub const CONFIG_ENV: &str = "LCOW_CONFIG";

/// Errors of reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the lcow configuration {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("the lcow configuration {} is invalid: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (line and key included).
        message: String,
    },
    /// A value is out of range.
    #[error("the lcow configuration {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

pub use lcow_protocol::share::ShareProtocol;

/// The runtime configuration (every key optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The lcow-vmm binary.
    pub vmm: PathBuf,
    /// The guest kernel (vmlinux with a PVH note, or bzImage).
    pub kernel: PathBuf,
    /// The guest initramfs with lcow-agent as /init.
    pub initramfs: PathBuf,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// vCPUs per VM.
    pub vcpus: u32,
    /// The file-share protocol of rootfs and bind mounts.
    pub share_protocol: ShareProtocol,
    /// Where the guest's serial console goes: empty (off), or a directory that receives
    /// `<container-id>.log` per VM.
    pub console_log_dir: PathBuf,
    /// Extra guest kernel parameters.
    pub kernel_params: String,
    /// Per-VM state (sockets, shared directory): `<state_dir>/<hash>`; keep it short, unix
    /// socket paths are limited to 107 bytes.
    pub state_dir: PathBuf,
    /// How long a VM may take to boot until its agent answers.
    pub boot_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let (vmm, kernel, initramfs) = crate::sys::default_files();
        Self {
            vmm,
            kernel,
            initramfs,
            memory_mib: 256,
            vcpus: 1,
            share_protocol: ShareProtocol::VirtioFs,
            console_log_dir: PathBuf::new(),
            kernel_params: String::new(),
            state_dir: crate::sys::default_state_dir(),
            boot_timeout_secs: 60,
        }
    }
}

impl Config {
    /// Reads the configuration: `named` (from the runtime options) if given, else
    /// `$LCOW_CONFIG`, else the default file, which may be absent.
    pub fn load(named: Option<&Path>) -> Result<(Self, PathBuf), ConfigError> {
        let env = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty());
        let (path, must_exist) = match (named, env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(e)) => (PathBuf::from(e), true),
            (None, None) => (crate::sys::default_config_path(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::parse(&text, &path)?, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                Ok((Self::default(), path))
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses and checks the TOML `text` read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if !(32..=65536).contains(&config.memory_mib) {
            return Err(invalid(format!(
                "memory_mib = {} is outside 32 to 65536",
                config.memory_mib
            )));
        }
        if !(1..=32).contains(&config.vcpus) {
            return Err(invalid(format!(
                "vcpus = {} is outside 1 to 32",
                config.vcpus
            )));
        }
        if config.boot_timeout_secs == 0 {
            return Err(invalid("boot_timeout_secs must be at least 1".to_owned()));
        }
        if !config.state_dir.is_absolute() || config.state_dir.as_os_str().len() > 48 {
            return Err(invalid(format!(
                "state_dir {} must be an absolute path of at most 48 bytes (socket paths \
                 beneath it are limited to 107)",
                config.state_dir.display()
            )));
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_empty_gives_defaults() {
        let c = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c.memory_mib, 256);
        assert_eq!(c.share_protocol, ShareProtocol::VirtioFs);
        assert_eq!(c.vmm, crate::sys::default_files().0);
        #[cfg(target_os = "linux")]
        assert_eq!(c.vmm, Path::new("/usr/local/bin/lcow-vmm"));
        #[cfg(windows)]
        assert!(c.vmm.ends_with("lcow-vmm.exe"), "{}", c.vmm.display());
    }

    /// The sample shipped in the Windows package parses and says what the defaults are.
    #[test]
    fn test_windows_sample_config_parses_to_the_defaults() {
        let text = include_str!("../../../packaging/windows/lcow.toml");
        let c = Config::parse(text, Path::new("lcow.toml")).unwrap();
        let d = Config::default();
        assert_eq!(
            (c.memory_mib, c.vcpus, c.boot_timeout_secs),
            (d.memory_mib, d.vcpus, d.boot_timeout_secs)
        );
        assert_eq!(c.vmm, d.vmm);
    }

    #[test]
    fn test_parse_values_and_protocol() {
        let c = Config::parse(
            "memory_mib = 512\nvcpus = 2\nshare_protocol = \"9p\"\nkernel = \"/k\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!((c.memory_mib, c.vcpus), (512, 2));
        assert_eq!(c.share_protocol.name(), "9p");
        assert_eq!(c.kernel, Path::new("/k"));
    }

    #[test]
    fn test_parse_unknown_key_names_it() {
        let e = Config::parse("memroy = 1\n", Path::new("/etc/x.toml")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("memroy") && text.contains("/etc/x.toml"),
            "{text}"
        );
    }

    #[test]
    fn test_parse_out_of_range_is_refused() {
        assert!(Config::parse("vcpus = 0", Path::new("x")).is_err());
        assert!(Config::parse("memory_mib = 8", Path::new("x")).is_err());
        assert!(Config::parse("state_dir = \"rel\"", Path::new("x")).is_err());
        assert!(Config::parse("share_protocol = \"nfs\"", Path::new("x")).is_err());
    }

    #[test]
    fn test_load_named_missing_file_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/lcow.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    }
}
