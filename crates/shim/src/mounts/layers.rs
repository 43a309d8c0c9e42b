//! containerd's `lcow-layer` rootfs (a Windows containerd's `windows-lcow` snapshotter): one
//! mount whose source is the scratch directory (holding `sandbox.vhdx`) and whose option
//! `parentLayerPaths=[...]` (JSON, the top layer first) names the layer directories (each
//! holding `layer.vhd`). The VM gets them as disks, the layers read-only from the base up and
//! the scratch last, and the agent stacks them (`lcow_protocol::layers`).

use std::path::{Path, PathBuf};

use containerd_shim_protos::api::Mount;
use lcow_protocol::layers::{LayeredRootfs, MAX_LAYERS};
use lcow_protocol::vm::DiskSpec;

/// The mount type of a layered rootfs.
pub const LCOW_LAYER: &str = "lcow-layer";
/// The option naming the parent layers.
const PARENT_LAYERS: &str = "parentLayerPaths=";
/// A layer directory's disk.
const LAYER_VHD: &str = "layer.vhd";
/// The scratch directory's disk.
const SCRATCH_VHDX: &str = "sandbox.vhdx";

/// Errors of reading a layered rootfs.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// More than one mount with an `lcow-layer` among them.
    #[error("an lcow-layer rootfs is exactly one mount, not {0}")]
    MountCount(usize),
    /// The parent layers option is not a JSON list of strings.
    #[error("the lcow-layer mount's parentLayerPaths is not a JSON list of paths: {0}")]
    Parents(String),
    /// No parent layer, or too many.
    #[error("an lcow-layer rootfs needs 1 to {MAX_LAYERS} parent layers, not {0}")]
    LayerCount(usize),
    /// A disk file is missing.
    #[error("the lcow-layer disk {} is missing", .0.display())]
    MissingDisk(PathBuf),
}

/// The disks of a layered rootfs, in the order the VM gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDisks {
    /// Every layer (the base first, read-only), then the scratch (read-write).
    pub disks: Vec<DiskSpec>,
    /// How the guest stacks them when the VM's disks are these, from disk 0.
    pub rootfs: LayeredRootfs,
}

impl LayerDisks {
    /// The layered rootfs among containerd's rootfs `mounts`, if it is one.
    pub fn parse(mounts: &[Mount]) -> Result<Option<Self>, LayerError> {
        if !mounts.iter().any(|m| m.type_ == LCOW_LAYER) {
            return Ok(None);
        }
        let [m] = mounts else {
            return Err(LayerError::MountCount(mounts.len()));
        };
        let mut parents: Vec<String> = Vec::new();
        for o in &m.options {
            if let Some(json) = o.strip_prefix(PARENT_LAYERS) {
                parents =
                    serde_json::from_str(json).map_err(|e| LayerError::Parents(e.to_string()))?;
            }
        }
        if parents.is_empty() || parents.len() > MAX_LAYERS {
            return Err(LayerError::LayerCount(parents.len()));
        }
        let existing = |path: PathBuf| {
            if path.is_file() {
                Ok(path)
            } else {
                Err(LayerError::MissingDisk(path))
            }
        };
        let mut disks = Vec::with_capacity(parents.len() + 1);
        // containerd lists the top layer first; the VM gets the base first.
        for dir in parents.iter().rev() {
            disks.push(DiskSpec {
                path: existing(Path::new(dir).join(LAYER_VHD))?,
                read_only: true,
            });
        }
        disks.push(DiskSpec {
            path: existing(Path::new(&m.source).join(SCRATCH_VHDX))?,
            read_only: false,
        });
        let scratch = disks.len() - 1;
        let rootfs = LayeredRootfs::new((0..scratch).collect(), scratch)
            .map_err(|_| LayerError::LayerCount(scratch))?;
        Ok(Some(Self { disks, rootfs }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn layer_dirs(root: &Path, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|n| {
                let d = root.join(n);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(LAYER_VHD), "").unwrap();
                d.display().to_string()
            })
            .collect()
    }

    fn lcow_mount(scratch: &Path, parents: &[String]) -> Mount {
        Mount {
            type_: LCOW_LAYER.to_owned(),
            source: scratch.display().to_string(),
            options: vec![
                "rw".to_owned(),
                format!("{PARENT_LAYERS}{}", serde_json::to_string(parents).unwrap()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn test_layers_go_to_the_vm_base_first_then_the_scratch() {
        let t = tempfile::tempdir().unwrap();
        // containerd's order: the top layer first.
        let parents = layer_dirs(t.path(), &["top", "middle", "base"]);
        let scratch = t.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        std::fs::write(scratch.join(SCRATCH_VHDX), "").unwrap();

        let got = LayerDisks::parse(&[lcow_mount(&scratch, &parents)])
            .unwrap()
            .unwrap();

        let names: Vec<_> = got
            .disks
            .iter()
            .map(|d| {
                (
                    d.path.strip_prefix(t.path()).unwrap().to_owned(),
                    d.read_only,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (Path::new("base").join(LAYER_VHD), true),
                (Path::new("middle").join(LAYER_VHD), true),
                (Path::new("top").join(LAYER_VHD), true),
                (Path::new("scratch").join(SCRATCH_VHDX), false),
            ]
        );
        assert_eq!(got.rootfs, LayeredRootfs::new(vec![0, 1, 2], 3).unwrap());
    }

    #[test]
    fn test_other_rootfs_is_not_layers_and_bad_layers_are_named() {
        assert!(LayerDisks::parse(&[]).unwrap().is_none());
        let overlay = Mount {
            type_: "overlay".to_owned(),
            ..Default::default()
        };
        assert!(LayerDisks::parse(std::slice::from_ref(&overlay))
            .unwrap()
            .is_none());
        let t = tempfile::tempdir().unwrap();
        let parents = layer_dirs(t.path(), &["base"]);
        let m = lcow_mount(t.path(), &parents);
        // The scratch's sandbox.vhdx is missing.
        let e = LayerDisks::parse(std::slice::from_ref(&m)).unwrap_err();
        assert!(
            matches!(&e, LayerError::MissingDisk(p) if p.ends_with(SCRATCH_VHDX)),
            "{e}"
        );
        assert!(matches!(
            LayerDisks::parse(&[m.clone(), overlay]).unwrap_err(),
            LayerError::MountCount(2)
        ));
        let mut bad = m.clone();
        bad.options = vec![format!("{PARENT_LAYERS}not-json")];
        assert!(matches!(
            LayerDisks::parse(&[bad]).unwrap_err(),
            LayerError::Parents(_)
        ));
        let mut none = m;
        none.options.clear();
        assert!(matches!(
            LayerDisks::parse(&[none]).unwrap_err(),
            LayerError::LayerCount(0)
        ));
    }
}
