//! Files and directories that hold secrets (the SQLite database, the crypto store), made the
//! owner's only when they are first created: 0600 and 0700, whatever the umask.

use std::{
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::Path,
};

/// Creates the file `path` empty with mode 0600 when it does not exist (an in-memory SQLite
/// database, `""` or `:memory:`, has none); an existing file is left as it is.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists => Err(error),
        _ => Ok(()),
    }
}

/// Creates the directory `path` (and missing parents) with mode 0700 when it does not exist; an
/// existing one is left as it is.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_directories_are_the_owners_only_and_existing_ones_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (store, file) = (dir.path().join("a/crypto"), dir.path().join("a/crypto/keys.sqlite3"));
        create_private_dir(&store).unwrap();
        create_private_file(&file).unwrap();
        assert_eq!((mode(&store), mode(&file)), (0o700, 0o600));

        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o755, "an existing directory keeps its mode");
        std::fs::write(&file, "keys").unwrap();
        create_private_file(&file).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keys", "an existing file is not emptied");
    }
}
