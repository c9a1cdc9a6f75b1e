//! The pid file: written atomically (temporary file, then rename) once the
//! listeners are bound, and removed on exit only if it still names us. When
//! to write it is the master's decision.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A pid file we wrote; removed by [`PidFile::remove`] if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    /// Where it is now: the configured path, or `.oldbin` during an upgrade.
    path: PathBuf,
    /// The configured path.
    original: PathBuf,
    pid: u32,
}

impl PidFile {
    pub fn write(path: &Path, pid: u32) -> anyhow::Result<PidFile> {
        let tmp = tmp_path(path);
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            writeln!(f, "{pid}")?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_owned(),
            original: path.to_owned(),
            pid,
        })
    }

    /// The configured path (whatever the file is called now).
    pub fn path_original(&self) -> &Path {
        &self.original
    }

    /// USR2: make way for the new master's pid file (nginx's `.oldbin`).
    pub fn rename_to_oldbin(&mut self) -> std::io::Result<()> {
        let old = oldbin_path(&self.path);
        fs::rename(&self.path, &old)?;
        self.path = old;
        Ok(())
    }

    /// The upgrade failed: take the pid file back under its own name.
    pub fn restore(&mut self) -> anyhow::Result<()> {
        let back = PidFile::write(&self.original, self.pid)?;
        let _ = fs::remove_file(&self.path);
        *self = back;
        Ok(())
    }

    /// Removes the file if it still names us (a new master may own it now).
    pub fn remove(&self) {
        if read(&self.path) == Some(self.pid) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The pid a pid file names, if it is readable and well-formed.
pub fn read(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `<pid_file>.oldbin`, where the old master's pid goes during an upgrade.
pub fn oldbin_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".oldbin");
    path.with_file_name(name)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_remove() {
        let dir = std::env::temp_dir().join(format!("preforkd-pid-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.pid");
        let p = PidFile::write(&path, 4242).unwrap();
        assert_eq!(read(&path), Some(4242));
        fs::write(&path, "1\n").unwrap();
        p.remove();
        assert!(path.exists(), "a pid file naming another process stays");
        let mut p = PidFile::write(&path, 4242).unwrap();
        p.rename_to_oldbin().unwrap();
        assert!(!path.exists());
        assert_eq!(read(&oldbin_path(&path)), Some(4242));
        p.restore().unwrap();
        assert!(!oldbin_path(&path).exists());
        assert_eq!(read(&path), Some(4242));
        p.remove();
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
