//! Which folders may become library roots when the request comes from the desktop app: a folder
//! of photos, not the whole file system, the home folder itself or a system folder. A scan reads
//! every file under a root and the app writes locations into photos there, so a root that is too
//! wide (or the webview naming one on its own) would expose far more than the user's photos.

use std::path::{Path, PathBuf};

/// Folders of the operating system: never a library root, nor anything inside them.
const SYSTEM_FOLDERS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/sys",
    "/usr",
    "/var",
    "/efi",
    "/lost+found",
    // macOS
    "/System",
    "/Library",
    "/Applications",
];

/// Inside a system folder, yet where removable drives appear (udisks mounts them there).
const REMOVABLE_MEDIA: &[&str] = &["/run/media"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootRefused {
    #[error("{path}: {reason}")]
    NotAFolder { path: PathBuf, reason: String },

    #[error("{0}: this is the whole file system, not a photo folder; choose the folder that holds your photos")]
    FileSystemRoot(PathBuf),

    #[error("{0}: this is your home folder itself, with your documents, settings and keys; choose the folder that holds your photos (such as Pictures)")]
    Home(PathBuf),

    #[error("{path}: this folder holds your home folder ({home}); choose the folder that holds your photos")]
    HoldsHome { path: PathBuf, home: PathBuf },

    #[error("{path}: {system} is a system folder, not a photo folder")]
    System { path: PathBuf, system: PathBuf },
}

/// The user's home folder, when the platform says.
pub fn home_folder() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

/// Checks a folder the app was asked to add; returns it canonical (symbolic links resolved, so a
/// link cannot lead the check astray). `home` is the user's home folder, when known.
pub fn check_library_root(folder: &Path, home: Option<&Path>) -> Result<PathBuf, RootRefused> {
    let not_a_folder = |reason: String| RootRefused::NotAFolder {
        path: folder.to_path_buf(),
        reason,
    };
    if !folder.is_absolute() {
        return Err(not_a_folder(
            "not a full path (it must start with /)".into(),
        ));
    }
    let canonical = std::fs::canonicalize(folder).map_err(|e| not_a_folder(e.to_string()))?;
    if !canonical.is_dir() {
        return Err(not_a_folder("not a folder".into()));
    }
    if canonical.parent().is_none() {
        return Err(RootRefused::FileSystemRoot(folder.to_path_buf()));
    }
    let home = home.map(|h| std::fs::canonicalize(h).unwrap_or_else(|_| h.to_path_buf()));
    if let Some(home) = &home {
        if &canonical == home {
            return Err(RootRefused::Home(folder.to_path_buf()));
        }
        if home.starts_with(&canonical) {
            return Err(RootRefused::HoldsHome {
                path: folder.to_path_buf(),
                home: home.clone(),
            });
        }
        // Inside the home folder is the user's own, wherever the system keeps homes (some keep
        // them under /var/home).
        if canonical.starts_with(home) {
            return Ok(canonical);
        }
    }
    if REMOVABLE_MEDIA
        .iter()
        .any(|m| canonical.starts_with(m) && canonical != Path::new(m))
    {
        return Ok(canonical);
    }
    if let Some(system) = SYSTEM_FOLDERS
        .iter()
        .map(Path::new)
        .find(|s| canonical.starts_with(s))
    {
        return Err(RootRefused::System {
            path: folder.to_path_buf(),
            system: system.to_path_buf(),
        });
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_folders_are_accepted_and_made_canonical() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home/ada");
        let pictures = home.join("Pictures");
        std::fs::create_dir_all(&pictures).unwrap();
        let via = dir.path().join("link-to-pictures");
        std::os::unix::fs::symlink(&pictures, &via).unwrap();
        let canonical = std::fs::canonicalize(&pictures).unwrap();
        assert_eq!(
            check_library_root(&pictures, Some(&home)),
            Ok(canonical.clone())
        );
        assert_eq!(check_library_root(&via, Some(&home)), Ok(canonical));
        // Outside home and outside the system: a second drive, a shared folder.
        let elsewhere = dir.path().join("photos");
        std::fs::create_dir_all(&elsewhere).unwrap();
        assert!(check_library_root(&elsewhere, Some(&home)).is_ok());
        assert!(check_library_root(&elsewhere, None).is_ok());
    }

    #[test]
    fn the_file_system_the_home_folder_and_system_folders_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home/ada");
        std::fs::create_dir_all(&home).unwrap();

        let e = check_library_root(Path::new("/"), Some(&home)).unwrap_err();
        assert!(matches!(e, RootRefused::FileSystemRoot(_)), "{e}");
        assert!(e.to_string().contains("whole file system"), "{e}");

        let e = check_library_root(&home, Some(&home)).unwrap_err();
        assert!(matches!(e, RootRefused::Home(_)), "{e}");
        assert!(e.to_string().contains("home folder"), "{e}");
        // The same folder through a link, and a folder holding it.
        let link = dir.path().join("my-home");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        assert!(matches!(
            check_library_root(&link, Some(&home)),
            Err(RootRefused::Home(_))
        ));
        assert!(matches!(
            check_library_root(&dir.path().join("home"), Some(&home)),
            Err(RootRefused::HoldsHome { .. })
        ));

        for system in [
            "/etc",
            "/usr",
            "/usr/share",
            "/bin",
            "/proc",
            "/sys",
            "/dev",
            "/var",
            "/boot",
            "/lib",
        ] {
            if !Path::new(system).is_dir() {
                continue;
            }
            let e = check_library_root(Path::new(system), Some(&home)).unwrap_err();
            assert!(matches!(e, RootRefused::System { .. }), "{system}: {e}");
            assert!(e.to_string().contains("system folder"), "{e}");
        }
        // A link into a system folder is judged by where it leads.
        let sneaky = dir.path().join("holiday");
        std::os::unix::fs::symlink("/etc", &sneaky).unwrap();
        let e = check_library_root(&sneaky, Some(&home)).unwrap_err();
        assert!(matches!(e, RootRefused::System { .. }), "{e}");

        let e = check_library_root(Path::new("/no/such/folder"), Some(&home)).unwrap_err();
        assert!(matches!(e, RootRefused::NotAFolder { .. }), "{e}");
        assert!(e.to_string().contains("/no/such/folder"), "{e}");
        let e = check_library_root(Path::new("Pictures"), Some(&home)).unwrap_err();
        assert!(e.to_string().contains("full path"), "{e}");
        let file = dir.path().join("photo.jpg");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_library_root(&file, Some(&home))
            .unwrap_err()
            .to_string()
            .contains("not a folder"));
    }
}
