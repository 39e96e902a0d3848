//! A container's state dir, `<root>/<id>`: made by its create, removed by
//! its delete. A removed dir is kept, emptied, as a spare for the next
//! create (a few per root): on a disk-backed state root a new directory
//! is an inode allocation, and a removed one frees its block, which a
//! filesystem mounted `-o discard` waits for (~0.3 ms of every `run` and
//! `delete` on this project's ext4 test host). A rename is neither.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};

/// Spares kept per state root.
const SPARES: usize = 4;

/// A spare's name: `@` is in no container id (`config::id`), so `list`
/// and every lookup by id pass spares by.
fn spare(root: &Path, k: usize) -> PathBuf {
    root.join(format!("@spare.{k}"))
}

/// Moves `from` to `to` unless `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> Result<(), Errno> {
    renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE)
}

/// Makes `dir` (mode 0711), the id's claim: a spare renamed there without
/// replacing (an id taken meanwhile stays taken), else a new directory.
/// `AlreadyExists` when the id is taken.
pub(crate) fn claim(dir: &Path) -> io::Result<()> {
    if let Some(root) = dir.parent() {
        for k in 0..SPARES {
            match rename_noreplace(&spare(root, k), dir) {
                Ok(()) => return Ok(()),
                Err(Errno::EEXIST) => return Err(io::ErrorKind::AlreadyExists.into()),
                Err(Errno::ENOENT) => continue,
                // A filesystem that cannot rename so (EINVAL), or a spare
                // that is not ours to take: a new directory.
                Err(_) => break,
            }
        }
    }
    std::fs::DirBuilder::new().mode(0o711).create(dir)
}

/// Removes a container's state dir, whose lock the caller holds: emptied,
/// then kept as a spare while there are fewer than [`SPARES`], else
/// removed. The caller's lock goes with the dir: it must let go of it
/// (close it) before a create can lock the dir again as a new container's.
pub(crate) fn retire(dir: &Path) -> io::Result<()> {
    let Some(root) = dir.parent() else {
        return std::fs::remove_dir_all(dir);
    };
    empty(dir)?;
    for k in 0..SPARES {
        match rename_noreplace(dir, &spare(root, k)) {
            Ok(()) => return Ok(()),
            Err(Errno::EEXIST) => continue,
            Err(_) => break,
        }
    }
    std::fs::remove_dir(dir)
}

/// Removes everything in `dir` (a subdirectory whole; symlinks are removed,
/// never followed).
fn empty(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        match entry.file_type()?.is_dir() {
            true => std::fs::remove_dir_all(entry.path())?,
            false => std::fs::remove_file(entry.path())?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("estiba-statedir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    fn entries(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A retired dir comes back empty as the next container's, the same
    /// directory (its birth time, not only an inode number the filesystem
    /// may give again): nothing is made or freed.
    #[test]
    fn a_retired_dir_is_the_next_claim_emptied() {
        let born = |d: &Path| std::fs::metadata(d).and_then(|m| m.created()).unwrap();
        let root = scratch("reuse");
        let a = root.join("a");
        claim(&a).unwrap();
        let first = born(&a);
        std::fs::write(a.join("state.json"), "{}").unwrap();
        std::fs::create_dir(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", a.join("link")).unwrap();
        retire(&a).unwrap();
        assert!(!a.exists());
        assert_eq!(entries(&root), ["@spare.0"]);
        // The link was removed, not what it names.
        assert!(Path::new("/etc/passwd").exists());
        let b = root.join("b");
        claim(&b).unwrap();
        assert_eq!(born(&b), first);
        assert!(entries(&b).is_empty());
        assert_eq!(entries(&root), ["b"]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A claim of a taken id fails as mkdir would, spare or not, and
    /// leaves both the taken dir and the spare as they were.
    #[test]
    fn a_taken_id_stays_taken() {
        let root = scratch("taken");
        let (a, b) = (root.join("a"), root.join("b"));
        claim(&a).unwrap();
        std::fs::write(a.join("state.json"), "{}").unwrap();
        claim(&b).unwrap();
        retire(&b).unwrap();
        let err = claim(&a).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(a.join("state.json").exists());
        assert_eq!(entries(&root), ["@spare.0", "a"]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// At most SPARES are kept; the rest are removed.
    #[test]
    fn spares_are_bounded() {
        let root = scratch("bounded");
        let dirs: Vec<PathBuf> = (0..SPARES + 2)
            .map(|i| root.join(format!("c{i}")))
            .collect();
        for d in &dirs {
            claim(d).unwrap();
        }
        for d in &dirs {
            retire(d).unwrap();
        }
        let left = entries(&root);
        assert_eq!(left.len(), SPARES, "{left:?}");
        assert!(left.iter().all(|n| n.starts_with("@spare.")), "{left:?}");
        assert!(crate::config::id::validate("@spare.0").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
