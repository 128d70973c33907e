//! Reading files a config names: regular files only, opened without blocking, size-capped.
//!
//! `std::fs::read` on a config-named path reads `/dev/zero` until memory runs out and
//! blocks forever on a FIFO with no writer. [`read_config_file`] refuses anything but a
//! regular file before opening it, opens it non-blocking (in case it was swapped for a FIFO
//! in between), checks the opened file again, and never reads more than the limit.
//!
//! ```
//! use loom_core::file::{FileError, read_config_file};
//!
//! let error = read_config_file(std::path::Path::new("/"), 1024).unwrap_err();
//! assert!(matches!(error, FileError::NotRegular { kind: "a directory" }));
//! ```

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Size limit of the config file itself (`loom.yaml`): 16 MiB.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Size limit of a HuggingFace `tokenizer.json`: 256 MiB (the largest public ones are
/// tens of MiB).
pub const MAX_TOKENIZER_BYTES: u64 = 256 * 1024 * 1024;

/// Size limit of a service-account key file (Vertex `credentials_file`): 1 MiB (real
/// keys are about 2 KiB).
pub const MAX_CREDENTIALS_BYTES: u64 = 1024 * 1024;

/// Why a config-named file was not read. The messages leave the path out: the caller
/// names it together with the config key.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be inspected, opened or read.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The path is not a regular file (a directory, FIFO, socket or device).
    #[error("not a regular file ({kind})")]
    NotRegular {
        /// What it is instead, e.g. `a FIFO`.
        kind: &'static str,
    },
    /// The file is larger than the caller's limit.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file was expected to hold text but is not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
}

impl From<FileError> for io::Error {
    fn from(error: FileError) -> io::Error {
        match error {
            FileError::Io(error) => error,
            FileError::NotRegular { .. } => io::Error::new(io::ErrorKind::InvalidInput, error),
            FileError::TooLarge { .. } => io::Error::new(io::ErrorKind::FileTooLarge, error),
            FileError::NotUtf8 => io::Error::new(io::ErrorKind::InvalidData, error),
        }
    }
}

/// Reads the regular file at `path`, refusing it when it holds more than `max_bytes`.
pub fn read_config_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let metadata = std::fs::metadata(path)?;
    ensure_regular(&metadata)?;
    if metadata.len() > max_bytes {
        return Err(FileError::TooLarge { limit: max_bytes });
    }
    let file = open_without_blocking(path)?;
    // The path may have been replaced between the check and the open.
    ensure_regular(&file.metadata()?)?;
    let capacity = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    // One byte past the limit tells "exactly at the limit" from "too large" (the file may
    // have grown since its size was read, or report none, like files under /proc).
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).map_or(true, |read| read > max_bytes) {
        return Err(FileError::TooLarge { limit: max_bytes });
    }
    Ok(bytes)
}

/// Reads the regular file at `path` as UTF-8 text, refusing it when it holds more than `max_bytes`.
pub fn read_config_text(path: &Path, max_bytes: u64) -> Result<String, FileError> {
    String::from_utf8(read_config_file(path, max_bytes)?).map_err(|_| FileError::NotUtf8)
}

/// Opens `path` for reading; on unix with `O_NONBLOCK`, so a FIFO cannot block the open.
fn open_without_blocking(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Refuses anything but a regular file, saying what it is.
fn ensure_regular(metadata: &Metadata) -> Result<(), FileError> {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    Err(FileError::NotRegular { kind: describe(file_type) })
}

/// What a non-regular file is, for the error message.
fn describe(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn reads_a_regular_file_up_to_the_limit() {
        let dir = temp_dir();
        let path = dir.path().join("ten.txt");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_config_file(&path, 10).unwrap(), b"0123456789");
        assert_eq!(read_config_text(&path, 100).unwrap(), "0123456789");
        let error = read_config_file(&path, 9).unwrap_err();
        assert!(matches!(error, FileError::TooLarge { limit: 9 }), "{error:?}");
        assert_eq!(error.to_string(), "larger than the limit of 9 bytes");
    }

    #[test]
    fn empty_files_and_missing_files() {
        let dir = temp_dir();
        let path = dir.path().join("empty");
        std::fs::write(&path, "").unwrap();
        assert_eq!(read_config_file(&path, 0).unwrap(), b"");
        let error = read_config_file(&dir.path().join("missing"), 10).unwrap_err();
        let FileError::Io(io) = error else { panic!("expected an I/O error, got {error:?}") };
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = temp_dir();
        let path = dir.path().join("latin1");
        std::fs::write(&path, b"caf\xe9").unwrap();
        assert!(matches!(read_config_text(&path, 10), Err(FileError::NotUtf8)));
    }

    #[test]
    fn directories_are_refused() {
        let dir = temp_dir();
        let error = read_config_file(dir.path(), 10).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a directory)");
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_without_reading() {
        let error = read_config_file(Path::new("/dev/zero"), u64::MAX).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a character device)");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = temp_dir();
        let path = dir.path().join("fifo");
        match std::process::Command::new("mkfifo").arg(&path).status() {
            Ok(status) if status.success() => {}
            // No mkfifo on this system: nothing to test.
            _ => return,
        }
        let error = read_config_file(&path, 10).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a FIFO)");
        // A FIFO swapped in after the first check: the open returns at once (a blocking
        // open would wait for a writer forever) and the second check refuses it.
        let opened = open_without_blocking(&path).unwrap();
        let error = ensure_regular(&opened.metadata().unwrap()).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a FIFO)");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn files_reporting_no_size_are_still_capped() {
        // /proc files say they are empty but hold more than 8 bytes.
        let path = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        assert!(matches!(read_config_file(path, 8), Err(FileError::TooLarge { limit: 8 })));
        assert!(read_config_text(path, MAX_CONFIG_BYTES).unwrap().contains("Name:"));
    }

    #[test]
    fn converts_to_io_errors_keeping_the_message() {
        let error: io::Error = FileError::TooLarge { limit: 5 }.into();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(error.to_string(), "larger than the limit of 5 bytes");
        let error: io::Error = FileError::Io(io::Error::from(io::ErrorKind::NotFound)).into();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
