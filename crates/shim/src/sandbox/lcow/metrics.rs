//! Stats: the agent's cgroup v2 figures as containerd's `io.containerd.cgroups.v2.Metrics`,
//! the type `ctr task metrics` and the CRI decode.

use containerd_shim::protos::cgroups_v2::metrics::{
    CPUStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};
use lcow_protocol::agent::StatsResponse;

/// Maps the agent's figures to containerd's message.
pub fn to_metrics(s: &StatsResponse) -> Metrics {
    let stat = |k: &str| s.memory_stat.get(k).copied().unwrap_or(0);
    Metrics {
        pids: Some(PidsStat {
            current: s.pids_current,
            limit: s.pids_limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(CPUStat {
            usage_usec: s.cpu_usage_usec,
            user_usec: s.cpu_user_usec,
            system_usec: s.cpu_system_usec,
            nr_periods: s.cpu_nr_periods,
            nr_throttled: s.cpu_nr_throttled,
            throttled_usec: s.cpu_throttled_usec,
            ..Default::default()
        })
        .into(),
        memory: Some(MemoryStat {
            anon: stat("anon"),
            file: stat("file"),
            kernel_stack: stat("kernel_stack"),
            slab: stat("slab"),
            sock: stat("sock"),
            shmem: stat("shmem"),
            file_mapped: stat("file_mapped"),
            file_dirty: stat("file_dirty"),
            file_writeback: stat("file_writeback"),
            anon_thp: stat("anon_thp"),
            inactive_anon: stat("inactive_anon"),
            active_anon: stat("active_anon"),
            inactive_file: stat("inactive_file"),
            active_file: stat("active_file"),
            unevictable: stat("unevictable"),
            slab_reclaimable: stat("slab_reclaimable"),
            slab_unreclaimable: stat("slab_unreclaimable"),
            pgfault: stat("pgfault"),
            pgmajfault: stat("pgmajfault"),
            usage: s.memory_usage,
            usage_limit: s.memory_limit,
            swap_usage: s.memory_swap_usage,
            ..Default::default()
        })
        .into(),
        memory_events: Some(MemoryEvents {
            high: s.memory_events_high,
            max: s.memory_events_max,
            oom: s.memory_events_oom,
            oom_kill: s.memory_events_oom_kill,
            ..Default::default()
        })
        .into(),
        io: Some(IOStat {
            usage: vec![IOEntry {
                rbytes: s.io_read_bytes,
                wbytes: s.io_write_bytes,
                rios: s.io_read_ios,
                wios: s.io_write_ios,
                ..Default::default()
            }],
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_metrics_carry_memory_and_pids() {
        let mut s = StatsResponse {
            memory_usage: 4096,
            memory_limit: 1 << 20,
            pids_current: 3,
            memory_events_oom_kill: 1,
            ..Default::default()
        };
        s.memory_stat.insert("anon".to_owned(), 77);
        let m = to_metrics(&s);
        assert_eq!(m.memory.usage, 4096);
        assert_eq!(m.memory.usage_limit, 1 << 20);
        assert_eq!(m.memory.anon, 77);
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.memory_events.oom_kill, 1);
    }
}
