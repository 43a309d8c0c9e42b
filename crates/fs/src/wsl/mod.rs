//! WSL's on-disk scheme for Linux files on NTFS (OpenVMM's `lxutil`, a port of WSL's LxUtil),
//! as host-independent codecs: the Linux mapped backend shares [`meta`] with the NTFS backend,
//! and every codec is tested on every host against known answers.

pub mod ea;
pub mod meta;
