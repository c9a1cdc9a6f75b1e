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
    path: PathBuf,
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
            pid,
        })
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
        let p = PidFile::write(&path, 4242).unwrap();
        p.remove();
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
