//! The container's cgroup v2 directory: statistics, resource updates, pids and kills.
//!
//! libcontainer creates the cgroup and applies the spec's resources at create time; the agent
//! reads and updates the same directory afterwards. Parsing is kept in pure functions tested
//! against sample files; writes go through [`Syscall::write_file`].

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use lcow_protocol::agent::StatsResponse;
use oci_spec::runtime::LinuxResources;

use crate::syscall::Syscall;

/// Where cgroup v2 is mounted in the guest.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The controllers the agent enables for containers, where the kernel has them.
pub const CONTROLLERS: [&str; 5] = ["cpu", "memory", "pids", "io", "cpuset"];
/// cgroup files read for statistics are small; a longer one is cut here.
const MAX_CGROUP_FILE: u64 = 1 << 20;

/// Errors of cgroup access.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `linux.cgroupsPath` is not an absolute path of plain components.
    #[error("invalid cgroupsPath {0:?}: it must be absolute, without '..'")]
    BadPath(String),
    /// The cgroup directory does not exist (the container never got that far, or is gone).
    #[error("the container has no cgroup at {path}")]
    NoCgroup {
        /// The directory.
        path: PathBuf,
    },
    /// Reading a cgroup file failed.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The cgroup has no such interface file: its controller is not enabled.
    #[error("the cgroup has no {file}: is the {controller} controller enabled?")]
    NoController {
        /// The missing file.
        file: String,
        /// The controller it belongs to.
        controller: String,
    },
    /// Writing a cgroup file failed.
    #[error("failed to write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The cgroup directory of `cgroups_path` under `root`. Refuses relative paths and `..`,
/// since the path comes from the host's spec.
pub fn cgroup_dir(root: &Path, cgroups_path: &str) -> Result<PathBuf, CgroupError> {
    let path = Path::new(cgroups_path);
    if !path.is_absolute() {
        return Err(CgroupError::BadPath(crate::quote::quote(cgroups_path)));
    }
    let mut dir = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(part) => dir.push(part),
            _ => return Err(CgroupError::BadPath(crate::quote::quote(cgroups_path))),
        }
    }
    if dir == root {
        return Err(CgroupError::BadPath(crate::quote::quote(cgroups_path)));
    }
    Ok(dir)
}

fn read(path: &Path) -> Result<String, CgroupError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut s = String::new();
    f.take(MAX_CGROUP_FILE)
        .read_to_string(&mut s)
        .map_err(|source| CgroupError::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(s)
}

/// Reads a file that may be absent (a controller not enabled, no swap): absent is `None`.
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match read(path) {
        Ok(s) => Ok(Some(s)),
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Parses "key value" lines (cpu.stat, memory.stat, memory.events); malformed lines are skipped.
pub fn parse_flat_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.trim().split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Parses a single-value file; "max" (no limit) is 0, as the protocol reports it.
pub fn parse_single(text: &str) -> u64 {
    let t = text.trim();
    if t == "max" {
        0
    } else {
        t.parse().unwrap_or(0)
    }
}

/// io.stat summed over devices: (rbytes, wbytes, rios, wios).
pub fn parse_io_stat(text: &str) -> (u64, u64, u64, u64) {
    let mut sum = (0u64, 0u64, 0u64, 0u64);
    for line in text.lines() {
        for field in line.split_whitespace().skip(1) {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => sum.0 = sum.0.saturating_add(v),
                "wbytes" => sum.1 = sum.1.saturating_add(v),
                "rios" => sum.2 = sum.2.saturating_add(v),
                "wios" => sum.3 = sum.3.saturating_add(v),
                _ => {}
            }
        }
    }
    sum
}

/// The statistics of the cgroup at `dir`.
pub fn read_stats(dir: &Path) -> Result<StatsResponse, CgroupError> {
    if !dir.is_dir() {
        return Err(CgroupError::NoCgroup {
            path: dir.to_owned(),
        });
    }
    let mut s = StatsResponse::new();
    let flat = |name: &str| -> Result<HashMap<String, u64>, CgroupError> {
        Ok(read_optional(&dir.join(name))?
            .map(|t| parse_flat_keyed(&t))
            .unwrap_or_default())
    };
    let single = |name: &str| -> Result<u64, CgroupError> {
        Ok(read_optional(&dir.join(name))?
            .map(|t| parse_single(&t))
            .unwrap_or(0))
    };
    let cpu = flat("cpu.stat")?;
    let get = |m: &HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu_usage_usec = get(&cpu, "usage_usec");
    s.cpu_user_usec = get(&cpu, "user_usec");
    s.cpu_system_usec = get(&cpu, "system_usec");
    s.cpu_nr_periods = get(&cpu, "nr_periods");
    s.cpu_nr_throttled = get(&cpu, "nr_throttled");
    s.cpu_throttled_usec = get(&cpu, "throttled_usec");
    s.memory_usage = single("memory.current")?;
    s.memory_limit = single("memory.max")?;
    s.memory_swap_usage = single("memory.swap.current")?;
    s.memory_stat = flat("memory.stat")?;
    let events = flat("memory.events")?;
    s.memory_events_oom = get(&events, "oom");
    s.memory_events_oom_kill = get(&events, "oom_kill");
    s.memory_events_max = get(&events, "max");
    s.memory_events_high = get(&events, "high");
    s.pids_current = single("pids.current")?;
    s.pids_limit = single("pids.max")?;
    if let Some(io) = read_optional(&dir.join("io.stat"))? {
        (
            s.io_read_bytes,
            s.io_write_bytes,
            s.io_read_ios,
            s.io_write_ios,
        ) = parse_io_stat(&io);
    }
    Ok(s)
}

/// cgroup v1 cpu.shares (2..262144) to cgroup v2 cpu.weight (1..10000), as runc converts.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn limit_or_max(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// Whether `name` looks like a cgroup interface file (`controller.key`), so a host-sent
/// `unified` key cannot name a path.
fn is_cgroup_file_name(name: &str) -> bool {
    name.len() <= 64
        && name.contains('.')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// The (file, value) writes that apply `r` to a cgroup v2 directory, in order.
pub fn resource_writes(r: &LinuxResources) -> Result<Vec<(String, String)>, CgroupError> {
    let mut w: Vec<(String, String)> = Vec::new();
    if let Some(mem) = r.memory() {
        if let Some(low) = mem.reservation() {
            w.push(("memory.low".into(), limit_or_max(low)));
        }
        if let Some(limit) = mem.limit() {
            w.push(("memory.max".into(), limit_or_max(limit)));
        }
        if let Some(swap) = mem.swap() {
            // OCI's swap is memory + swap; v2's swap.max is swap alone.
            let v = match (swap, mem.limit()) {
                (s, _) if s < 0 => "max".to_owned(),
                (s, Some(l)) if l >= 0 => s.saturating_sub(l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            w.push(("memory.swap.max".into(), v));
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares() {
            w.push(("cpu.weight".into(), shares_to_weight(shares).to_string()));
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let quota = match cpu.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_owned(),
            };
            let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
            w.push(("cpu.max".into(), format!("{quota} {period}")));
        }
        if let Some(cpus) = cpu.cpus() {
            w.push(("cpuset.cpus".into(), cpus.clone()));
        }
        if let Some(mems) = cpu.mems() {
            w.push(("cpuset.mems".into(), mems.clone()));
        }
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        let v = if limit <= 0 {
            "max".to_owned()
        } else {
            limit.to_string()
        };
        w.push(("pids.max".into(), v));
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for k in keys {
            if !is_cgroup_file_name(k) {
                return Err(CgroupError::BadPath(crate::quote::quote(k)));
            }
            w.push((k.clone(), unified[k].clone()));
        }
    }
    Ok(w)
}

/// Applies `r` to the cgroup at `dir`.
pub fn apply_resources(
    sys: &dyn Syscall,
    dir: &Path,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    if !dir.is_dir() {
        return Err(CgroupError::NoCgroup {
            path: dir.to_owned(),
        });
    }
    for (file, value) in resource_writes(r)? {
        let path = dir.join(&file);
        sys.write_file(&path, &value).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                let controller = file.split('.').next().unwrap_or_default().to_owned();
                CgroupError::NoController { file, controller }
            } else {
                CgroupError::Write {
                    path,
                    value,
                    source,
                }
            }
        })?;
    }
    Ok(())
}

/// The pids in the cgroup (cgroup.procs).
pub fn list_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = match read(&path) {
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(CgroupError::NoCgroup {
                path: dir.to_owned(),
            })
        }
        other => other?,
    };
    Ok(text
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .collect())
}

/// Sends `signal` to every process of the cgroup; processes that vanished are skipped.
/// Returns how many were signalled.
pub fn signal_all(sys: &dyn Syscall, dir: &Path, signal: i32) -> Result<usize, CgroupError> {
    let mut n = 0;
    for pid in list_pids(dir)? {
        match sys.kill(pid, signal) {
            Ok(()) => n += 1,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => tracing::warn!(pid, signal, error = %e, "kill failed"),
        }
    }
    Ok(n)
}

/// Enables [`CONTROLLERS`] that `root`'s cgroup.controllers lists, one write each (one
/// missing controller must not block the others). Returns the enabled ones.
pub fn enable_controllers(sys: &dyn Syscall, root: &Path) -> Vec<&'static str> {
    let available = read(&root.join("cgroup.controllers")).unwrap_or_default();
    let available: Vec<&str> = available.split_whitespace().collect();
    let mut enabled = Vec::new();
    for c in CONTROLLERS {
        if !available.contains(&c) {
            continue;
        }
        match sys.write_file(&root.join("cgroup.subtree_control"), &format!("+{c}")) {
            Ok(()) => enabled.push(c),
            Err(e) => tracing::warn!(controller = c, error = %e, "cannot enable cgroup controller"),
        }
    }
    enabled
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, RecordingSyscall};

    const CPU_STAT: &str = "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n\
        core_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n\
        nr_bursts 0\nburst_usec 0\n";
    const MEMORY_STAT: &str = "anon 4096\nfile 8192\nkernel 1024\nshmem 0\n";
    const MEMORY_EVENTS: &str = "low 0\nhigh 1\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n";
    const IO_STAT: &str = "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n\
        8:16 rbytes=10 wbytes=20 rios=3 wios=4 dbytes=0 dios=0\n";

    fn sample_cgroup() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let w = |n: &str, t: &str| std::fs::write(d.path().join(n), t).unwrap();
        w("cpu.stat", CPU_STAT);
        w("memory.current", "123456\n");
        w("memory.max", "max\n");
        w("memory.stat", MEMORY_STAT);
        w("memory.events", MEMORY_EVENTS);
        w("pids.current", "3\n");
        w("pids.max", "100\n");
        w("io.stat", IO_STAT);
        w("cgroup.procs", "12\n34\n");
        d
    }

    #[test]
    fn test_stats_parse_sample_cgroup_files() {
        // Arrange
        let d = sample_cgroup();
        // Act
        let s = read_stats(d.path()).unwrap();
        // Assert
        assert_eq!(
            (s.cpu_usage_usec, s.cpu_user_usec, s.cpu_system_usec),
            (1000, 600, 400)
        );
        assert_eq!(
            (s.cpu_nr_periods, s.cpu_nr_throttled, s.cpu_throttled_usec),
            (10, 2, 300)
        );
        assert_eq!((s.memory_usage, s.memory_limit), (123_456, 0));
        assert_eq!(s.memory_swap_usage, 0, "absent memory.swap.current is 0");
        assert_eq!(s.memory_stat.get("file"), Some(&8192));
        assert_eq!(
            (
                s.memory_events_oom,
                s.memory_events_oom_kill,
                s.memory_events_max,
                s.memory_events_high
            ),
            (2, 1, 5, 1)
        );
        assert_eq!((s.pids_current, s.pids_limit), (3, 100));
        assert_eq!(
            (
                s.io_read_bytes,
                s.io_write_bytes,
                s.io_read_ios,
                s.io_write_ios
            ),
            (110, 220, 4, 6)
        );
    }

    #[test]
    fn test_stats_missing_cgroup_is_no_cgroup() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_stats(&d.path().join("gone")),
            Err(CgroupError::NoCgroup { .. })
        ));
    }

    #[test]
    fn test_list_pids_reads_cgroup_procs() {
        let d = sample_cgroup();
        assert_eq!(list_pids(d.path()).unwrap(), [12, 34]);
    }

    #[test]
    fn test_cgroup_dir_refuses_relative_and_dotdot() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            cgroup_dir(root, "/lcow/c1").unwrap(),
            Path::new("/sys/fs/cgroup/lcow/c1")
        );
        assert!(cgroup_dir(root, "lcow/c1").is_err());
        assert!(cgroup_dir(root, "/lcow/../../etc").is_err());
        assert!(cgroup_dir(root, "/").is_err());
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn test_resource_writes_memory_cpu_pids_cpuset() {
        let r = resources(
            r#"{"memory":{"limit":268435456,"swap":536870912},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
                "pids":{"limit":64}}"#,
        );
        let w = resource_writes(&r).unwrap();
        let want: Vec<(String, String)> = [
            ("memory.max", "268435456"),
            ("memory.swap.max", "268435456"),
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
            ("pids.max", "64"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(w, want);
    }

    #[test]
    fn test_resource_writes_unlimited_values_are_max() {
        let r = resources(r#"{"memory":{"limit":-1},"cpu":{"quota":-1},"pids":{"limit":0}}"#);
        let w = resource_writes(&r).unwrap();
        assert!(w.contains(&("memory.max".into(), "max".into())));
        assert!(w.contains(&("cpu.max".into(), "max 100000".into())));
        assert!(w.contains(&("pids.max".into(), "max".into())));
    }

    #[test]
    fn test_resource_writes_unified_keys_must_be_cgroup_files() {
        let ok = resources(r#"{"unified":{"memory.high":"1000"}}"#);
        assert_eq!(
            resource_writes(&ok).unwrap(),
            [("memory.high".to_owned(), "1000".to_owned())]
        );
        let bad = resources(r#"{"unified":{"../../etc/passwd":"x"}}"#);
        assert!(resource_writes(&bad).is_err());
    }

    #[test]
    fn test_apply_resources_writes_through_syscall() {
        // Arrange
        let d = tempfile::tempdir().unwrap();
        let sys = RecordingSyscall::default();
        let r = resources(r#"{"memory":{"limit":1048576},"pids":{"limit":10}}"#);
        // Act
        apply_resources(&sys, d.path(), &r).unwrap();
        // Assert
        let dir = d.path().display();
        assert_eq!(
            sys.calls(),
            [
                Call::Write(format!("{dir}/memory.max"), "1048576".into()),
                Call::Write(format!("{dir}/pids.max"), "10".into()),
            ]
        );
    }

    #[test]
    fn test_apply_resources_missing_controller_file_is_named() {
        let d = tempfile::tempdir().unwrap();
        let sys = RecordingSyscall::default();
        sys.fail_when(|_| Some(libc::ENOENT));
        let err =
            apply_resources(&sys, d.path(), &resources(r#"{"pids":{"limit":10}}"#)).unwrap_err();
        assert!(
            matches!(&err, CgroupError::NoController { controller, .. } if controller == "pids"),
            "{err:?}"
        );
    }

    #[test]
    fn test_signal_all_kills_every_pid_and_skips_vanished() {
        let d = sample_cgroup();
        let sys = RecordingSyscall::default();
        sys.fail_when(|c| (*c == Call::Kill(12, 9)).then_some(libc::ESRCH));
        assert_eq!(signal_all(&sys, d.path(), 9).unwrap(), 1);
        assert_eq!(sys.calls(), [Call::Kill(12, 9), Call::Kill(34, 9)]);
    }

    #[test]
    fn test_enable_controllers_writes_each_available_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
        let sys = RecordingSyscall::default();
        sys.fail_when(|c| match c {
            Call::Write(_, v) if v == "+io" => Some(libc::EINVAL),
            _ => None,
        });
        let enabled = enable_controllers(&sys, d.path());
        assert_eq!(enabled, ["cpu", "memory", "pids", "cpuset"]);
        assert_eq!(sys.calls().len(), 5);
    }

    #[test]
    fn test_shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
