//! What a node on a std host needs besides the TAP device: real entropy, the parsers
//! for the addresses and sizes a command line gives (shared by `netbt serve` and the
//! examples), and the retry rule of a non-blocking call.

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// Entropy for smoltcp's initial sequence numbers and our transaction ids: /dev/urandom,
/// mixed with the wall clock and the process id.
pub fn entropy() -> u64 {
    let mut bytes = [0u8; 8];
    if let Ok(mut file) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut file, &mut bytes);
    }
    // If /dev/urandom is unreadable, the wall clock and pid still differ between runs.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    u64::from_ne_bytes(bytes) ^ clock ^ (u64::from(std::process::id()) << 32)
}

/// `ADDRESS/PREFIX`: a unicast IPv4 address and a prefix length 1..32.
pub fn parse_cidr(text: &str) -> Result<Ipv4Cidr, String> {
    let (address, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not ADDRESS/PREFIX (e.g. 192.168.69.1/24)"))?;
    let address: Ipv4Address = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("{prefix:?} is not a prefix length 1..32"))?;
    if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
        return Err(format!("{address} is not a unicast address"));
    }
    Ok(Ipv4Cidr::new(address, prefix))
}

/// A unicast Ethernet address, `02:00:00:00:00:01` or `02-00-00-00-00-01`.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!(
            "{text:?} is not a MAC address like 02:00:00:00:00:01"
        ));
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| format!("{text:?} is not a MAC address like 02:00:00:00:00:01"))?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!("{text} is a multicast address"));
    }
    Ok(mac)
}

/// A session slot's buffer size (each direction): [`crate::session::MIN_SESSION_BUFFER`] to
/// 1 MiB.
pub fn parse_session_buffer(text: &str) -> Result<usize, String> {
    let bytes: usize = text
        .parse()
        .map_err(|_| format!("not a byte count: {text}"))?;
    let min = crate::session::MIN_SESSION_BUFFER;
    if !(min..=1 << 20).contains(&bytes) {
        return Err(format!("must be between {min} and {} bytes", 1 << 20));
    }
    Ok(bytes)
}

/// One call on a non-blocking socket: retried while a signal interrupts it. `Ok(Some(value))`:
/// it completed; `Ok(None)`: it would block; `Err`: any other error.
pub fn nonblocking<T>(mut call: impl FnMut() -> std::io::Result<T>) -> std::io::Result<Option<T>> {
    loop {
        match call() {
            Ok(value) => return Ok(Some(value)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_sizes_parse_strictly() {
        assert_eq!(
            parse_cidr("192.168.69.1/24"),
            Ok(Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24))
        );
        for bad in [
            "192.168.69.1",
            "192.168.69.1/0",
            "192.168.69.1/33",
            "0.0.0.0/8",
            "255.255.255.255/32",
            "224.0.0.1/4",
            "x/24",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_mac("02-00-00-00-00-01"), Ok([2, 0, 0, 0, 0, 1]));
        for bad in ["02:00:00:00:00", "01:00:5e:00:00:01", "02:00:00:00:00:zz"] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_session_buffer("8192"), Ok(8192));
        for bad in ["100", "2000000", "-1", "big"] {
            assert!(parse_session_buffer(bad).is_err(), "{bad}");
        }
        assert_ne!(entropy(), entropy());
    }

    #[test]
    fn nonblocking_retries_an_interrupted_call_and_tells_would_block_apart() {
        use std::io::{Error, ErrorKind};
        let mut answers = vec![
            Ok(7),
            Err(Error::from(ErrorKind::Interrupted)),
            Err(Error::from(ErrorKind::Interrupted)),
        ];
        assert_eq!(nonblocking(|| answers.pop().unwrap()).unwrap(), Some(7));
        assert!(answers.is_empty());
        let would_block = nonblocking(|| Err::<u8, _>(Error::from(ErrorKind::WouldBlock)));
        assert_eq!(would_block.unwrap(), None);
        let reset = nonblocking(|| Err::<u8, _>(Error::from(ErrorKind::ConnectionReset)));
        assert_eq!(reset.unwrap_err().kind(), ErrorKind::ConnectionReset);
    }
}
