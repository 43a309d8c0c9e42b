//! WSL's on-disk scheme for Linux files on NTFS (OpenVMM's `lxutil`, a port of WSL's LxUtil),
//! as host-independent codecs, each tested on every host against known answers: [`ea`] (EA
//! chains), [`meta`] (`$LXUID`/`$LXGID`/`$LXMOD`/`$LXDEV`, shared with the Linux mapped
//! backend's `user.LX*` xattrs), [`xattr`] (user xattrs as `LX.` EAs), [`reparse`] (LX
//! symlinks and special files, NT links read as symlinks), [`name`] (DrvFs name escaping) and
//! [`status`] (NTSTATUS to Linux errno).

pub mod ea;
pub mod meta;
pub mod name;
pub mod reparse;
pub mod status;
pub mod xattr;
