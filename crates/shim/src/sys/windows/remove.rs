//! Removing a directory tree on Windows without following links: a junction, a directory
//! symbolic link or a volume mount point (all reparse points) is removed itself, never
//! descended into, so what it points to is untouched.

use std::fs;
use std::io;
use std::os::windows::fs::MetadataExt;
use std::path::Path;

use windows_sys::Win32::Storage::FileSystem::{
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_READONLY, FILE_ATTRIBUTE_REPARSE_POINT,
};

use crate::cleanup::{CleanupError, MAX_DEPTH};

fn remove_err(path: &Path) -> impl FnOnce(io::Error) -> CleanupError + '_ {
    move |source| CleanupError::Remove {
        path: path.to_owned(),
        source,
    }
}

/// Removes the directory `dir` and everything in it; `dir` itself must be a real directory.
pub fn remove_tree(dir: &Path) -> Result<(), CleanupError> {
    let meta = fs::symlink_metadata(dir).map_err(remove_err(dir))?;
    if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 || !meta.is_dir() {
        return Err(CleanupError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    empty_dir(dir, 0)?;
    fs::remove_dir(dir).map_err(remove_err(dir))
}

fn empty_dir(dir: &Path, depth: usize) -> Result<(), CleanupError> {
    if depth >= MAX_DEPTH {
        return Err(CleanupError::TooDeep {
            path: dir.to_owned(),
        });
    }
    for entry in fs::read_dir(dir).map_err(remove_err(dir))? {
        let entry = entry.map_err(remove_err(dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(remove_err(&path))?;
        let attrs = meta.file_attributes();
        if attrs & FILE_ATTRIBUTE_READONLY != 0 {
            // DeleteFile refuses read-only files; the shim made them, so clear the flag (on
            // Windows this is the read-only attribute, not a Unix "writable by all").
            let mut perms = meta.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            fs::set_permissions(&path, perms).map_err(remove_err(&path))?;
        }
        let is_dir = attrs & FILE_ATTRIBUTE_DIRECTORY != 0;
        if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            // The link itself: RemoveDirectory on a directory reparse point, DeleteFile on a
            // file one; neither touches the target.
            if is_dir {
                fs::remove_dir(&path)
            } else {
                fs::remove_file(&path)
            }
            .map_err(remove_err(&path))?;
        } else if is_dir {
            empty_dir(&path, depth + 1)?;
            fs::remove_dir(&path).map_err(remove_err(&path))?;
        } else {
            fs::remove_file(&path).map_err(remove_err(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_remove_tree_removes_nested_and_read_only_files() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("c1");
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("a/b/f"), "x").unwrap();
        fs::write(dir.join("ro"), "x").unwrap();
        let mut p = fs::metadata(dir.join("ro")).unwrap().permissions();
        p.set_readonly(true);
        fs::set_permissions(dir.join("ro"), p).unwrap();

        remove_tree(&dir).unwrap();

        assert!(!dir.exists());
    }

    #[test]
    fn test_remove_tree_of_a_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "keep").unwrap();
        let e = remove_tree(&f).unwrap_err();
        assert!(matches!(e, CleanupError::NotADirectory { .. }), "{e}");
        assert!(f.exists());
    }
}
