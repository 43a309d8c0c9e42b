//! A container's rootfs from disks, owned here once for the shim and `lcow-ctl`: read-only
//! layer disks (a Windows containerd's `lcow-layer` VHDs, ext4 inside) stacked under an
//! overlay whose upper and work directories live on a writable scratch disk (its
//! `sandbox.vhdx`), all built by the agent from ordinary guest mounts
//! (docs/architecture.md, "Layer disks").
//!
//! Disks are numbered in the order the VM was given them (the launch file's `disks`, or
//! `lcow-vmm run --disk` in order); the guest sees disk `n` as [`disk_device`]`(n)`.

use crate::agent::Mount;

/// Where in the guest a container's layers, scratch and rootfs are mounted:
/// `<root>/<id>/l<N>` (N from the bottom layer up), `<root>/<id>/scratch`, `<root>/<id>/rootfs`.
pub const GUEST_LAYERS_ROOT: &str = "/run/lcow/layers";
/// The most layers one rootfs takes (the agent's limit on guest mounts is 64; two go to the
/// scratch and the overlay).
pub const MAX_LAYERS: usize = 62;

/// The guest block device of disk `index` (virtio-blk, in order): `/dev/vda` … `/dev/vdz`,
/// `/dev/vdaa` …, as Linux names them.
pub fn disk_device(index: usize) -> String {
    let mut name = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        name.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    name.reverse();
    format!("/dev/vd{}", String::from_utf8_lossy(&name))
}

/// Errors of describing a layered rootfs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayersError {
    /// No layer, or more than [`MAX_LAYERS`].
    #[error("a rootfs needs 1 to {MAX_LAYERS} layer disks, not {0}")]
    LayerCount(usize),
    /// A disk is named twice (as two layers, or as a layer and the scratch).
    #[error("disk {0} is named twice in one rootfs")]
    Repeated(usize),
}

/// A rootfs of layer disks (bottom first) under an overlay with its upper layer on a scratch
/// disk; each a disk index of the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayeredRootfs {
    layers: Vec<usize>,
    scratch: usize,
}

impl LayeredRootfs {
    /// Layers `layers` (disk indices, the bottom, base layer first) and the scratch disk.
    pub fn new(layers: Vec<usize>, scratch: usize) -> Result<Self, LayersError> {
        if layers.is_empty() || layers.len() > MAX_LAYERS {
            return Err(LayersError::LayerCount(layers.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for &d in layers.iter().chain([&scratch]) {
            if !seen.insert(d) {
                return Err(LayersError::Repeated(d));
            }
        }
        Ok(Self { layers, scratch })
    }

    /// The guest path of container `id`'s rootfs (what `CreateContainer`'s `rootfs` names).
    pub fn rootfs(id: &str) -> String {
        format!("{GUEST_LAYERS_ROOT}/{id}/rootfs")
    }

    /// The agent's guest mounts for container `id`, in order: each layer read-only, the
    /// scratch read-write, then the overlay (its upper and work directories on the scratch,
    /// which the agent creates).
    pub fn guest_mounts(&self, id: &str) -> Vec<Mount> {
        let dir = format!("{GUEST_LAYERS_ROOT}/{id}");
        let ext4 = |disk: usize, target: String, options: &[&str]| Mount {
            source: disk_device(disk),
            target,
            fstype: "ext4".to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            ..Default::default()
        };
        let mut out: Vec<Mount> = self
            .layers
            .iter()
            .enumerate()
            .map(|(n, &disk)| ext4(disk, format!("{dir}/l{n}"), &["ro"]))
            .collect();
        out.push(ext4(self.scratch, format!("{dir}/scratch"), &[]));
        // overlayfs lists lower directories from the top down.
        let lower: Vec<String> = (0..self.layers.len())
            .rev()
            .map(|n| format!("{dir}/l{n}"))
            .collect();
        out.push(Mount {
            source: "overlay".to_owned(),
            target: Self::rootfs(id),
            fstype: "overlay".to_owned(),
            options: vec![
                format!("lowerdir={}", lower.join(":")),
                format!("upperdir={dir}/scratch/upper"),
                format!("workdir={dir}/scratch/work"),
            ],
            ..Default::default()
        });
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_disk_devices_are_named_as_linux_does() {
        assert_eq!(disk_device(0), "/dev/vda");
        assert_eq!(disk_device(25), "/dev/vdz");
        assert_eq!(disk_device(26), "/dev/vdaa");
        assert_eq!(disk_device(27), "/dev/vdab");
        assert_eq!(disk_device(26 + 26 * 26), "/dev/vdaaa");
    }

    #[test]
    fn test_guest_mounts_stack_layers_top_down_over_the_scratch() {
        let r = LayeredRootfs::new(vec![0, 1], 2).unwrap();
        let m = r.guest_mounts("c1");
        let d = "/run/lcow/layers/c1";
        assert_eq!(m.len(), 4);
        assert_eq!(
            (
                m[0].source.as_str(),
                m[0].target.as_str(),
                m[0].options.as_slice()
            ),
            ("/dev/vda", &*format!("{d}/l0"), &["ro".to_owned()][..])
        );
        assert_eq!(m[1].source, "/dev/vdb");
        assert_eq!((m[2].source.as_str(), m[2].options.len()), ("/dev/vdc", 0));
        assert_eq!(m[3].target, LayeredRootfs::rootfs("c1"));
        assert_eq!(
            m[3].options,
            [
                format!("lowerdir={d}/l1:{d}/l0"),
                format!("upperdir={d}/scratch/upper"),
                format!("workdir={d}/scratch/work"),
            ]
        );
    }

    #[test]
    fn test_bad_layer_sets_are_refused() {
        assert_eq!(
            LayeredRootfs::new(vec![], 0).unwrap_err(),
            LayersError::LayerCount(0)
        );
        assert_eq!(
            LayeredRootfs::new(vec![0, 1], 1).unwrap_err(),
            LayersError::Repeated(1)
        );
        assert!(LayeredRootfs::new((0..63).collect(), 63).is_err());
        assert!(LayeredRootfs::new((0..62).collect(), 62).is_ok());
    }
}
