//! `lcow-ctl run --share`: a file share of the VM (`lcow-vmm run --share TAG=PATH`) mounted in
//! the guest and bind-mounted into the container.
//!
//! `TAG:DEST[:OPT,...]` with options `9p` (the default) or `virtiofs` (the share's protocol, as
//! given to lcow-vmm) and `ro`. The agent mounts the share at `/run/lcow/shares/<id>/<TAG>` (a
//! guest mount that goes away with the container) and the OCI spec binds it at DEST.

use anyhow::{bail, ensure};
use lcow_protocol::agent::Mount;
use serde_json::{json, Value};

/// The 9P message size asked for: the largest the guest's virtio transport carries (its ring
/// holds 128 descriptors of one page, less the headers).
const P9_MSIZE: u32 = 512_000;

/// The protocol a share speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// virtio-9p, mounted as `9p` with `trans=virtio,version=9p2000.L`.
    P9,
    /// virtio-fs, mounted as `virtiofs`.
    VirtioFs,
}

/// One `--share` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The device's tag.
    pub tag: String,
    /// Where the container sees it.
    pub dest: String,
    /// The protocol.
    pub proto: Proto,
    /// Read-only in the container.
    pub read_only: bool,
}

/// Parses `TAG:DEST[:OPT,...]`.
pub fn parse(text: &str) -> Result<Share, String> {
    let mut parts = text.splitn(3, ':');
    let tag = parts.next().unwrap_or_default();
    let dest = parts.next().unwrap_or_default();
    let opts = parts.next().unwrap_or_default();
    if tag.is_empty() || tag.len() > 36 || !tag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "share {text:?}: the tag must be 1 to 36 printable characters"
        ));
    }
    if !dest.starts_with('/') || dest.contains('\0') {
        return Err(format!(
            "share {text:?}: the destination must be an absolute path in the container"
        ));
    }
    let mut share = Share {
        tag: tag.to_owned(),
        dest: dest.to_owned(),
        proto: Proto::P9,
        read_only: false,
    };
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => share.read_only = true,
            "rw" => share.read_only = false,
            "9p" => share.proto = Proto::P9,
            "virtiofs" => share.proto = Proto::VirtioFs,
            other => {
                return Err(format!(
                    "share {text:?}: unknown option {other:?} (expected ro, rw, 9p or virtiofs)"
                ))
            }
        }
    }
    Ok(share)
}

fn guest_path(container: &str, share: &Share) -> String {
    format!("/run/lcow/shares/{container}/{}", share.tag)
}

/// The guest mounts the agent makes for `shares`.
pub fn guest_mounts(container: &str, shares: &[Share]) -> anyhow::Result<Vec<Mount>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for s in shares {
        if !seen.insert(s.tag.as_str()) {
            bail!("share tag {:?} is given twice", s.tag);
        }
        let (fstype, options) = match s.proto {
            Proto::P9 => (
                "9p",
                vec![
                    "trans=virtio".to_owned(),
                    "version=9p2000.L".to_owned(),
                    format!("msize={P9_MSIZE}"),
                    // mmap support (SQLite's WAL index lives in a shared mapping).
                    "cache=mmap".to_owned(),
                ],
            ),
            Proto::VirtioFs => ("virtiofs", Vec::new()),
        };
        out.push(Mount {
            source: s.tag.clone(),
            target: guest_path(container, s),
            fstype: fstype.to_owned(),
            options,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Adds the container's bind mounts of `shares` to the OCI spec.
pub fn add_to_spec(spec: &mut Value, container: &str, shares: &[Share]) -> anyhow::Result<()> {
    let Some(mounts) = spec.get_mut("mounts") else {
        spec["mounts"] = json!([]);
        return add_to_spec(spec, container, shares);
    };
    let Some(mounts) = mounts.as_array_mut() else {
        bail!("the spec's mounts are not a list");
    };
    for s in shares {
        ensure!(
            !mounts.iter().any(|m| m["destination"] == json!(s.dest)),
            "share destination {} clashes with a default mount",
            s.dest
        );
        mounts.push(json!({
            "destination": s.dest,
            "type": "bind",
            "source": guest_path(container, s),
            "options": ["rbind", if s.read_only { "ro" } else { "rw" }],
        }));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_defaults_and_options() {
        let s = parse("data:/mnt").unwrap();
        assert_eq!(s.tag, "data");
        assert_eq!(s.dest, "/mnt");
        assert_eq!(s.proto, Proto::P9);
        assert!(!s.read_only);
        let s = parse("db:/var/lib/db:virtiofs,ro").unwrap();
        assert_eq!(s.proto, Proto::VirtioFs);
        assert!(s.read_only);
    }

    #[test]
    fn test_parse_rejects_bad_values() {
        assert!(parse(":/mnt").unwrap_err().contains("tag"));
        assert!(parse("t:mnt").unwrap_err().contains("absolute"));
        assert!(parse("t").unwrap_err().contains("absolute"));
        assert!(parse("t:/m:nfs").unwrap_err().contains("unknown option"));
        assert!(parse(&format!("{}:/m", "x".repeat(37))).is_err());
    }

    #[test]
    fn test_guest_mounts_and_spec_binds() {
        let shares = vec![parse("a:/a").unwrap(), parse("b:/b:virtiofs,ro").unwrap()];
        let m = guest_mounts("c1", &shares).unwrap();
        assert_eq!(m[0].fstype, "9p");
        assert!(m[0].options.contains(&"trans=virtio".to_owned()));
        assert_eq!(m[1].fstype, "virtiofs");
        assert_eq!(m[1].source, "b");
        assert_eq!(m[1].target, "/run/lcow/shares/c1/b");
        let mut spec = json!({"mounts": []});
        add_to_spec(&mut spec, "c1", &shares).unwrap();
        assert_eq!(spec["mounts"][1]["source"], json!("/run/lcow/shares/c1/b"));
        assert_eq!(spec["mounts"][1]["options"][1], json!("ro"));
        assert!(guest_mounts("c1", &[shares[0].clone(), shares[0].clone()]).is_err());
    }
}
