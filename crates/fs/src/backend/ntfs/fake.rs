//! [`FakeNt`]: an in-memory NTFS volume behind the [`Nt`] trait, modelling what the NTFS
//! backend relies on and Wine does not implement: EAs (names stored upper-case, compared
//! without case, 64 KiB per file), reparse points, POSIX delete and rename (the name goes at
//! once, open handles keep the file), hard links with real link counts, case-insensitive
//! directories unless made case-sensitive, names NTFS refuses (`\ / : * ? " < > |`, control
//! characters, `.`/`..`), the access each call needs, and Windows' byte-range locks (per
//! handle, exact ranges, no merging). Directory listings come back a few entries per call so
//! the backend's listing loop is exercised.
//!
//! It is a model, not NTFS: what only real NTFS can confirm is listed in `docs/windows.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::nt::*;
use crate::wsl::ea::{self, Ea};
use crate::wsl::status::*;

/// Entries one `list` call returns.
const LIST_BATCH: usize = 3;
/// The most EA bytes one file holds (NTFS: 64 KiB).
const MAX_EA_BYTES: usize = 65535;
/// The most names one file has (NTFS: 1024).
const MAX_LINKS: u32 = 1024;
/// The longest name component, in UTF-16 units.
const MAX_NAME: usize = 255;
/// The serial number of the fake volume.
pub const SERIAL: u64 = 0x1234_5678;

#[derive(Debug, Default)]
struct Obj {
    dir: bool,
    data: Vec<u8>,
    eas: Vec<Ea>,
    reparse: Option<Vec<u8>>,
    attributes: u32,
    names: u32,
    handles: u32,
    children: Vec<(Vec<u16>, u64)>,
    case_sensitive: bool,
    created: NtTime,
    accessed: NtTime,
    written: NtTime,
    changed: NtTime,
    /// Windows byte-range locks: (handle, offset, len, exclusive).
    locks: Vec<(u64, u64, u64, bool)>,
}

#[derive(Debug)]
struct Vol {
    objects: HashMap<u64, Obj>,
    next_id: u64,
    next_handle: u64,
    clock: NtTime,
}

/// An open handle of the fake volume.
#[derive(Debug)]
pub struct FakeFile {
    vol: Arc<Mutex<Vol>>,
    id: u64,
    handle: u64,
    access: u32,
    /// The name it was opened by: (parent id, name), `None` for the root.
    name: Mutex<Option<(u64, Vec<u16>)>>,
    /// The listing cursor.
    cursor: Mutex<usize>,
}

impl Drop for FakeFile {
    fn drop(&mut self) {
        let mut vol = relock(&self.vol);
        let handle = self.handle;
        let gone = vol.objects.get_mut(&self.id).is_some_and(|o| {
            o.handles -= 1;
            o.locks.retain(|l| l.0 != handle);
            o.handles == 0 && o.names == 0
        });
        if gone {
            vol.objects.remove(&self.id);
        }
    }
}

/// The fake volume (see the module doc).
#[derive(Debug, Clone)]
pub struct FakeNt {
    vol: Arc<Mutex<Vol>>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> NtTime {
    // 100 ns units between 1601-01-01 and 1970-01-01.
    const EPOCH_DIFF: i64 = 116_444_736_000_000_000;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    EPOCH_DIFF + i64::try_from(since.as_nanos() / 100).unwrap_or(i64::MAX - EPOCH_DIFF)
}

/// Whether NTFS refuses `name` as a component.
fn invalid_name(name: &[u16]) -> bool {
    let illegal = |c: u16| {
        c < 0x20
            || matches!(
                char::from_u32(u32::from(c)),
                Some('\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
            )
    };
    name.len() > MAX_NAME
        || name == [0x2e]
        || name == [0x2e, 0x2e]
        || name.iter().any(|&c| illegal(c))
}

/// NTFS's case folding, for the comparison of names in a case-insensitive directory.
fn fold(name: &[u16]) -> Vec<u16> {
    String::from_utf16_lossy(name)
        .to_uppercase()
        .encode_utf16()
        .collect()
}

impl Vol {
    fn obj(&self, id: u64) -> NtResult<&Obj> {
        self.objects.get(&id).ok_or(STATUS_FILE_DELETED)
    }

    fn obj_mut(&mut self, id: u64) -> NtResult<&mut Obj> {
        self.objects.get_mut(&id).ok_or(STATUS_FILE_DELETED)
    }

    fn tick(&mut self) -> NtTime {
        self.clock = now().max(self.clock + 1);
        self.clock
    }

    /// The child of `dir` named `name` (by the directory's case rule): its position and id.
    fn find(&self, dir: u64, name: &[u16]) -> NtResult<Option<(usize, u64)>> {
        let d = self.obj(dir)?;
        let key = if d.case_sensitive {
            name.to_vec()
        } else {
            fold(name)
        };
        Ok(d.children.iter().enumerate().find_map(|(i, (n, id))| {
            let n = if d.case_sensitive { n.clone() } else { fold(n) };
            (n == key).then_some((i, *id))
        }))
    }

    fn new_obj(&mut self, dir: bool, attributes: u32, eas: Vec<Ea>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let t = self.tick();
        let attributes = if dir {
            attributes | attributes::DIRECTORY
        } else {
            attributes & !attributes::DIRECTORY
        };
        self.objects.insert(
            id,
            Obj {
                dir,
                eas,
                attributes,
                created: t,
                accessed: t,
                written: t,
                changed: t,
                ..Obj::default()
            },
        );
        id
    }

    fn add_name(&mut self, dir: u64, name: &[u16], id: u64) -> NtResult<()> {
        let t = self.tick();
        self.obj_mut(dir)?.children.push((name.to_vec(), id));
        let d = self.obj_mut(dir)?;
        d.written = t;
        d.changed = t;
        let o = self.obj_mut(id)?;
        o.names += 1;
        o.changed = t;
        Ok(())
    }

    fn remove_name(&mut self, dir: u64, pos: usize) -> NtResult<u64> {
        let t = self.tick();
        let d = self.obj_mut(dir)?;
        let (_, id) = d.children.remove(pos);
        d.written = t;
        d.changed = t;
        let o = self.obj_mut(id)?;
        o.names -= 1;
        o.changed = t;
        if o.names == 0 && o.handles == 0 {
            self.objects.remove(&id);
        }
        Ok(id)
    }

    /// Whether `id` is `ancestor` or lies beneath it.
    fn within(&self, mut id: u64, ancestor: u64) -> bool {
        for _ in 0..4096 {
            if id == ancestor {
                return true;
            }
            let parent = self
                .objects
                .iter()
                .find_map(|(pid, o)| o.children.iter().any(|(_, c)| *c == id).then_some(*pid));
            match parent {
                Some(p) => id = p,
                None => return false,
            }
        }
        false
    }
}

fn check_access(file: &FakeFile, needed: u32) -> NtResult<()> {
    if file.access & needed == 0 {
        Err(STATUS_ACCESS_DENIED)
    } else {
        Ok(())
    }
}

fn ea_bytes(eas: &[Ea]) -> usize {
    eas.iter().map(|e| 9 + e.name.len() + e.value.len()).sum()
}

impl Default for FakeNt {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeNt {
    /// An empty volume whose root directory is case-insensitive, as NTFS makes them.
    pub fn new() -> Self {
        let mut vol = Vol {
            objects: HashMap::new(),
            next_id: 4,
            next_handle: 0,
            clock: 0,
        };
        let root = vol.new_obj(true, 0, Vec::new());
        vol.obj_mut(root).map(|o| o.names = 1).ok();
        FakeNt {
            vol: Arc::new(Mutex::new(vol)),
        }
    }

    /// A handle on the root with every access right (what the backend is given).
    pub fn root(&self) -> FakeFile {
        self.handle_on(5, u32::MAX, None)
    }

    fn handle_on(&self, id: u64, access: u32, name: Option<(u64, Vec<u16>)>) -> FakeFile {
        let mut vol = relock(&self.vol);
        vol.next_handle += 1;
        let handle = vol.next_handle;
        if let Some(o) = vol.objects.get_mut(&id) {
            o.handles += 1;
        }
        FakeFile {
            vol: Arc::clone(&self.vol),
            id,
            handle,
            access,
            name: Mutex::new(name),
            cursor: Mutex::new(0),
        }
    }

    /// The names in the root, as stored (for tests).
    pub fn root_names(&self) -> Vec<String> {
        let vol = relock(&self.vol);
        vol.obj(5)
            .map(|o| {
                o.children
                    .iter()
                    .map(|(n, _)| String::from_utf16_lossy(n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The EAs of the root's child `name` as stored (for tests).
    pub fn stored_eas(&self, name: &str) -> Option<Vec<Ea>> {
        let vol = relock(&self.vol);
        let utf16: Vec<u16> = name.encode_utf16().collect();
        let (_, id) = vol.find(5, &utf16).ok()??;
        Some(vol.obj(id).ok()?.eas.clone())
    }

    /// The reparse buffer of the root's child `name` as stored (for tests).
    pub fn stored_reparse(&self, name: &str) -> Option<Vec<u8>> {
        let vol = relock(&self.vol);
        let utf16: Vec<u16> = name.encode_utf16().collect();
        let (_, id) = vol.find(5, &utf16).ok()??;
        vol.obj(id).ok()?.reparse.clone()
    }

    /// How many objects the volume holds (deleted-but-open ones included).
    pub fn objects(&self) -> usize {
        relock(&self.vol).objects.len()
    }
}

impl Nt for FakeNt {
    type File = FakeFile;

    fn open(
        &self,
        parent: &FakeFile,
        name: &[u16],
        request: &OpenRequest<'_>,
    ) -> NtResult<(FakeFile, Action)> {
        let mut vol = relock(&self.vol);
        let (id, action, by) = if name.is_empty() {
            let o = vol.obj(parent.id)?;
            if o.names == 0 && !o.dir {
                return Err(STATUS_DELETE_PENDING);
            }
            let by = relock(&parent.name).clone();
            (parent.id, Action::Opened, by)
        } else {
            if invalid_name(name) {
                return Err(STATUS_OBJECT_NAME_INVALID);
            }
            let p = vol.obj(parent.id)?;
            if !p.dir {
                return Err(STATUS_OBJECT_PATH_NOT_FOUND);
            }
            let parent_gone = p.names == 0;
            match vol.find(parent.id, name)? {
                Some((_, id)) => {
                    if request.disposition == Disposition::Create {
                        return Err(STATUS_OBJECT_NAME_COLLISION);
                    }
                    (id, Action::Opened, Some((parent.id, name.to_vec())))
                }
                None => {
                    if matches!(
                        request.disposition,
                        Disposition::Open | Disposition::Overwrite
                    ) {
                        return Err(STATUS_OBJECT_NAME_NOT_FOUND);
                    }
                    if parent_gone {
                        return Err(STATUS_DELETE_PENDING);
                    }
                    let mut eas = ea::decode(request.eas).map_err(|_| STATUS_INVALID_PARAMETER)?;
                    eas.retain(|e| !e.value.is_empty());
                    for e in &mut eas {
                        e.name.make_ascii_uppercase();
                    }
                    if ea_bytes(&eas) > MAX_EA_BYTES {
                        return Err(STATUS_EA_TOO_LARGE);
                    }
                    let dir = request.want == Want::Directory;
                    let id = vol.new_obj(dir, request.attributes, eas);
                    vol.add_name(parent.id, name, id)?;
                    (id, Action::Created, Some((parent.id, name.to_vec())))
                }
            }
        };
        let o = vol.obj(id)?;
        match request.want {
            Want::Directory if !o.dir => return Err(STATUS_NOT_A_DIRECTORY),
            Want::NonDirectory if o.dir => return Err(STATUS_FILE_IS_A_DIRECTORY),
            _ => {}
        }
        let mut action = action;
        if request.disposition == Disposition::Overwrite && action == Action::Opened {
            if o.dir {
                return Err(STATUS_INVALID_PARAMETER);
            }
            let t = vol.tick();
            let o = vol.obj_mut(id)?;
            o.data.clear();
            o.written = t;
            o.changed = t;
            action = Action::Overwritten;
        }
        drop(vol);
        Ok((self.handle_on(id, request.access, by), action))
    }

    fn info(&self, file: &FakeFile) -> NtResult<Info> {
        check_access(file, access::READ_ATTRIBUTES)?;
        let vol = relock(&self.vol);
        let o = vol.obj(file.id)?;
        let tag = o
            .reparse
            .as_ref()
            .and_then(|r| r.get(..4))
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let size = if o.dir { 0 } else { o.data.len() as u64 };
        Ok(Info {
            volume: SERIAL,
            file_id: file.id,
            attributes: o.attributes,
            reparse_tag: tag,
            size,
            allocated: size.div_ceil(4096) * 4096,
            nlink: o.names,
            created: o.created,
            accessed: o.accessed,
            written: o.written,
            changed: o.changed,
        })
    }

    fn eas(&self, file: &FakeFile) -> NtResult<Vec<u8>> {
        check_access(file, access::READ_EA)?;
        let vol = relock(&self.vol);
        ea::encode(&vol.obj(file.id)?.eas).map_err(|_| STATUS_INVALID_PARAMETER)
    }

    fn set_eas(&self, file: &FakeFile, chain: &[u8]) -> NtResult<()> {
        check_access(file, access::WRITE_EA)?;
        let new = ea::decode(chain).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let mut vol = relock(&self.vol);
        let t = vol.tick();
        let o = vol.obj_mut(file.id)?;
        let mut eas = o.eas.clone();
        for mut e in new {
            e.name.make_ascii_uppercase();
            eas.retain(|old| !ea::same_name(&old.name, &e.name));
            if !e.value.is_empty() {
                eas.push(e);
            }
        }
        if ea_bytes(&eas) > MAX_EA_BYTES {
            return Err(STATUS_EA_TOO_LARGE);
        }
        o.eas = eas;
        o.changed = t;
        Ok(())
    }

    fn reparse_point(&self, file: &FakeFile) -> NtResult<Vec<u8>> {
        check_access(file, access::READ_ATTRIBUTES | access::READ_DATA)?;
        let vol = relock(&self.vol);
        vol.obj(file.id)?
            .reparse
            .clone()
            .ok_or(STATUS_NOT_A_REPARSE_POINT)
    }

    fn set_reparse_point(&self, file: &FakeFile, buffer: &[u8]) -> NtResult<()> {
        check_access(file, access::WRITE_DATA | access::WRITE_ATTRIBUTES)?;
        if buffer.len() < 8 || buffer.len() > 16 * 1024 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let declared = usize::from(u16::from_le_bytes([buffer[4], buffer[5]]));
        if declared != buffer.len() - 8 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut vol = relock(&self.vol);
        let t = vol.tick();
        let o = vol.obj_mut(file.id)?;
        if o.dir && !o.children.is_empty() {
            return Err(STATUS_DIRECTORY_NOT_EMPTY);
        }
        o.reparse = Some(buffer.to_vec());
        o.attributes |= attributes::REPARSE_POINT;
        o.changed = t;
        Ok(())
    }

    fn read(&self, file: &FakeFile, offset: u64, buf: &mut [u8]) -> NtResult<usize> {
        check_access(file, access::READ_DATA)?;
        let vol = relock(&self.vol);
        let o = vol.obj(file.id)?;
        if o.dir {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if o.locks.iter().any(|&(h, off, len, excl)| {
            h != file.handle
                && excl
                && offset < off.saturating_add(len)
                && off < offset.saturating_add(buf.len() as u64)
        }) {
            return Err(STATUS_FILE_LOCK_CONFLICT);
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(o.data.len());
        let n = buf.len().min(o.data.len() - start);
        buf[..n].copy_from_slice(&o.data[start..start + n]);
        Ok(n)
    }

    fn write(&self, file: &FakeFile, offset: Option<u64>, data: &[u8]) -> NtResult<usize> {
        check_access(file, access::WRITE_DATA | access::APPEND_DATA)?;
        let mut vol = relock(&self.vol);
        let t = vol.tick();
        let o = vol.obj_mut(file.id)?;
        if o.dir {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let at = match offset {
            Some(off) => usize::try_from(off).map_err(|_| STATUS_DISK_FULL)?,
            None => o.data.len(),
        };
        let end = at.checked_add(data.len()).ok_or(STATUS_DISK_FULL)?;
        if end > 1 << 30 {
            return Err(STATUS_DISK_FULL);
        }
        if o.data.len() < end {
            o.data.resize(end, 0);
        }
        o.data[at..end].copy_from_slice(data);
        o.written = t;
        o.changed = t;
        Ok(data.len())
    }

    fn set_size(&self, file: &FakeFile, size: u64) -> NtResult<()> {
        check_access(file, access::WRITE_DATA)?;
        let size = usize::try_from(size).map_err(|_| STATUS_DISK_FULL)?;
        if size > 1 << 30 {
            return Err(STATUS_DISK_FULL);
        }
        let mut vol = relock(&self.vol);
        let t = vol.tick();
        let o = vol.obj_mut(file.id)?;
        if o.dir {
            return Err(STATUS_INVALID_PARAMETER);
        }
        o.data.resize(size, 0);
        o.written = t;
        o.changed = t;
        Ok(())
    }

    fn set_times(&self, file: &FakeFile, times: &Times) -> NtResult<()> {
        check_access(file, access::WRITE_ATTRIBUTES)?;
        let mut vol = relock(&self.vol);
        let t = vol.tick();
        let o = vol.obj_mut(file.id)?;
        if let Some(a) = times.accessed {
            o.accessed = a;
        }
        if let Some(w) = times.written {
            o.written = w;
        }
        o.changed = times.changed.unwrap_or(t);
        Ok(())
    }

    fn flush(&self, file: &FakeFile) -> NtResult<()> {
        check_access(file, access::WRITE_DATA | access::APPEND_DATA)?;
        relock(&self.vol).obj(file.id).map(drop)
    }

    fn delete(&self, file: &FakeFile) -> NtResult<()> {
        check_access(file, access::DELETE)?;
        let mut vol = relock(&self.vol);
        let o = vol.obj(file.id)?;
        if o.dir && !o.children.is_empty() {
            return Err(STATUS_DIRECTORY_NOT_EMPTY);
        }
        let Some((parent, name)) = relock(&file.name).take() else {
            return Err(STATUS_CANNOT_DELETE);
        };
        let Some((pos, id)) = vol.find(parent, &name)? else {
            return Err(STATUS_DELETE_PENDING);
        };
        if id != file.id {
            return Err(STATUS_DELETE_PENDING);
        }
        vol.remove_name(parent, pos)?;
        Ok(())
    }

    fn rename(
        &self,
        file: &FakeFile,
        new_parent: &FakeFile,
        name: &[u16],
        replace: bool,
    ) -> NtResult<()> {
        check_access(file, access::DELETE)?;
        if invalid_name(name) || name.is_empty() {
            return Err(STATUS_OBJECT_NAME_INVALID);
        }
        let mut vol = relock(&self.vol);
        let mut by = relock(&file.name);
        let Some((parent, old)) = by.clone() else {
            return Err(STATUS_ACCESS_DENIED);
        };
        let Some((old_pos, id)) = vol.find(parent, &old)? else {
            return Err(STATUS_DELETE_PENDING);
        };
        if id != file.id {
            return Err(STATUS_DELETE_PENDING);
        }
        if !vol.obj(new_parent.id)?.dir || vol.obj(new_parent.id)?.names == 0 {
            return Err(STATUS_OBJECT_PATH_NOT_FOUND);
        }
        let is_dir = vol.obj(id)?.dir;
        if is_dir && vol.within(new_parent.id, id) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        match vol.find(new_parent.id, name)? {
            Some((_, target)) if target == id && new_parent.id == parent => {
                // The same file under the same name (perhaps another case): renamed in place.
                vol.obj_mut(parent)?.children[old_pos].0 = name.to_vec();
                *by = Some((parent, name.to_vec()));
                return Ok(());
            }
            Some((_, target)) if target == id => {
                // Another name of the same file: POSIX drops the source name.
                vol.remove_name(parent, old_pos)?;
                *by = Some((new_parent.id, name.to_vec()));
                return Ok(());
            }
            Some((pos, target)) => {
                if !replace {
                    return Err(STATUS_OBJECT_NAME_COLLISION);
                }
                if vol.obj(target)?.dir || is_dir {
                    return Err(STATUS_ACCESS_DENIED);
                }
                vol.remove_name(new_parent.id, pos)?;
            }
            None => {}
        }
        // Positions may have moved: find the source again.
        let Some((old_pos, _)) = vol.find(parent, &old)? else {
            return Err(STATUS_DELETE_PENDING);
        };
        let t = vol.tick();
        let p = vol.obj_mut(parent)?;
        p.children.remove(old_pos);
        p.written = t;
        p.changed = t;
        let np = vol.obj_mut(new_parent.id)?;
        np.children.push((name.to_vec(), id));
        np.written = t;
        np.changed = t;
        vol.obj_mut(id)?.changed = t;
        *by = Some((new_parent.id, name.to_vec()));
        Ok(())
    }

    fn link(&self, file: &FakeFile, new_parent: &FakeFile, name: &[u16]) -> NtResult<()> {
        if invalid_name(name) || name.is_empty() {
            return Err(STATUS_OBJECT_NAME_INVALID);
        }
        let mut vol = relock(&self.vol);
        let o = vol.obj(file.id)?;
        if o.dir {
            return Err(STATUS_FILE_IS_A_DIRECTORY);
        }
        if o.names == 0 {
            return Err(STATUS_DELETE_PENDING);
        }
        if o.names >= MAX_LINKS {
            return Err(STATUS_TOO_MANY_LINKS);
        }
        let np = vol.obj(new_parent.id)?;
        if !np.dir || np.names == 0 {
            return Err(STATUS_OBJECT_PATH_NOT_FOUND);
        }
        if vol.find(new_parent.id, name)?.is_some() {
            return Err(STATUS_OBJECT_NAME_COLLISION);
        }
        vol.add_name(new_parent.id, name, file.id)
    }

    fn list(&self, dir: &FakeFile, restart: bool) -> NtResult<Vec<Listed>> {
        check_access(dir, access::READ_DATA)?;
        let vol = relock(&self.vol);
        let o = vol.obj(dir.id)?;
        if !o.dir {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut all = vec![
            Listed {
                name: vec![0x2e],
                file_id: dir.id,
                attributes: o.attributes,
                reparse_tag: 0,
            },
            Listed {
                name: vec![0x2e, 0x2e],
                file_id: dir.id,
                attributes: attributes::DIRECTORY,
                reparse_tag: 0,
            },
        ];
        for (name, id) in &o.children {
            let c = vol.obj(*id)?;
            let tag = c
                .reparse
                .as_ref()
                .and_then(|r| r.get(..4))
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            all.push(Listed {
                name: name.clone(),
                file_id: *id,
                attributes: c.attributes,
                reparse_tag: tag,
            });
        }
        let mut cursor = relock(&dir.cursor);
        if restart {
            *cursor = 0;
        }
        let batch: Vec<Listed> = all.into_iter().skip(*cursor).take(LIST_BATCH).collect();
        *cursor += batch.len();
        Ok(batch)
    }

    fn set_case_sensitive(&self, dir: &FakeFile, on: bool) -> NtResult<()> {
        check_access(dir, access::WRITE_ATTRIBUTES)?;
        let mut vol = relock(&self.vol);
        let o = vol.obj_mut(dir.id)?;
        if !o.dir {
            return Err(STATUS_NOT_A_DIRECTORY);
        }
        o.case_sensitive = on;
        Ok(())
    }

    fn volume(&self, _file: &FakeFile) -> NtResult<Volume> {
        let vol = relock(&self.vol);
        let used: u64 = vol
            .objects
            .values()
            .map(|o| (o.data.len() as u64).div_ceil(4096))
            .sum();
        Ok(Volume {
            cluster: 4096,
            total: 1 << 20,
            free: (1 << 20) - used,
            available: (1 << 20) - used,
            max_name: MAX_NAME as u32,
            serial: SERIAL,
        })
    }

    fn lock(&self, file: &FakeFile, offset: u64, len: u64, exclusive: bool) -> NtResult<()> {
        let mut vol = relock(&self.vol);
        let o = vol.obj_mut(file.id)?;
        let end = offset.saturating_add(len);
        let conflict = o.locks.iter().any(|&(h, off, l, excl)| {
            if offset >= off.saturating_add(l) || off >= end {
                return false;
            }
            // One handle may take a shared lock over its own exclusive one; nothing else
            // overlaps an exclusive lock, and no exclusive lock overlaps anything.
            if h == file.handle && !exclusive {
                return false;
            }
            excl || exclusive
        });
        if conflict {
            return Err(STATUS_LOCK_NOT_GRANTED);
        }
        o.locks.push((file.handle, offset, len, exclusive));
        Ok(())
    }

    fn unlock(&self, file: &FakeFile, offset: u64, len: u64) -> NtResult<()> {
        let mut vol = relock(&self.vol);
        let o = vol.obj_mut(file.id)?;
        let pos = o
            .locks
            .iter()
            .position(|&(h, off, l, _)| h == file.handle && off == offset && l == len)
            .ok_or(STATUS_RANGE_NOT_LOCKED)?;
        o.locks.remove(pos);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn name(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn req(disposition: Disposition, want: Want) -> OpenRequest<'static> {
        OpenRequest {
            access: u32::MAX,
            disposition,
            want,
            attributes: 0,
            eas: &[],
        }
    }

    #[test]
    fn test_windows_lock_semantics() {
        let nt = FakeNt::new();
        let root = nt.root();
        let (a, _) = nt
            .open(
                &root,
                &name("f"),
                &req(Disposition::Create, Want::NonDirectory),
            )
            .unwrap();
        let (b, _) = nt
            .open(&root, &name("f"), &req(Disposition::Open, Want::Any))
            .unwrap();
        nt.lock(&a, 0, 10, true).unwrap();
        // Shared over one's own exclusive lock: allowed; anything from another handle: not.
        nt.lock(&a, 2, 2, false).unwrap();
        assert_eq!(nt.lock(&b, 5, 1, false), Err(STATUS_LOCK_NOT_GRANTED));
        assert_eq!(
            nt.lock(&a, 8, 4, true),
            Err(STATUS_LOCK_NOT_GRANTED),
            "no exclusive overlap"
        );
        // Mandatory: the other handle cannot read the exclusively locked bytes.
        let mut buf = [0u8; 1];
        assert_eq!(nt.read(&b, 3, &mut buf), Err(STATUS_FILE_LOCK_CONFLICT));
        // Unlock only of exactly a range locked; no splitting.
        assert_eq!(nt.unlock(&a, 0, 5), Err(STATUS_RANGE_NOT_LOCKED));
        nt.unlock(&a, 0, 10).unwrap();
        nt.unlock(&a, 2, 2).unwrap();
        nt.lock(&b, 0, 10, true).unwrap();
        // A handle's locks go when it closes.
        drop(b);
        nt.lock(&a, 0, 10, true).unwrap();
    }

    #[test]
    fn test_names_ntfs_refuses_and_case_insensitive_lookup() {
        let nt = FakeNt::new();
        let root = nt.root();
        for bad in ["a:b", "a\\b", "a*", "..", ".", "x\u{1}"] {
            let r = nt.open(
                &root,
                &name(bad),
                &req(Disposition::Create, Want::NonDirectory),
            );
            assert_eq!(r.err(), Some(STATUS_OBJECT_NAME_INVALID), "{bad}");
        }
        nt.open(
            &root,
            &name("Abc"),
            &req(Disposition::Create, Want::NonDirectory),
        )
        .unwrap();
        assert!(nt
            .open(&root, &name("aBC"), &req(Disposition::Open, Want::Any))
            .is_ok());
        let r = nt.open(
            &root,
            &name("ABC"),
            &req(Disposition::Create, Want::NonDirectory),
        );
        assert_eq!(r.err(), Some(STATUS_OBJECT_NAME_COLLISION));
    }

    #[test]
    fn test_eas_stored_upper_case_replaced_and_removed() {
        let nt = FakeNt::new();
        let root = nt.root();
        let (f, _) = nt
            .open(
                &root,
                &name("f"),
                &req(Disposition::Create, Want::NonDirectory),
            )
            .unwrap();
        nt.set_eas(
            &f,
            &ea::encode(&[Ea::new(b"lx.a", b"1"), Ea::new(b"B", b"2")]).unwrap(),
        )
        .unwrap();
        nt.set_eas(
            &f,
            &ea::encode(&[Ea::new(b"LX.A", b"3"), Ea::new(b"b", b"")]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            ea::decode(&nt.eas(&f).unwrap()).unwrap(),
            [Ea::new(b"LX.A", b"3")]
        );
        let big = ea::encode(&[Ea::new(b"X", &vec![0; 65535])]).unwrap();
        assert_eq!(nt.set_eas(&f, &big), Err(STATUS_EA_TOO_LARGE));
    }

    #[test]
    fn test_access_is_checked_per_call() {
        let nt = FakeNt::new();
        let root = nt.root();
        nt.open(
            &root,
            &name("f"),
            &req(Disposition::Create, Want::NonDirectory),
        )
        .unwrap();
        let ro = OpenRequest {
            access: access::READ_ATTRIBUTES,
            ..req(Disposition::Open, Want::Any)
        };
        let (f, _) = nt.open(&root, &name("f"), &ro).unwrap();
        assert_eq!(nt.write(&f, Some(0), b"x"), Err(STATUS_ACCESS_DENIED));
        assert_eq!(nt.delete(&f), Err(STATUS_ACCESS_DENIED));
        assert_eq!(nt.eas(&f), Err(STATUS_ACCESS_DENIED));
        assert!(nt.info(&f).is_ok());
    }

    #[test]
    fn test_posix_delete_and_listing_in_batches() {
        let nt = FakeNt::new();
        let root = nt.root();
        for i in 0..5 {
            nt.open(
                &root,
                &name(&format!("f{i}")),
                &req(Disposition::Create, Want::NonDirectory),
            )
            .unwrap();
        }
        let (f, _) = nt
            .open(&root, &name("f0"), &req(Disposition::Open, Want::Any))
            .unwrap();
        nt.delete(&f).unwrap();
        assert_eq!(nt.info(&f).unwrap().nlink, 0, "open, nameless");
        let r = nt.open(&root, &name("f0"), &req(Disposition::Open, Want::Any));
        assert_eq!(r.err(), Some(STATUS_OBJECT_NAME_NOT_FOUND));
        let mut seen = 0;
        let mut restart = true;
        loop {
            let batch = nt.list(&root, restart).unwrap();
            restart = false;
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= LIST_BATCH);
            seen += batch.len();
        }
        assert_eq!(seen, 2 + 4, ". and .. and four files");
    }
}
