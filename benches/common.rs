//! What the benchmark tools on the kernel's TCP (`nbss_load`, `nbss_responder`) share: included by
//! each with `mod common;`, not a target of its own.

use std::io;

/// The calling thread's last OS error number (0 if there is none).
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Raises the soft open-file limit to the hard one: a run keeps thousands of sockets open.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
