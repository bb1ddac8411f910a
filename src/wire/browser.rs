//! Browser protocol frames ([MS-BRWS] 2.2), the data of mailslot writes to `\MAILSLOT\BROWSE`
//! (and, for requests, `\MAILSLOT\LANMAN`).
//!
//! The first byte is the opcode. netbt, a non-browser server, needs two frames and decodes
//! them field by field:
//!
//! * **HostAnnouncement** (opcode 1, [MS-BRWS] 2.2.1), 32 bytes and a NUL-terminated comment:
//!
//!   ```text
//!   0       1        2             6                22    23    24           28   29   30      32
//!   +-------+--------+-------------+-----------------+-----+-----+------------+----+----+-------+---------+
//!   |opcode |update  | periodicity |  server name    |OS   |OS   | server type|brow|brow|signa- | comment |
//!   |  0x01 | count  | u32 LE, ms  | 16 bytes, NUL-  |major|minor| u32 LE     |maj |min |ture   | ...\0   |
//!   |       |        |             | padded          |     |     |            |    |    |0xAA55 |         |
//!   +-------+--------+-------------+-----------------+-----+-----+------------+----+----+-------+---------+
//!   ```
//!
//!   Periodicity is in milliseconds ("despite the spec", Samba); a master drops a server it
//!   has not heard from in three periods. Server type 0 removes the server at once.
//! * **AnnouncementRequest** (opcode 2, [MS-BRWS] 2.2.2): a reserved byte and a NUL-terminated
//!   response name (to be ignored).
//!
//! Every other opcode (elections, backup lists, master and domain announcements, ...) is
//! recognised by its opcode only and kept as [`Repr::Other`].

use core::fmt;

use super::{Error, Result, buffer_too_short, get, put, put_nul_terminated, write_field};

wire_enum! {
    /// The opcode of a browser frame ([MS-BRWS] 2.2, Samba's `nameserv.h`).
    pub enum Opcode(u8) {
        /// A server announces itself to the local master browser.
        HostAnnouncement = 0x01,
        /// A browser asks every server to announce itself.
        AnnouncementRequest = 0x02,
        /// Browser election.
        RequestElection = 0x08,
        /// A client asks for backup browsers.
        GetBackupListRequest = 0x09,
        /// The answer to it.
        GetBackupListResponse = 0x0a,
        /// A master tells a potential browser to become a backup.
        BecomeBackup = 0x0b,
        /// A master announces its workgroup.
        DomainAnnouncement = 0x0c,
        /// A local master announces itself to the domain master.
        MasterAnnouncement = 0x0d,
        /// A master tells browsers to reset.
        ResetBrowserState = 0x0e,
        /// A local master announces itself.
        LocalMasterAnnouncement = 0x0f,
    }
}

/// Server type bits ([MS-RAP]/[MS-SRVS] `SV_TYPE_*`; Samba's `svcctl_ServerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ServerType(pub u32);

impl ServerType {
    /// A workstation.
    pub const WORKSTATION: ServerType = ServerType(0x0000_0001);
    /// A server.
    pub const SERVER: ServerType = ServerType(0x0000_0002);
    /// Runs a Windows NT-class operating system.
    pub const NT: ServerType = ServerType(0x0000_1000);
    /// A server not a domain controller, NT-class.
    pub const SERVER_NT: ServerType = ServerType(0x0000_8000);
    /// Could become a browser.
    pub const POTENTIAL_BROWSER: ServerType = ServerType(0x0001_0000);
    /// A backup browser.
    pub const BACKUP_BROWSER: ServerType = ServerType(0x0002_0000);
    /// The master browser.
    pub const MASTER_BROWSER: ServerType = ServerType(0x0004_0000);
    /// The domain master browser.
    pub const DOMAIN_MASTER: ServerType = ServerType(0x0008_0000);
    /// Every bit that takes part in browsing; a non-browser server sets none of them.
    pub const BROWSER_BITS: ServerType = ServerType(0x000f_0000);
    /// What netbt announces: a workstation and server, NT-class, never a browser.
    pub const NETBT: ServerType =
        ServerType(Self::WORKSTATION.0 | Self::SERVER.0 | Self::NT.0 | Self::SERVER_NT.0);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: ServerType) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for ServerType {
    /// `0x00009003`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// The browser protocol version Samba and Windows announce (15.1).
pub const BROWSER_VERSION: (u8, u8) = (15, 1);
/// The signature of a HostAnnouncement.
pub const SIGNATURE: u16 = 0xaa55;
/// Bytes of a HostAnnouncement before the comment.
pub const ANNOUNCEMENT_LEN: usize = field::COMMENT;
/// Longest server name (the 16th byte of the field is a NUL).
pub const SERVER_NAME_MAX: usize = 15;

mod field {
    use crate::wire::field::Field;

    pub const OPCODE: usize = 0;
    // HostAnnouncement.
    pub const UPDATE_COUNT: usize = 1;
    pub const PERIODICITY: Field = 2..6;
    pub const SERVER_NAME: Field = 6..22;
    pub const OS_MAJOR: usize = 22;
    pub const OS_MINOR: usize = 23;
    pub const SERVER_TYPE: Field = 24..28;
    pub const BROWSER_MAJOR: usize = 28;
    pub const BROWSER_MINOR: usize = 29;
    pub const SIGNATURE: Field = 30..32;
    pub const COMMENT: usize = 32;
    // AnnouncementRequest.
    pub const RESPONSE_NAME: usize = 2;
}

/// A read view of a browser frame.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; see [`Packet::check_len`].
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// [`Packet::new_unchecked`] followed by [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures that no accessor panics: the opcode is there, and a HostAnnouncement has its
    /// [`ANNOUNCEMENT_LEN`] fixed bytes.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        match data.first().map(|&b| Opcode::from(b)) {
            None => Err(Error),
            Some(Opcode::HostAnnouncement) if data.len() < ANNOUNCEMENT_LEN => Err(Error),
            Some(_) => Ok(()),
        }
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.buffer.as_ref()[field::OPCODE])
    }

    /// Everything after the opcode.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[1..]
    }
}

/// The fields of a HostAnnouncement (or of the frames laid out like it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement<'a> {
    /// `UpdateCount` (sent as 0, ignored on receipt).
    pub update_count: u8,
    /// Milliseconds until the next announcement.
    pub periodicity_ms: u32,
    /// The server's name, without the NUL padding; at most [`SERVER_NAME_MAX`] bytes are sent.
    pub server_name: &'a [u8],
    /// Operating system version, major and minor (informational).
    pub os_version: (u8, u8),
    /// What the server is.
    pub server_type: ServerType,
    /// Browser protocol version, major and minor ([`BROWSER_VERSION`]).
    pub browser_version: (u8, u8),
    /// [`SIGNATURE`].
    pub signature: u16,
    /// The comment, without its NUL (no NUL inside).
    pub comment: &'a [u8],
}

/// A browser frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Opcode 1.
    HostAnnouncement(Announcement<'a>),
    /// Opcode 2.
    AnnouncementRequest {
        /// The reserved byte after the opcode (Samba puts a token there).
        reserved: u8,
        /// The response name without its NUL ("MUST be ignored").
        response_name: &'a [u8],
    },
    /// Any other opcode, kept as it came.
    Other {
        /// The opcode.
        opcode: Opcode,
        /// The bytes after it.
        body: &'a [u8],
    },
}

/// The bytes up to the first NUL (all of them if there is none).
fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

impl<'a> Repr<'a> {
    /// Parses a browser frame; never panics. A HostAnnouncement needs its 32 fixed bytes; its
    /// server name ends at the first NUL of its field or after 15 bytes, its comment at the first NUL after it
    /// (or the end of the frame: Samba reads it that leniently too). An AnnouncementRequest
    /// needs its reserved byte.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        let data: &'a [u8] = packet.buffer.as_ref();
        // The fields are read from fixed-size arrays split off the frame: the length checks
        // are the splits (the ones `check_len` makes), and no access after them can panic.
        let Some((&opcode, body)) = data.split_first() else {
            return Err(Error);
        };
        Ok(match Opcode::from(opcode) {
            Opcode::HostAnnouncement => {
                let (fixed, comment) = data.split_first_chunk::<ANNOUNCEMENT_LEN>().ok_or(Error)?;
                Repr::HostAnnouncement(Announcement {
                    update_count: fixed[field::UPDATE_COUNT],
                    periodicity_ms: u32::from_le_bytes(get(fixed, field::PERIODICITY.start)),
                    // At most 15 bytes: the 16th is the terminating NUL.
                    server_name: until_nul(&fixed[field::SERVER_NAME][..SERVER_NAME_MAX]),
                    os_version: (fixed[field::OS_MAJOR], fixed[field::OS_MINOR]),
                    server_type: ServerType(u32::from_le_bytes(get(
                        fixed,
                        field::SERVER_TYPE.start,
                    ))),
                    browser_version: (fixed[field::BROWSER_MAJOR], fixed[field::BROWSER_MINOR]),
                    signature: u16::from_le_bytes(get(fixed, field::SIGNATURE.start)),
                    comment: until_nul(comment),
                })
            }
            Opcode::AnnouncementRequest => {
                let (&reserved, response_name) = body.split_first().ok_or(Error)?;
                Repr::AnnouncementRequest {
                    reserved,
                    response_name: until_nul(response_name),
                }
            }
            opcode => Repr::Other { opcode, body },
        })
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Repr::HostAnnouncement(_) => Opcode::HostAnnouncement,
            Repr::AnnouncementRequest { .. } => Opcode::AnnouncementRequest,
            Repr::Other { opcode, .. } => *opcode,
        }
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::HostAnnouncement(a) => ANNOUNCEMENT_LEN + a.comment.len() + 1,
            Repr::AnnouncementRequest { response_name, .. } => 2 + response_name.len() + 1,
            Repr::Other { body, .. } => 1 + body.len(),
        }
    }

    /// Writes the frame to the start of `buf`; never panics if `buf` holds
    /// [`Repr::buffer_len`] bytes. A server name longer than [`SERVER_NAME_MAX`] bytes is cut
    /// there.
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            Repr::HostAnnouncement(a) => {
                // The fixed part is an array: its fields are written without bounds checks.
                let Some((fixed, comment)) = buf.split_first_chunk_mut::<ANNOUNCEMENT_LEN>() else {
                    buffer_too_short()
                };
                *fixed = [0; ANNOUNCEMENT_LEN];
                fixed[field::OPCODE] = Opcode::HostAnnouncement.into();
                fixed[field::UPDATE_COUNT] = a.update_count;
                put(
                    fixed,
                    field::PERIODICITY.start,
                    a.periodicity_ms.to_le_bytes(),
                );
                // At most 15 bytes: the 16th stays the terminating NUL.
                let name = field::SERVER_NAME.start..field::SERVER_NAME.start + SERVER_NAME_MAX;
                write_field(fixed, name, a.server_name);
                fixed[field::OS_MAJOR] = a.os_version.0;
                fixed[field::OS_MINOR] = a.os_version.1;
                put(
                    fixed,
                    field::SERVER_TYPE.start,
                    a.server_type.0.to_le_bytes(),
                );
                fixed[field::BROWSER_MAJOR] = a.browser_version.0;
                fixed[field::BROWSER_MINOR] = a.browser_version.1;
                put(fixed, field::SIGNATURE.start, a.signature.to_le_bytes());
                put_nul_terminated(comment, a.comment);
            }
            Repr::AnnouncementRequest {
                reserved,
                response_name,
            } => {
                let Some((fixed, rest)) = buf.split_first_chunk_mut::<{ field::RESPONSE_NAME }>()
                else {
                    buffer_too_short()
                };
                *fixed = [Opcode::AnnouncementRequest.into(), *reserved];
                put_nul_terminated(rest, response_name);
            }
            Repr::Other { opcode, body } => {
                let Some((first, rest)) = buf.split_first_mut() else {
                    buffer_too_short()
                };
                *first = (*opcode).into();
                rest[..body.len()].copy_from_slice(body);
            }
        }
    }
}

impl fmt::Display for Repr<'_> {
    /// `HostAnnouncement LABSRV type 0x00009003 every 60000 ms`, `AnnouncementRequest`, or the
    /// opcode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::HostAnnouncement(a) => {
                f.write_str("HostAnnouncement ")?;
                for &b in a.server_name {
                    write!(f, "{}", if b.is_ascii_graphic() { b as char } else { '?' })?;
                }
                write!(f, " type {} every {} ms", a.server_type, a.periodicity_ms)
            }
            Repr::AnnouncementRequest { .. } => f.write_str("AnnouncementRequest"),
            Repr::Other { opcode, .. } => write!(f, "browser frame {opcode:?}"),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    /// A HostAnnouncement of LABSRV (type server + workstation + NT, 60 s, OS 6.1, browser
    /// 15.1) with the comment "netbt", worked out from [MS-BRWS] 2.2.1 and Samba's
    /// `send_announcement` (all integers little endian).
    const ANNOUNCEMENT: &[u8] = b"\x01\x00\x60\xea\x00\x00\
        LABSRV\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
        \x06\x01\x03\x90\x00\x00\x0f\x01\x55\xaa\
        netbt\x00";

    /// Samba's AnnouncementRequest: token byte, then the requester's name.
    const REQUEST: &[u8] = b"\x02\x00NMBDHOST\x00";

    fn announcement() -> Repr<'static> {
        Repr::HostAnnouncement(Announcement {
            update_count: 0,
            periodicity_ms: 60_000,
            server_name: b"LABSRV",
            os_version: (6, 1),
            server_type: ServerType::NETBT,
            browser_version: BROWSER_VERSION,
            signature: SIGNATURE,
            comment: b"netbt",
        })
    }

    fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&Packet::new_unchecked(bytes))
    }

    fn emit(repr: &Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut buf);
        buf
    }

    #[test]
    fn announcement_vector() {
        assert_eq!(ANNOUNCEMENT.len(), 32 + 6);
        assert_eq!(ServerType::NETBT.0, 0x9003);
        assert_eq!(ServerType::NETBT.0 & ServerType::BROWSER_BITS.0, 0);
        assert_eq!(parse(ANNOUNCEMENT), Ok(announcement()));
        assert_eq!(announcement().buffer_len(), ANNOUNCEMENT.len());
        assert_eq!(emit(&announcement()), ANNOUNCEMENT);
        assert_eq!(
            format!("{}", announcement()),
            "HostAnnouncement LABSRV type 0x00009003 every 60000 ms"
        );
    }

    #[test]
    fn request_vector() {
        let repr = Repr::AnnouncementRequest {
            reserved: 0,
            response_name: b"NMBDHOST",
        };
        assert_eq!(parse(REQUEST), Ok(repr));
        assert_eq!(emit(&repr), REQUEST);
        // Without a NUL, or without a name at all: still a request (the name is ignored).
        assert!(matches!(
            parse(b"\x02\x07AB"),
            Ok(Repr::AnnouncementRequest {
                reserved: 7,
                response_name: b"AB"
            })
        ));
        assert!(matches!(
            parse(b"\x02\x00"),
            Ok(Repr::AnnouncementRequest {
                response_name: b"",
                ..
            })
        ));
    }

    #[test]
    fn other_opcodes_are_kept_by_opcode() {
        let election = b"\x08\x01\x00\x00\x00\x00";
        let repr = parse(election).unwrap();
        assert_eq!(
            repr,
            Repr::Other {
                opcode: Opcode::RequestElection,
                body: &election[1..]
            }
        );
        assert_eq!(emit(&repr), election);
        assert_eq!(repr.opcode(), Opcode::RequestElection);
        assert_eq!(
            parse(b"\x0f").unwrap().opcode(),
            Opcode::LocalMasterAnnouncement
        );
        assert_eq!(parse(b"\x63").unwrap().opcode(), Opcode::Unknown(0x63));
    }

    #[test]
    fn truncation_fails_where_a_field_is_cut() {
        assert_eq!(parse(b""), Err(Error));
        for len in 1..ANNOUNCEMENT_LEN {
            assert_eq!(parse(&ANNOUNCEMENT[..len]), Err(Error), "len {len}");
        }
        // The comment may lose its NUL (lenient, as Samba), and then its letters.
        for len in ANNOUNCEMENT_LEN..ANNOUNCEMENT.len() {
            let Ok(Repr::HostAnnouncement(a)) = parse(&ANNOUNCEMENT[..len]) else {
                panic!("len {len}");
            };
            assert_eq!(a.comment, &b"netbt"[..len - ANNOUNCEMENT_LEN]);
        }
        assert_eq!(parse(&REQUEST[..1]), Err(Error));
    }

    #[test]
    fn a_server_name_without_its_nul_is_read_as_fifteen_bytes() {
        let mut bytes = ANNOUNCEMENT.to_vec();
        bytes[6..22].copy_from_slice(b"ABCDEFGHIJKLMNOP");
        let Ok(Repr::HostAnnouncement(a)) = parse(&bytes) else {
            panic!()
        };
        assert_eq!(a.server_name, b"ABCDEFGHIJKLMNO");
    }

    #[test]
    fn long_server_names_are_cut_to_fifteen_bytes() {
        let Repr::HostAnnouncement(mut a) = announcement() else {
            unreachable!()
        };
        a.server_name = b"ABCDEFGHIJKLMNOPQ";
        let bytes = emit(&Repr::HostAnnouncement(a));
        assert_eq!(&bytes[6..22], b"ABCDEFGHIJKLMNO\x00");
        let Ok(Repr::HostAnnouncement(back)) = parse(&bytes) else {
            panic!()
        };
        assert_eq!(back.server_name, b"ABCDEFGHIJKLMNO");
    }

    proptest! {
        #[test]
        fn announcements_round_trip(
            update_count in any::<u8>(),
            periodicity_ms in any::<u32>(),
            server_name in "[A-Z0-9]{0,15}",
            os_version in any::<(u8, u8)>(),
            server_type in any::<u32>(),
            browser_version in any::<(u8, u8)>(),
            signature in any::<u16>(),
            comment in "[ -~]{0,60}",
        ) {
            let repr = Repr::HostAnnouncement(Announcement {
                update_count,
                periodicity_ms,
                server_name: server_name.as_bytes(),
                os_version,
                server_type: ServerType(server_type),
                browser_version,
                signature,
                comment: comment.as_bytes(),
            });
            let bytes = emit(&repr);
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(parse(&bytes), Ok(repr));
        }

        #[test]
        fn others_round_trip(opcode in 3u8..=255, body in proptest::collection::vec(any::<u8>(), 0..60)) {
            let repr = Repr::Other { opcode: Opcode::from(opcode), body: &body };
            let bytes = emit(&repr);
            prop_assert_eq!(parse(&bytes), Ok(repr));
        }

        /// Whatever parses emits to a frame that parses to the same thing (bytes after a NUL the
        /// parser stopped at are not kept).
        #[test]
        fn whatever_parses_re_parses_the_same(
            opcode in 0u8..4,
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut frame = vec![opcode];
            frame.extend_from_slice(&bytes);
            if let Ok(repr) = parse(&frame) {
                let emitted = emit(&repr);
                prop_assert_eq!(parse(&emitted), Ok(repr));
            }
        }
    }
}
