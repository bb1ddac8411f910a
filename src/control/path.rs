//! Where the control socket lives: the daemon's default path, the client's candidates, and
//! the network namespace's name that keeps lab daemons apart.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The default socket of the daemon on `tap`: `/run/netbt/<tap>.sock` when `/run/netbt` is (or
/// can be made) writable, else `$XDG_RUNTIME_DIR/netbt-<tap>.sock`, else
/// `/tmp/netbt-<tap>.sock`. Creates `/run/netbt` if needed. In a named network namespace
/// (`ip netns`) `<tap>` is `<tap>@<namespace>`: every lab namespace has its own `tap0`, and their
/// daemons must not claim one socket.
pub fn server_path(tap: &str) -> PathBuf {
    let stem = socket_stem(tap);
    let run = Path::new("/run");
    let dir = run.join("netbt");
    if writable(&dir)
        || (!dir.exists() && writable(run) && std::fs::create_dir(&dir).is_ok() && writable(&dir))
    {
        return dir.join(format!("{stem}.sock"));
    }
    if let Some(xdg) = xdg_runtime_dir().filter(|dir| writable(dir)) {
        return xdg.join(format!("netbt-{stem}.sock"));
    }
    PathBuf::from(format!("/tmp/netbt-{stem}.sock"))
}

/// Where `netbt status` looks for the daemon on `tap`, in order (the first that exists wins).
pub fn client_candidates(tap: &str) -> Vec<PathBuf> {
    let stem = socket_stem(tap);
    let mut candidates = vec![PathBuf::from(format!("/run/netbt/{stem}.sock"))];
    if let Some(xdg) = xdg_runtime_dir() {
        candidates.push(xdg.join(format!("netbt-{stem}.sock")));
    }
    candidates.push(PathBuf::from(format!("/tmp/netbt-{stem}.sock")));
    candidates
}

/// Default sockets of daemons on `tap` in other network namespaces (for a hint).
pub fn other_namespaces(tap: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![(PathBuf::from("/run/netbt"), format!("{tap}@"))];
    if let Some(xdg) = xdg_runtime_dir() {
        dirs.push((xdg, format!("netbt-{tap}@")));
    }
    dirs.push((PathBuf::from("/tmp"), format!("netbt-{tap}@")));
    for (dir, prefix) in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".sock") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// `tap`, or `tap@namespace` inside a named network namespace.
fn socket_stem(tap: &str) -> String {
    match netns_name() {
        Some(namespace) => format!("{tap}@{namespace}"),
        None => tap.to_string(),
    }
}

/// The name of our network namespace, found as `ip netns identify` finds it: the entry of
/// /run/netns that is the same namespace (device and inode) as /proc/self/ns/net. `None` in the
/// initial namespace (it has no entry there) or when it cannot be told.
fn netns_name() -> Option<String> {
    let own = std::fs::metadata("/proc/self/ns/net").ok()?;
    let entries = std::fs::read_dir("/run/netns").ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| {
            std::fs::metadata(entry.path())
                .is_ok_and(|meta| (meta.dev(), meta.ino()) == (own.dev(), own.ino()))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    // One namespace may have several names; take the same one every time.
    names.sort();
    names.into_iter().next()
}

fn xdg_runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
}

/// Whether this process may create files in `dir` (effective ids, as bind(2) checks).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    rc == 0 && dir.is_dir()
}
