//! `netbt status`: finds the daemon's socket, asks, and prints the answer as text or JSON.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use super::path::{client_candidates, other_namespaces};
use super::status::{ErrorReply, Status};
use super::text::render_text;

/// How long `netbt status` waits for the answer.
pub const CLIENT_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Largest answer `netbt status` reads.
const REPLY_MAX: u64 = 16 << 20;

/// text tables). Errors are one line for exit code 1.
pub fn print_status(control: Option<PathBuf>, tap: &str, json: bool) -> Result<(), String> {
    let path = find_socket(control, tap)?;
    let reply = ask(&path, "status", CLIENT_TIMEOUT)?;
    let out =
        read_reply(&reply, json).map_err(|e| format!("the daemon at {} {e}", path.display()))?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the status: {e}"))
}

/// The daemon's socket: `control`, or the first default for `tap` that exists (one line naming
/// where it looked otherwise).
pub fn find_socket(control: Option<PathBuf>, tap: &str) -> Result<PathBuf, String> {
    Ok(match control {
        Some(path) => path,
        None => {
            let candidates = client_candidates(tap);
            match candidates
                .iter()
                .find(|p| std::fs::symlink_metadata(p).is_ok())
            {
                Some(path) => path.clone(),
                None => {
                    let listed: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    let others: Vec<String> = other_namespaces(tap)
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    let hint = if others.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; daemons in other network namespaces: {} (--control PATH, or ask \
                             from inside with `ip netns exec`)",
                            others.join(", ")
                        )
                    };
                    return Err(format!(
                        "no netbt daemon for {tap}: no control socket at {} (is `netbt serve` \
                         running? --control PATH names its socket){hint}",
                        listed.join(", ")
                    ));
                }
            }
        }
    })
}

/// What to print for the daemon's `reply`: the document as it came with `json` (it must be
/// JSON), else its text rendering (it must be a [`Status`]). An error document is an error.
fn read_reply(reply: &str, json: bool) -> Result<String, String> {
    if let Ok(refusal) = serde_json::from_str::<ErrorReply>(reply) {
        return Err(format!("refused: {}", refusal.error));
    }
    let unreadable = |e: serde_json::Error| format!("sent an unreadable answer: {e}");
    if json {
        serde_json::from_str::<serde::de::IgnoredAny>(reply).map_err(unreadable)?;
        Ok(reply.to_string())
    } else {
        let status: Status = serde_json::from_str(reply).map_err(unreadable)?;
        Ok(render_text(&status))
    }
}

/// Sends one request line and reads the whole answer, waiting at most `wait` for it.
pub fn ask(path: &Path, request: &str, wait: StdDuration) -> Result<String, String> {
    let shown = path.display();
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.file_type().is_socket()
    {
        return Err(format!(
            "{shown} is not a socket (--control names the daemon's socket)"
        ));
    }
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            format!("no netbt daemon at {shown}: no such socket (is `netbt serve` running?)")
        }
        ErrorKind::ConnectionRefused => format!(
            "no netbt daemon answers at {shown} (a leftover socket; is `netbt serve` running?)"
        ),
        ErrorKind::PermissionDenied => {
            format!("permission denied on {shown} (ask as the daemon's user, e.g. with sudo)")
        }
        _ => format!("cannot connect to {shown}: {e}"),
    })?;
    let timeout = |e: std::io::Error| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            format!(
                "the daemon at {shown} did not answer within {} s",
                wait.as_secs()
            )
        } else {
            format!("talking to the daemon at {shown}: {e}")
        }
    };
    stream
        .set_read_timeout(Some(wait))
        .and_then(|()| stream.set_write_timeout(Some(wait)))
        .map_err(timeout)?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(timeout)?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    (&mut stream)
        .take(REPLY_MAX)
        .read_to_end(&mut reply)
        .map_err(timeout)?;
    if reply.is_empty() {
        return Err(format!(
            "the daemon at {shown} closed the connection without answering (busy or shutting \
             down?)"
        ));
    }
    String::from_utf8(reply)
        .map_err(|_| format!("the daemon at {shown} sent an answer that is not UTF-8"))
}
