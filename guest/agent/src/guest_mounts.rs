//! The guest mounts containers ask for, shared between containers that ask for the same one.
//!
//! Every container of a VM names the VM's file share as a guest mount on the same target
//! (docs/architecture.md, "Shares"). The share is mounted once, when the first container asks
//! for it, and unmounted when the last one is removed: the Linux 9p client refuses a second
//! mount of one tag (EBUSY), and one mount is less work for the guest anyway. Two containers
//! asking for different mounts on one target is refused.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::bundle::GuestMount;
use crate::state::lock;
use crate::syscall::Syscall;

/// One mounted target and how many containers use it.
#[derive(Debug)]
struct Users {
    mount: GuestMount,
    count: usize,
}

/// The table of guest mounts by target.
#[derive(Debug, Default)]
pub struct SharedMounts {
    by_target: Mutex<HashMap<PathBuf, Users>>,
}

impl SharedMounts {
    /// Mounts `m` for one more container, or counts one more user of the same mount.
    pub fn attach(&self, sys: &dyn Syscall, m: &GuestMount) -> io::Result<()> {
        let mut table = lock(&self.by_target);
        if let Some(users) = table.get_mut(&m.target) {
            if users.mount != *m {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is already mounted for another container with another source, type or options",
                        m.target.display()
                    ),
                ));
            }
            users.count += 1;
            return Ok(());
        }
        m.apply(sys)?;
        table.insert(
            m.target.clone(),
            Users {
                mount: m.clone(),
                count: 1,
            },
        );
        Ok(())
    }

    /// One container less uses `target`; the last one unmounts it (lazily).
    pub fn detach(&self, sys: &dyn Syscall, target: &Path) -> io::Result<()> {
        let mut table = lock(&self.by_target);
        let Some(users) = table.get_mut(target) else {
            return Ok(());
        };
        users.count -= 1;
        if users.count > 0 {
            return Ok(());
        }
        table.remove(target);
        sys.umount(target, true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use lcow_protocol::agent::Mount;

    use super::*;
    use crate::syscall::fake::{Call, RecordingSyscall};

    fn share(target: &str, fstype: &str) -> GuestMount {
        GuestMount::parse(&Mount {
            source: "lcow".into(),
            target: target.into(),
            fstype: fstype.into(),
            options: vec!["trans=virtio".into()],
            ..Default::default()
        })
        .unwrap()
    }

    fn mounts(sys: &RecordingSyscall) -> usize {
        sys.calls()
            .iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .count()
    }

    fn umounts(sys: &RecordingSyscall) -> usize {
        sys.calls()
            .iter()
            .filter(|c| matches!(c, Call::Umount(_)))
            .count()
    }

    #[test]
    fn test_same_mount_twice_mounts_once_unmounts_after_last() {
        let sys = RecordingSyscall::default();
        let table = SharedMounts::default();
        let m = share("/run/lcow/share/lcow", "9p");

        table.attach(&sys, &m).unwrap();
        table.attach(&sys, &m).unwrap();
        assert_eq!(mounts(&sys), 1, "{:?}", sys.calls());

        table.detach(&sys, &m.target).unwrap();
        assert_eq!(umounts(&sys), 0, "still used by the second container");
        table.detach(&sys, &m.target).unwrap();
        assert_eq!(umounts(&sys), 1);
        table.detach(&sys, &m.target).unwrap();
        assert_eq!(umounts(&sys), 1, "an unknown target is not unmounted again");
    }

    #[test]
    fn test_other_mount_on_a_used_target_refused() {
        let sys = RecordingSyscall::default();
        let table = SharedMounts::default();
        table
            .attach(&sys, &share("/run/lcow/share/lcow", "9p"))
            .unwrap();
        let e = table
            .attach(&sys, &share("/run/lcow/share/lcow", "virtiofs"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(mounts(&sys), 1);
    }
}
