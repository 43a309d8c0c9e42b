//! [`Partition`]: a WHP partition (the VM), set up the way the backend needs it, and its guest
//! memory ranges. It is deleted when dropped.
//!
//! Setup, in WHP's required order: `WHvCreatePartition`; the properties that must precede
//! setup (processor count; extended exits for CPUID and MSR accesses, so per-vCPU CPUID
//! answers and the MSRs WHP does not emulate reach the VMM; the CPUID leaves that exit; the
//! local APIC emulated in xAPIC mode); `WHvSetupPartition`. A failure at any step deletes the
//! partition and says which step failed.

use std::ffi::c_void;
use std::io;
use std::sync::Arc;

use windows_sys::Win32::System::Hypervisor::{
    WHvMapGpaRangeFlagExecute, WHvMapGpaRangeFlagRead, WHvMapGpaRangeFlagWrite,
    WHvPartitionPropertyCodeCpuidExitList, WHvPartitionPropertyCodeExtendedVmExits,
    WHvPartitionPropertyCodeLocalApicEmulationMode, WHvPartitionPropertyCodeProcessorCount,
    WHvX64LocalApicEmulationModeXApic, WHV_MAP_GPA_RANGE_FLAGS, WHV_PARTITION_HANDLE,
    WHV_PARTITION_PROPERTY_CODE,
};

use super::api::{HResultError, Platform};
use crate::{Error, MemoryRegion, Result};

/// `WHV_EXTENDED_VM_EXITS` bits: CPUID (bit 0) and MSR accesses (bit 1) exit to the VMM.
const EXTENDED_EXITS_CPUID_MSR: u64 = 1 << 0 | 1 << 1;

/// A set-up WHP partition (see the module documentation).
pub struct Partition {
    api: Arc<dyn Platform>,
    handle: WHV_PARTITION_HANDLE,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("handle", &self.handle)
            .finish()
    }
}

fn create_error(step: &str, e: HResultError) -> Error {
    let cause = io::Error::from(e);
    Error::CreateVm(io::Error::new(cause.kind(), format!("{step}: {cause}")))
}

/// What a guest may do with a range: read and execute always, write unless read-only.
fn map_flags(region: &MemoryRegion) -> WHV_MAP_GPA_RANGE_FLAGS {
    let mut flags = WHvMapGpaRangeFlagRead | WHvMapGpaRangeFlagExecute;
    if !region.read_only {
        flags |= WHvMapGpaRangeFlagWrite;
    }
    flags
}

impl Partition {
    /// Creates and sets up a partition with `vcpus` processors whose `cpuid_exits` leaves exit
    /// to the VMM, on this host's WHP (see [`super::probe`] for what can be missing).
    pub fn open(vcpus: u32, cpuid_exits: &[u32]) -> Result<Self> {
        Self::new(super::api::platform()?, vcpus, cpuid_exits)
    }

    /// As [`Partition::open`], on the function table `api`.
    pub(crate) fn new(api: Arc<dyn Platform>, vcpus: u32, cpuid_exits: &[u32]) -> Result<Self> {
        let handle = api
            .create_partition()
            .map_err(|e| create_error("WHvCreatePartition", e))?;
        // From here on, dropping `partition` deletes it.
        let partition = Partition { api, handle };
        partition.set(
            WHvPartitionPropertyCodeProcessorCount,
            "processor count",
            &vcpus.to_le_bytes(),
        )?;
        partition.set(
            WHvPartitionPropertyCodeExtendedVmExits,
            "extended exits",
            &EXTENDED_EXITS_CPUID_MSR.to_le_bytes(),
        )?;
        if !cpuid_exits.is_empty() {
            let leaves: Vec<u8> = cpuid_exits.iter().flat_map(|l| l.to_le_bytes()).collect();
            partition.set(
                WHvPartitionPropertyCodeCpuidExitList,
                "CPUID exit list",
                &leaves,
            )?;
        }
        partition.set(
            WHvPartitionPropertyCodeLocalApicEmulationMode,
            "local APIC emulation mode",
            &(WHvX64LocalApicEmulationModeXApic as u32).to_le_bytes(),
        )?;
        partition
            .api
            .setup_partition(handle)
            .map_err(|e| create_error("WHvSetupPartition", e))?;
        tracing::debug!(vcpus, "whp partition set up");
        Ok(partition)
    }

    fn set(&self, code: WHV_PARTITION_PROPERTY_CODE, what: &str, value: &[u8]) -> Result<()> {
        self.api
            .set_partition_property(self.handle, code, value)
            .map_err(|e| create_error(&format!("WHvSetPartitionProperty ({what})"), e))
    }

    /// The partition's handle.
    pub fn handle(&self) -> WHV_PARTITION_HANDLE {
        self.handle
    }

    /// The function table the partition was made with.
    pub(crate) fn api(&self) -> &Arc<dyn Platform> {
        &self.api
    }

    /// Maps `region` as guest memory in slot `slot` (the slot only names it in errors).
    ///
    /// # Safety
    ///
    /// As [`crate::Vm::add_memory_region`]: the host range stays mapped until unmapped.
    pub unsafe fn map(&self, slot: u32, region: &MemoryRegion) -> Result<()> {
        // SAFETY: the caller keeps the host range mapped until `unmap`.
        unsafe {
            self.api.map_gpa_range(
                self.handle,
                region.host_address as *const c_void,
                region.guest_address,
                region.size,
                map_flags(region),
            )
        }
        .map_err(|e| Error::SetUserMemoryRegion {
            slot,
            source: e.into(),
        })
    }

    /// Unmaps `region` (mapped as slot `slot`).
    pub fn unmap(&self, slot: u32, region: &MemoryRegion) -> Result<()> {
        self.api
            .unmap_gpa_range(self.handle, region.guest_address, region.size)
            .map_err(|e| Error::SetUserMemoryRegion {
                slot,
                source: e.into(),
            })
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if let Err(e) = self.api.delete_partition(self.handle) {
            tracing::warn!(error = %io::Error::from(e), "WHvDeletePartition failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fake::FakePlatform;
    use super::*;

    fn region(read_only: bool) -> MemoryRegion {
        MemoryRegion {
            guest_address: 0x10_0000,
            size: 0x20_0000,
            host_address: 0x7000_0000,
            read_only,
        }
    }

    #[test]
    fn test_partition_setup_order_and_values() {
        let fake = Arc::new(FakePlatform::default());
        let partition = Partition::new(fake.clone(), 2, &[0x1, 0x4000_0000]).unwrap();
        assert_eq!(partition.handle(), 7);
        drop(partition);
        assert_eq!(
            fake.calls(),
            [
                "create".to_owned(),
                "property 7 0x1fff [02, 00, 00, 00]".into(),
                "property 7 0x1 [03, 00, 00, 00, 00, 00, 00, 00]".into(),
                "property 7 0x1003 [01, 00, 00, 00, 00, 00, 00, 40]".into(),
                "property 7 0x1005 [01, 00, 00, 00]".into(),
                "setup 7".into(),
                "delete 7".into(),
            ]
        );
    }

    #[test]
    fn test_partition_without_cpuid_exits_sets_no_exit_list() {
        let fake = Arc::new(FakePlatform::default());
        drop(Partition::new(fake.clone(), 1, &[]).unwrap());
        assert!(!fake.calls().iter().any(|c| c.contains(" 0x1003 ")));
    }

    #[test]
    fn test_partition_failed_step_is_named_and_the_partition_deleted() {
        let fake = Arc::new(FakePlatform::failing("setup"));
        let err = Partition::new(fake.clone(), 1, &[]).unwrap_err();
        let Error::CreateVm(cause) = &err else {
            panic!("{err:?}");
        };
        assert!(
            cause.to_string().starts_with("WHvSetupPartition:"),
            "{cause}"
        );
        assert_eq!(fake.calls().last().unwrap(), "delete 7");
    }

    #[test]
    fn test_partition_create_failure_deletes_nothing() {
        let fake = Arc::new(FakePlatform::failing("create"));
        assert!(Partition::new(fake.clone(), 1, &[]).is_err());
        assert_eq!(fake.calls(), ["create".to_owned()]);
    }

    #[test]
    fn test_partition_map_flags_follow_read_only() {
        let fake = Arc::new(FakePlatform::default());
        let partition = Partition::new(fake.clone(), 1, &[]).unwrap();
        // SAFETY: the fake maps nothing.
        unsafe { partition.map(0, &region(false)).unwrap() };
        // SAFETY: as above.
        unsafe { partition.map(1, &region(true)).unwrap() };
        partition.unmap(1, &region(true)).unwrap();
        let calls = fake.calls();
        assert!(
            calls.contains(&"map 7 0x70000000 0x100000 0x200000 7".to_owned()),
            "{calls:?}"
        );
        assert!(
            calls.contains(&"map 7 0x70000000 0x100000 0x200000 5".to_owned()),
            "{calls:?}"
        );
        assert!(
            calls.contains(&"unmap 7 0x100000 0x200000".to_owned()),
            "{calls:?}"
        );
    }

    #[test]
    fn test_partition_map_failure_names_the_slot() {
        let fake = Arc::new(FakePlatform::failing("map"));
        let partition = Partition::new(fake, 1, &[]).unwrap();
        // SAFETY: the fake maps nothing.
        let err = unsafe { partition.map(3, &region(false)) }.unwrap_err();
        assert!(
            matches!(err, Error::SetUserMemoryRegion { slot: 3, .. }),
            "{err:?}"
        );
    }
}
