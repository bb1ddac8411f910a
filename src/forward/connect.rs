//! The backend connect: started without blocking, finished when poll(2) reports the socket
//! writable.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Where a non-blocking connect stands.
#[derive(Debug)]
pub enum ConnectState {
    /// Still under way.
    Pending,
    /// Connected: bytes may flow.
    Connected,
    /// Failed (refused, unreachable, …).
    Failed(io::Error),
}

/// Starts a TCP connect to `to` and returns at once; the socket is close-on-exec and
/// non-blocking from then on. [`connect_state`] tells when (and how) the connect ended.
///
/// Fails only if the connect cannot even start (no socket, or an immediate error such as an
/// unreachable network).
pub fn connect_nonblocking(to: SocketAddr) -> io::Result<TcpStream> {
    // socket2 opens the socket with close-on-exec set.
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(to)) {
        // Goes on in the background (also after a signal); poll(2) reports writable when it ends.
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Whether the connect of `stream` (from [`connect_nonblocking`]) has ended. Never blocks.
pub fn connect_state(stream: &TcpStream) -> ConnectState {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => ConnectState::Failed(e),
        Ok(None) => match stream.peer_addr() {
            Ok(_) => ConnectState::Connected,
            Err(e) if e.kind() == ErrorKind::NotConnected => ConnectState::Pending,
            Err(e) => ConnectState::Failed(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// Polls `stream`'s connect until it ends (at most 2 s).
    #[track_caller]
    fn outcome(stream: &TcpStream) -> Result<(), ErrorKind> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match connect_state(stream) {
                ConnectState::Connected => return Ok(()),
                ConnectState::Failed(e) => return Err(e.kind()),
                ConnectState::Pending => {
                    assert!(Instant::now() < deadline, "connect still pending after 2 s");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    #[test]
    fn a_closed_port_fails_the_connect() {
        // Bind a port, then free it: nobody listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let result = connect_nonblocking(to).map_err(|e| e.kind());
        let result = result.and_then(|stream| outcome(&stream));
        assert_eq!(result, Err(ErrorKind::ConnectionRefused));
    }

    #[test]
    fn a_listening_port_connects_without_blocking() {
        connects_to("127.0.0.1:0");
        // IPv6 where the host has it.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            connects_to("[::1]:0");
        }
    }

    #[track_caller]
    fn connects_to(address: &str) {
        let listener = std::net::TcpListener::bind(address).unwrap();
        let stream = connect_nonblocking(listener.local_addr().unwrap()).unwrap();
        assert_eq!(outcome(&stream), Ok(()));
        let (mut accepted, _) = listener.accept().unwrap();
        (&stream).write_all(&[0, 0, 0, 3]).unwrap();
        let mut got = [0u8; 4];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(got, [0, 0, 0, 3]);
        // Non-blocking: nothing to read is WouldBlock, not a wait.
        let mut byte = [0u8; 1];
        assert_eq!(
            (&stream).read(&mut byte).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock)
        );
    }
}
