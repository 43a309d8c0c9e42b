//! The runtime options containerd passes with Create (and on `start`'s stdin): for runtimes
//! other than runc, containerd 1.6's CRI and ctr send `runtimeoptions.v1.Options`
//! (`type_url` = 1, `config_path` = 2), whose `ConfigPath` names our configuration file.

use std::path::PathBuf;

use protobuf::well_known_types::any::Any;
use protobuf::CodedInputStream;

/// The largest options message decoded.
const MAX_OPTIONS: usize = 64 * 1024;

/// `config_path` of a `runtimeoptions.v1.Options`, if `any` is one and sets it.
pub fn config_path(any: &Any) -> Option<PathBuf> {
    if !any.type_url.ends_with("runtimeoptions.v1.Options") || any.value.len() > MAX_OPTIONS {
        if !any.type_url.is_empty() {
            tracing::warn!(type_url = %any.type_url, "ignoring runtime options of an unknown type");
        }
        return None;
    }
    let mut input = CodedInputStream::from_bytes(&any.value);
    let mut found = None;
    loop {
        let tag = match input.read_raw_tag_or_eof() {
            Ok(Some(tag)) => tag,
            Ok(None) => break,
            Err(_) => return None,
        };
        let (field, wire) = (tag >> 3, tag & 7);
        if field == 2 && wire == 2 {
            found = Some(input.read_string().ok()?);
        } else {
            let wire = protobuf::rt::WireType::new(wire)?;
            input.skip_field(wire).ok()?;
        }
    }
    found.filter(|p| !p.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn any(type_url: &str, value: Vec<u8>) -> Any {
        Any {
            type_url: type_url.to_owned(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn test_config_path_decoded() {
        // type_url = "x" (field 1), config_path = "/etc/l.toml" (field 2)
        let mut v = vec![0x0a, 1, b'x', 0x12, 11];
        v.extend_from_slice(b"/etc/l.toml");
        let p = config_path(&any("runtimeoptions.v1.Options", v)).unwrap();
        assert_eq!(p, PathBuf::from("/etc/l.toml"));
    }

    #[test]
    fn test_other_types_and_garbage_ignored() {
        assert!(config_path(&any("containerd.runc.v1.Options", vec![0x12, 1, b'a'])).is_none());
        assert!(config_path(&any("runtimeoptions.v1.Options", vec![0x12, 200, b'a'])).is_none());
        assert!(config_path(&any("runtimeoptions.v1.Options", vec![])).is_none());
    }
}
