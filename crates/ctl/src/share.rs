//! `lcow-ctl run --share`: a file share of the VM (`lcow-vmm run --share TAG=PATH`) mounted in
//! the guest and bind-mounted into the container.
//!
//! `TAG:DEST[:OPT,...]` with options `virtiofs` (the default) or `9p` (the share's protocol, as
//! given to lcow-vmm) and `ro`. The agent mounts the share once per VM at
//! `/run/lcow/share/<TAG>` (lcow_protocol::share, shared by every container that names it and
//! unmounted with the last) and the OCI spec binds it at DEST.

use anyhow::{bail, ensure};
use lcow_protocol::agent::Mount;
use lcow_protocol::share::{guest_mount_point, GuestMount, ShareProtocol, MAX_VIRTIOFS_TAG_LEN};
use serde_json::{json, Value};

/// One `--share` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The device's tag.
    pub tag: String,
    /// Where the container sees it.
    pub dest: String,
    /// The protocol.
    pub proto: ShareProtocol,
    /// Read-only in the container.
    pub read_only: bool,
}

/// Parses `TAG:DEST[:OPT,...]`.
pub fn parse(text: &str) -> Result<Share, String> {
    let mut parts = text.splitn(3, ':');
    let tag = parts.next().unwrap_or_default();
    let dest = parts.next().unwrap_or_default();
    let opts = parts.next().unwrap_or_default();
    if tag.is_empty()
        || tag.len() > MAX_VIRTIOFS_TAG_LEN
        || !tag.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
    {
        return Err(format!(
            "share {text:?}: the tag must be 1 to {MAX_VIRTIOFS_TAG_LEN} printable characters without '/'"
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
        proto: ShareProtocol::default(),
        read_only: false,
    };
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => share.read_only = true,
            "rw" => share.read_only = false,
            "9p" => share.proto = ShareProtocol::P9,
            "virtiofs" => share.proto = ShareProtocol::VirtioFs,
            other => {
                return Err(format!(
                    "share {text:?}: unknown option {other:?} (expected ro, rw, 9p or virtiofs)"
                ))
            }
        }
    }
    Ok(share)
}

/// The guest mounts the agent makes for `shares`.
pub fn guest_mounts(shares: &[Share]) -> anyhow::Result<Vec<Mount>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for s in shares {
        if !seen.insert(s.tag.as_str()) {
            bail!("share tag {:?} is given twice", s.tag);
        }
        out.push(GuestMount::for_share(&s.tag, s.proto, guest_mount_point(&s.tag)).to_agent());
    }
    Ok(out)
}

/// Adds the container's bind mounts of `shares` to the OCI spec.
pub fn add_to_spec(spec: &mut Value, shares: &[Share]) -> anyhow::Result<()> {
    let Some(mounts) = spec.get_mut("mounts") else {
        spec["mounts"] = json!([]);
        return add_to_spec(spec, shares);
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
            "source": guest_mount_point(&s.tag),
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
        assert_eq!(s.proto, ShareProtocol::VirtioFs);
        assert!(!s.read_only);
        let s = parse("db:/var/lib/db:9p,ro").unwrap();
        assert_eq!(s.proto, ShareProtocol::P9);
        assert!(s.read_only);
    }

    #[test]
    fn test_parse_rejects_bad_values() {
        assert!(parse(":/mnt").unwrap_err().contains("tag"));
        assert!(parse("t:mnt").unwrap_err().contains("absolute"));
        assert!(parse("t").unwrap_err().contains("absolute"));
        assert!(parse("t:/m:nfs").unwrap_err().contains("unknown option"));
        assert!(parse(&format!("{}:/m", "x".repeat(37))).is_err());
        assert!(parse("a/b:/m").is_err());
    }

    #[test]
    fn test_guest_mounts_and_spec_binds() {
        let shares = vec![
            parse("a:/a:9p").unwrap(),
            parse("b:/b:virtiofs,ro").unwrap(),
        ];
        let m = guest_mounts(&shares).unwrap();
        assert_eq!(m[0].fstype, "9p");
        assert!(m[0].options.contains(&"trans=virtio".to_owned()));
        assert_eq!(m[1].fstype, "virtiofs");
        assert_eq!(m[1].source, "b");
        assert_eq!(m[1].target, "/run/lcow/share/b");
        let mut spec = json!({"mounts": []});
        add_to_spec(&mut spec, &shares).unwrap();
        assert_eq!(spec["mounts"][1]["source"], json!("/run/lcow/share/b"));
        assert_eq!(spec["mounts"][1]["options"][1], json!("ro"));
        assert!(guest_mounts(&[shares[0].clone(), shares[0].clone()]).is_err());
    }
}
