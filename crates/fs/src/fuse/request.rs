//! FUSE requests: [`decode_request`] turns one whole request (header, arguments, extensions)
//! into a [`Request`], and [`encode_request`] does the reverse for tests and clients.
//!
//! A request is `fuse_in_header`, then the opcode's fixed argument struct, then its names
//! (NUL-terminated) or data, then `total_extlen * 8` bytes of extensions. Decoding insists
//! that the header's length is the buffer's length and that the arguments are consumed
//! exactly; names have exactly one NUL, their last byte, are non-empty and bounded
//! ([`MAX_NAME_LEN`], [`MAX_SYMLINK_LEN`], [`MAX_XATTR_NAME_LEN`]). Which bytes a name may
//! contain beyond that (`/`, `.`, `..`) is the server's decision. Names and data borrow from
//! the request buffer.

use super::abi::*;
use super::consts::opcode::*;
use super::wire::{put_cstr, FuseWireError, Reader, Wire};

/// What was negotiated at INIT that changes how requests are laid out or bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Largest WRITE accepted; capped at [`MAX_WRITE`].
    pub max_write: u32,
    /// FUSE_SETXATTR_EXT was agreed: SETXATTR carries the 16-byte `fuse_setxattr_in`.
    pub setxattr_ext: bool,
}

impl Default for Negotiated {
    fn default() -> Self {
        Self {
            max_write: MAX_WRITE,
            setxattr_ext: false,
        }
    }
}

impl Negotiated {
    fn write_limit(&self) -> u32 {
        self.max_write.min(MAX_WRITE)
    }
}

/// One decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header as sent.
    pub header: InHeader,
    /// The operation and its arguments.
    pub op: Operation<'a>,
    /// Request extensions (`total_extlen * 8` bytes at the end), undecoded; empty unless
    /// FUSE_SECURITY_CTX or a later extension was negotiated.
    pub extensions: &'a [u8],
}

/// A request's operation with its decoded arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation<'a> {
    /// FUSE_INIT.
    Init(InitIn),
    /// FUSE_LOOKUP of `name` in the header's node.
    Lookup {
        /// Name to look up.
        name: &'a [u8],
    },
    /// FUSE_FORGET of the header's node.
    Forget(ForgetIn),
    /// FUSE_BATCH_FORGET.
    BatchForget(Vec<ForgetOne>),
    /// FUSE_GETATTR.
    Getattr(GetattrIn),
    /// FUSE_SETATTR.
    Setattr(SetattrIn),
    /// FUSE_READLINK.
    Readlink,
    /// FUSE_SYMLINK: `name` in the header's node pointing at `target`.
    Symlink {
        /// Name of the new link.
        name: &'a [u8],
        /// Target of the link.
        target: &'a [u8],
    },
    /// FUSE_MKNOD.
    Mknod {
        /// Mode, rdev and umask.
        arg: MknodIn,
        /// Name of the new node.
        name: &'a [u8],
    },
    /// FUSE_MKDIR.
    Mkdir {
        /// Mode and umask.
        arg: MkdirIn,
        /// Name of the new directory.
        name: &'a [u8],
    },
    /// FUSE_UNLINK.
    Unlink {
        /// Name to remove.
        name: &'a [u8],
    },
    /// FUSE_RMDIR.
    Rmdir {
        /// Name to remove.
        name: &'a [u8],
    },
    /// FUSE_RENAME of `old` in the header's node to `new` in `arg.newdir`.
    Rename {
        /// The new parent.
        arg: RenameIn,
        /// Old name.
        old: &'a [u8],
        /// New name.
        new: &'a [u8],
    },
    /// FUSE_RENAME2.
    Rename2 {
        /// The new parent and flags.
        arg: Rename2In,
        /// Old name.
        old: &'a [u8],
        /// New name.
        new: &'a [u8],
    },
    /// FUSE_LINK: a link to `arg.oldnodeid` named `name` in the header's node.
    Link {
        /// The node to link to.
        arg: LinkIn,
        /// Name of the new link.
        name: &'a [u8],
    },
    /// FUSE_OPEN.
    Open(OpenIn),
    /// FUSE_READ.
    Read(ReadIn),
    /// FUSE_WRITE.
    Write {
        /// Handle, offset, size (equal to `data.len()`) and flags.
        arg: WriteIn,
        /// The data.
        data: &'a [u8],
    },
    /// FUSE_STATFS.
    Statfs,
    /// FUSE_RELEASE.
    Release(ReleaseIn),
    /// FUSE_FSYNC.
    Fsync(FsyncIn),
    /// FUSE_SETXATTR.
    Setxattr {
        /// Size (equal to `value.len()`) and flags.
        arg: SetxattrIn,
        /// Attribute name.
        name: &'a [u8],
        /// Attribute value.
        value: &'a [u8],
    },
    /// FUSE_GETXATTR.
    Getxattr {
        /// Buffer size.
        arg: GetxattrIn,
        /// Attribute name.
        name: &'a [u8],
    },
    /// FUSE_LISTXATTR.
    Listxattr(GetxattrIn),
    /// FUSE_REMOVEXATTR.
    Removexattr {
        /// Attribute name.
        name: &'a [u8],
    },
    /// FUSE_FLUSH.
    Flush(FlushIn),
    /// FUSE_OPENDIR.
    Opendir(OpenIn),
    /// FUSE_READDIR.
    Readdir(ReadIn),
    /// FUSE_READDIRPLUS.
    Readdirplus(ReadIn),
    /// FUSE_RELEASEDIR.
    Releasedir(ReleaseIn),
    /// FUSE_FSYNCDIR.
    Fsyncdir(FsyncIn),
    /// FUSE_GETLK.
    Getlk(LkIn),
    /// FUSE_SETLK.
    Setlk(LkIn),
    /// FUSE_SETLKW.
    Setlkw(LkIn),
    /// FUSE_ACCESS.
    Access(AccessIn),
    /// FUSE_CREATE.
    Create {
        /// Flags, mode and umask.
        arg: CreateIn,
        /// Name of the new file.
        name: &'a [u8],
    },
    /// FUSE_INTERRUPT.
    Interrupt(InterruptIn),
    /// FUSE_DESTROY.
    Destroy,
    /// FUSE_FALLOCATE.
    Fallocate(FallocateIn),
    /// FUSE_LSEEK.
    Lseek(LseekIn),
    /// FUSE_COPY_FILE_RANGE.
    CopyFileRange(CopyFileRangeIn),
    /// FUSE_SYNCFS.
    Syncfs(SyncfsIn),
    /// FUSE_TMPFILE: as CREATE; the kernel sends the placeholder name `/`.
    Tmpfile {
        /// Flags, mode and umask.
        arg: CreateIn,
        /// The dentry's name.
        name: &'a [u8],
    },
    /// An opcode this crate does not decode (BMAP, IOCTL, POLL, SETUPMAPPING, ...): the
    /// server answers ENOSYS. Its arguments are not looked at.
    Unknown(u32),
}

impl Operation<'_> {
    /// The opcode of this operation.
    pub fn opcode(&self) -> u32 {
        match self {
            Self::Init(_) => FUSE_INIT,
            Self::Lookup { .. } => FUSE_LOOKUP,
            Self::Forget(_) => FUSE_FORGET,
            Self::BatchForget(_) => FUSE_BATCH_FORGET,
            Self::Getattr(_) => FUSE_GETATTR,
            Self::Setattr(_) => FUSE_SETATTR,
            Self::Readlink => FUSE_READLINK,
            Self::Symlink { .. } => FUSE_SYMLINK,
            Self::Mknod { .. } => FUSE_MKNOD,
            Self::Mkdir { .. } => FUSE_MKDIR,
            Self::Unlink { .. } => FUSE_UNLINK,
            Self::Rmdir { .. } => FUSE_RMDIR,
            Self::Rename { .. } => FUSE_RENAME,
            Self::Rename2 { .. } => FUSE_RENAME2,
            Self::Link { .. } => FUSE_LINK,
            Self::Open(_) => FUSE_OPEN,
            Self::Read(_) => FUSE_READ,
            Self::Write { .. } => FUSE_WRITE,
            Self::Statfs => FUSE_STATFS,
            Self::Release(_) => FUSE_RELEASE,
            Self::Fsync(_) => FUSE_FSYNC,
            Self::Setxattr { .. } => FUSE_SETXATTR,
            Self::Getxattr { .. } => FUSE_GETXATTR,
            Self::Listxattr(_) => FUSE_LISTXATTR,
            Self::Removexattr { .. } => FUSE_REMOVEXATTR,
            Self::Flush(_) => FUSE_FLUSH,
            Self::Opendir(_) => FUSE_OPENDIR,
            Self::Readdir(_) => FUSE_READDIR,
            Self::Readdirplus(_) => FUSE_READDIRPLUS,
            Self::Releasedir(_) => FUSE_RELEASEDIR,
            Self::Fsyncdir(_) => FUSE_FSYNCDIR,
            Self::Getlk(_) => FUSE_GETLK,
            Self::Setlk(_) => FUSE_SETLK,
            Self::Setlkw(_) => FUSE_SETLKW,
            Self::Access(_) => FUSE_ACCESS,
            Self::Create { .. } => FUSE_CREATE,
            Self::Interrupt(_) => FUSE_INTERRUPT,
            Self::Destroy => FUSE_DESTROY,
            Self::Fallocate(_) => FUSE_FALLOCATE,
            Self::Lseek(_) => FUSE_LSEEK,
            Self::CopyFileRange(_) => FUSE_COPY_FILE_RANGE,
            Self::Syncfs(_) => FUSE_SYNCFS,
            Self::Tmpfile { .. } => FUSE_TMPFILE,
            Self::Unknown(op) => *op,
        }
    }

    /// Whether the kernel expects no reply (FORGET, BATCH_FORGET; INTERRUPT is answered only
    /// by the interrupted request).
    pub fn expects_reply(&self) -> bool {
        !matches!(
            self,
            Self::Forget(_) | Self::BatchForget(_) | Self::Interrupt(_)
        )
    }
}

/// Decodes one request, `buf` being exactly the request, with the default [`Negotiated`]
/// limits (max_write 1 MiB, the 8-byte `fuse_setxattr_in`).
pub fn decode_request(buf: &[u8]) -> Result<Request<'_>, FuseWireError> {
    decode_request_with(buf, &Negotiated::default())
}

/// Decodes one request under what INIT negotiated.
pub fn decode_request_with<'a>(
    buf: &'a [u8],
    neg: &Negotiated,
) -> Result<Request<'a>, FuseWireError> {
    let mut r = Reader::new(buf);
    let header = InHeader::decode(&mut r)?;
    if usize::try_from(header.len).ok() != Some(buf.len()) {
        return Err(FuseWireError::LengthMismatch {
            declared: header.len,
            actual: buf.len(),
        });
    }
    let extlen = usize::from(header.total_extlen) * 8;
    let body_len = r
        .remaining()
        .checked_sub(extlen)
        .ok_or(FuseWireError::ExtensionsOverrun {
            extlen,
            body: r.remaining(),
        })?;
    let body = r.take(body_len)?;
    let extensions = r.rest();
    let op = decode_op(header.opcode, body, neg)?;
    Ok(Request {
        header,
        op,
        extensions,
    })
}

fn decode_op<'a>(
    opcode: u32,
    body: &'a [u8],
    neg: &Negotiated,
) -> Result<Operation<'a>, FuseWireError> {
    use Operation as O;
    let r = &mut Reader::new(body);
    let op = match opcode {
        FUSE_INIT => O::Init(decode_init(r)?),
        FUSE_LOOKUP => O::Lookup {
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_FORGET => O::Forget(ForgetIn::decode(r)?),
        FUSE_BATCH_FORGET => O::BatchForget(decode_batch_forget(r)?),
        FUSE_GETATTR => O::Getattr(GetattrIn::decode(r)?),
        FUSE_SETATTR => O::Setattr(SetattrIn::decode(r)?),
        FUSE_READLINK => O::Readlink,
        FUSE_SYMLINK => O::Symlink {
            name: r.cstr(MAX_NAME_LEN)?,
            target: r.last_cstr(MAX_SYMLINK_LEN)?,
        },
        FUSE_MKNOD => O::Mknod {
            arg: MknodIn::decode(r)?,
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_MKDIR => O::Mkdir {
            arg: MkdirIn::decode(r)?,
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_UNLINK => O::Unlink {
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_RMDIR => O::Rmdir {
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_RENAME => O::Rename {
            arg: RenameIn::decode(r)?,
            old: r.cstr(MAX_NAME_LEN)?,
            new: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_RENAME2 => O::Rename2 {
            arg: Rename2In::decode(r)?,
            old: r.cstr(MAX_NAME_LEN)?,
            new: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_LINK => O::Link {
            arg: LinkIn::decode(r)?,
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_OPEN => O::Open(OpenIn::decode(r)?),
        FUSE_READ => O::Read(ReadIn::decode(r)?),
        FUSE_WRITE => decode_write(r, neg)?,
        FUSE_STATFS => O::Statfs,
        FUSE_RELEASE => O::Release(ReleaseIn::decode(r)?),
        FUSE_FSYNC => O::Fsync(FsyncIn::decode(r)?),
        FUSE_SETXATTR => decode_setxattr(r, neg)?,
        FUSE_GETXATTR => O::Getxattr {
            arg: GetxattrIn::decode(r)?,
            name: r.last_cstr(MAX_XATTR_NAME_LEN)?,
        },
        FUSE_LISTXATTR => O::Listxattr(GetxattrIn::decode(r)?),
        FUSE_REMOVEXATTR => O::Removexattr {
            name: r.last_cstr(MAX_XATTR_NAME_LEN)?,
        },
        FUSE_FLUSH => O::Flush(FlushIn::decode(r)?),
        FUSE_OPENDIR => O::Opendir(OpenIn::decode(r)?),
        FUSE_READDIR => O::Readdir(ReadIn::decode(r)?),
        FUSE_READDIRPLUS => O::Readdirplus(ReadIn::decode(r)?),
        FUSE_RELEASEDIR => O::Releasedir(ReleaseIn::decode(r)?),
        FUSE_FSYNCDIR => O::Fsyncdir(FsyncIn::decode(r)?),
        FUSE_GETLK => O::Getlk(LkIn::decode(r)?),
        FUSE_SETLK => O::Setlk(LkIn::decode(r)?),
        FUSE_SETLKW => O::Setlkw(LkIn::decode(r)?),
        FUSE_ACCESS => O::Access(AccessIn::decode(r)?),
        FUSE_CREATE => O::Create {
            arg: CreateIn::decode(r)?,
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        FUSE_INTERRUPT => O::Interrupt(InterruptIn::decode(r)?),
        FUSE_DESTROY => O::Destroy,
        FUSE_FALLOCATE => O::Fallocate(FallocateIn::decode(r)?),
        FUSE_LSEEK => O::Lseek(LseekIn::decode(r)?),
        FUSE_COPY_FILE_RANGE => O::CopyFileRange(CopyFileRangeIn::decode(r)?),
        FUSE_SYNCFS => O::Syncfs(SyncfsIn::decode(r)?),
        FUSE_TMPFILE => O::Tmpfile {
            arg: CreateIn::decode(r)?,
            name: r.last_cstr(MAX_NAME_LEN)?,
        },
        other => {
            r.rest();
            O::Unknown(other)
        }
    };
    r.finish()?;
    Ok(op)
}

/// The 64-byte `fuse_init_in` of 7.36+, or the 16-byte one of older kernels.
fn decode_init(r: &mut Reader<'_>) -> Result<InitIn, FuseWireError> {
    match r.remaining() {
        n if n == InitIn::SIZE => InitIn::decode(r),
        16 => Ok(InitIn {
            major: u32::decode(r)?,
            minor: u32::decode(r)?,
            max_readahead: u32::decode(r)?,
            flags: u32::decode(r)?,
            ..InitIn::default()
        }),
        n => Err(FuseWireError::InitBodySize(n)),
    }
}

fn decode_batch_forget(r: &mut Reader<'_>) -> Result<Vec<ForgetOne>, FuseWireError> {
    let head = BatchForgetIn::decode(r)?;
    let remaining = r.remaining();
    let mismatch = FuseWireError::ForgetCountMismatch {
        count: head.count,
        remaining,
    };
    // The count must describe exactly the bytes that follow; checked before allocating.
    let bytes = usize::try_from(head.count)
        .ok()
        .and_then(|c| c.checked_mul(ForgetOne::SIZE))
        .ok_or(mismatch.clone())?;
    if bytes != remaining {
        return Err(mismatch);
    }
    let mut forgets = Vec::with_capacity(remaining / ForgetOne::SIZE);
    while r.remaining() > 0 {
        forgets.push(ForgetOne::decode(r)?);
    }
    Ok(forgets)
}

fn decode_write<'a>(r: &mut Reader<'a>, neg: &Negotiated) -> Result<Operation<'a>, FuseWireError> {
    let arg = WriteIn::decode(r)?;
    let data = r.rest();
    check_write(&arg, data, neg)?;
    Ok(Operation::Write { arg, data })
}

fn check_write(arg: &WriteIn, data: &[u8], neg: &Negotiated) -> Result<(), FuseWireError> {
    if usize::try_from(arg.size).ok() != Some(data.len()) {
        return Err(FuseWireError::WriteSizeMismatch {
            declared: arg.size,
            actual: data.len(),
        });
    }
    let max = neg.write_limit();
    if arg.size > max {
        return Err(FuseWireError::WriteTooLarge {
            size: data.len(),
            max,
        });
    }
    Ok(())
}

fn decode_setxattr<'a>(
    r: &mut Reader<'a>,
    neg: &Negotiated,
) -> Result<Operation<'a>, FuseWireError> {
    let arg = if neg.setxattr_ext {
        SetxattrIn::decode(r)?
    } else {
        SetxattrIn {
            size: u32::decode(r)?,
            flags: u32::decode(r)?,
            ..SetxattrIn::default()
        }
    };
    let name = r.cstr(MAX_XATTR_NAME_LEN)?;
    let value = r.rest();
    check_xattr_value(&arg, value)?;
    Ok(Operation::Setxattr { arg, name, value })
}

fn check_xattr_value(arg: &SetxattrIn, value: &[u8]) -> Result<(), FuseWireError> {
    if usize::try_from(arg.size).ok() != Some(value.len()) {
        return Err(FuseWireError::XattrSizeMismatch {
            declared: arg.size,
            actual: value.len(),
        });
    }
    if value.len() > MAX_XATTR_VALUE_LEN {
        return Err(FuseWireError::XattrValueTooLarge(value.len()));
    }
    Ok(())
}

/// Encodes a request with the default [`Negotiated`] layout. The header's `len`,
/// `opcode` and `total_extlen` are computed; its other fields are taken as given. Fails on
/// anything [`decode_request`] would refuse, so what encodes also decodes.
pub fn encode_request(req: &Request<'_>) -> Result<Vec<u8>, FuseWireError> {
    encode_request_with(req, &Negotiated::default())
}

/// As [`encode_request`], under what INIT negotiated.
pub fn encode_request_with(req: &Request<'_>, neg: &Negotiated) -> Result<Vec<u8>, FuseWireError> {
    let ext = req.extensions.len();
    let total_extlen = u16::try_from(ext / 8)
        .ok()
        .filter(|_| ext % 8 == 0)
        .ok_or(FuseWireError::InvalidExtensions(ext))?;
    let mut out = Vec::with_capacity(InHeader::SIZE + 64);
    InHeader::default().encode(&mut out);
    encode_op(&req.op, neg, &mut out)?;
    out.extend_from_slice(req.extensions);
    let len = u32::try_from(out.len()).map_err(|_| FuseWireError::MessageTooLarge(out.len()))?;
    let header = InHeader {
        len,
        opcode: req.op.opcode(),
        total_extlen,
        ..req.header
    };
    let mut head = Vec::with_capacity(InHeader::SIZE);
    header.encode(&mut head);
    out.splice(..InHeader::SIZE, head);
    Ok(out)
}

fn encode_op(op: &Operation<'_>, neg: &Negotiated, out: &mut Vec<u8>) -> Result<(), FuseWireError> {
    use Operation as O;
    match op {
        O::Init(a) => a.encode(out),
        O::Lookup { name } | O::Unlink { name } | O::Rmdir { name } => {
            put_cstr(out, name, MAX_NAME_LEN)?
        }
        O::Forget(a) => a.encode(out),
        O::BatchForget(v) => {
            let count =
                u32::try_from(v.len()).map_err(|_| FuseWireError::MessageTooLarge(v.len()))?;
            BatchForgetIn {
                count,
                ..Default::default()
            }
            .encode(out);
            v.iter().for_each(|f| f.encode(out));
        }
        O::Getattr(a) => a.encode(out),
        O::Setattr(a) => a.encode(out),
        O::Readlink | O::Statfs | O::Destroy | O::Unknown(_) => {}
        O::Symlink { name, target } => {
            put_cstr(out, name, MAX_NAME_LEN)?;
            put_cstr(out, target, MAX_SYMLINK_LEN)?;
        }
        O::Mknod { arg, name } => {
            arg.encode(out);
            put_cstr(out, name, MAX_NAME_LEN)?;
        }
        O::Mkdir { arg, name } => {
            arg.encode(out);
            put_cstr(out, name, MAX_NAME_LEN)?;
        }
        O::Rename { arg, old, new } => {
            arg.encode(out);
            put_cstr(out, old, MAX_NAME_LEN)?;
            put_cstr(out, new, MAX_NAME_LEN)?;
        }
        O::Rename2 { arg, old, new } => {
            arg.encode(out);
            put_cstr(out, old, MAX_NAME_LEN)?;
            put_cstr(out, new, MAX_NAME_LEN)?;
        }
        O::Link { arg, name } => {
            arg.encode(out);
            put_cstr(out, name, MAX_NAME_LEN)?;
        }
        O::Open(a) | O::Opendir(a) => a.encode(out),
        O::Read(a) | O::Readdir(a) | O::Readdirplus(a) => a.encode(out),
        O::Write { arg, data } => {
            check_write(arg, data, neg)?;
            arg.encode(out);
            out.extend_from_slice(data);
        }
        O::Release(a) | O::Releasedir(a) => a.encode(out),
        O::Fsync(a) | O::Fsyncdir(a) => a.encode(out),
        O::Setxattr { arg, name, value } => {
            check_xattr_value(arg, value)?;
            if neg.setxattr_ext {
                arg.encode(out);
            } else {
                arg.size.encode(out);
                arg.flags.encode(out);
            }
            put_cstr(out, name, MAX_XATTR_NAME_LEN)?;
            out.extend_from_slice(value);
        }
        O::Getxattr { arg, name } => {
            arg.encode(out);
            put_cstr(out, name, MAX_XATTR_NAME_LEN)?;
        }
        O::Listxattr(a) => a.encode(out),
        O::Removexattr { name } => put_cstr(out, name, MAX_XATTR_NAME_LEN)?,
        O::Flush(a) => a.encode(out),
        O::Getlk(a) | O::Setlk(a) | O::Setlkw(a) => a.encode(out),
        O::Access(a) => a.encode(out),
        O::Create { arg, name } | O::Tmpfile { arg, name } => {
            arg.encode(out);
            put_cstr(out, name, MAX_NAME_LEN)?;
        }
        O::Interrupt(a) => a.encode(out),
        O::Fallocate(a) => a.encode(out),
        O::Lseek(a) => a.encode(out),
        O::CopyFileRange(a) => a.encode(out),
        O::Syncfs(a) => a.encode(out),
    }
    Ok(())
}
