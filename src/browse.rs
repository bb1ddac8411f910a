//! The browse announcer: puts the node in its workgroup's browse list as a non-browser server
//! ([MS-BRWS] 3.2), without I/O.
//!
//! * **Workgroup**: the first group name with suffix 0x00 in the name table (the daemon's first
//!   `--group WG`). Without one, or until it and a unique `<00>` name (the server name) are
//!   registered, nothing is announced.
//! * **HostAnnouncement** ([`crate::wire::browser`]) from `<SERVER><00>` to `<WG><1D>` (the
//!   local master browser) on `\MAILSLOT\BROWSE`, as a DIRECT_GROUP datagram to the subnet's
//!   broadcast address: at once, then after 1, 1, 2, 4 and 8 minutes, then every 12 minutes
//!   (the [MS-BRWS] 3.2.6 timer table). Periodicity is the interval to the next announcement, in
//!   milliseconds. [`BrowseAnnouncer::set_interval`] replaces the schedule with a fixed interval
//!   (for labs). Server type [`ServerType::NETBT`]: workstation, server, NT-class; never a
//!   browser bit.
//! * **AnnouncementRequest** (opcode 2) to `<WG><00>` or `<WG><1E>` on `\MAILSLOT\BROWSE` or
//!   `\MAILSLOT\LANMAN` schedules one extra announcement after a random delay of 0 to 30 s
//!   (several requests before it is sent still make one); the schedule goes on unchanged.
//! * **Shutdown** ([`BrowseAnnouncer::shut_down`]): one HostAnnouncement with server type 0, so
//!   the master drops the server at once; then nothing more. Send it before the names are
//!   released.
//! * Every other browser frame (elections, backup lists, master and domain announcements,
//!   requests for other workgroups), every `\MAILSLOT\LANMAN` frame and every logon frame
//!   (`\MAILSLOT\NET\NETLOGON`, `\MAILSLOT\NET\NTLOGON`) is ignored and counted. netbt never takes
//!   part in elections and never registers `<1D>`, `<1E>` or `__MSBROWSE__`.
//!
//! The announcer only decides and builds the browser frame; the node wraps it in a mailslot
//! write and sends it through the [`crate::datagram_service::DatagramService`].

use smoltcp::time::{Duration, Instant};

use crate::counter::Counter;
use crate::datagram_service::{Inbound, Rng};
use crate::name_service::{NameService, NameState};
use crate::wire::browser::{self, ANNOUNCEMENT_LEN, Announcement, ServerType};
use crate::wire::name::Name;
use crate::wire::smb_mailslot;

/// Longest comment (the draft browser specification's limit).
pub const COMMENT_MAX: usize = 43;
/// Longest random delay before the answer to an AnnouncementRequest.
pub const REQUEST_DELAY_MAX: Duration = Duration::from_secs(30);
/// Operating system version we announce (informational; Samba announces the same).
pub const OS_VERSION: (u8, u8) = (6, 1);
/// Suffix of the local master browser's name, where announcements go.
pub const MASTER_BROWSER_SUFFIX: u8 = 0x1d;
/// Suffix of the browser election name, where Samba sends AnnouncementRequest.
pub const BROWSER_ELECTION_SUFFIX: u8 = 0x1e;

/// The interval after announcement number `sent` (0 is the first) on the [MS-BRWS] schedule:
/// 1, 1, 2, 4, 8 minutes, then 12.
pub const fn scheduled_interval(sent: u32) -> Duration {
    let minutes = match sent {
        0 | 1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        _ => 12,
    };
    Duration::from_secs(60 * minutes)
}

/// Counters of the announcer; all wrap on overflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BrowseCounters {
    /// HostAnnouncements handed out to send (the shutdown one included).
    pub announcements_sent: Counter,
    /// Of those, the ones the node could not send (the server name lost, the queue full).
    pub announcements_failed: Counter,
    /// Of those, the ones that answered an AnnouncementRequest.
    pub requested_announcements: Counter,
    /// AnnouncementRequests for our workgroup received.
    pub announcement_requests: Counter,
    /// Other browser frames, ignored.
    pub browser_frames_ignored: Counter,
    /// `\MAILSLOT\LANMAN` frames other than AnnouncementRequest, ignored.
    pub lanman_frames_ignored: Counter,
    /// NETLOGON and NTLOGON frames, ignored.
    pub logon_frames_ignored: Counter,
}

/// Why a comment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentError;

impl core::fmt::Display for CommentError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "a comment is at most {COMMENT_MAX} printable ASCII characters"
        )
    }
}

impl core::error::Error for CommentError {}

/// One HostAnnouncement to send: from `<server><00>` to `<workgroup><1D>` on
/// `\MAILSLOT\BROWSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAnnouncement {
    /// Our name the datagram comes from (`<SERVER><00>`).
    pub source: Name,
    /// `<WG><1D>`.
    pub destination: Name,
    frame: [u8; ANNOUNCEMENT_LEN + COMMENT_MAX + 1],
    len: usize,
}

impl HostAnnouncement {
    /// The mailslot, [`smb_mailslot::BROWSE`].
    pub const MAILSLOT: &'static [u8] = smb_mailslot::BROWSE;

    /// The browser frame.
    pub fn frame(&self) -> &[u8] {
        &self.frame[..self.len]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No workgroup, or its names are not registered yet.
    Waiting,
    Announcing {
        workgroup: Name,
        server: Name,
        /// Announcements sent on the schedule.
        sent: u32,
        next_at: Instant,
        /// An announcement asked for by an AnnouncementRequest.
        extra_at: Option<Instant>,
    },
    /// Shut down: the last announcement (type 0) went out.
    Stopped,
}

/// The browse announcer; see the module documentation.
#[derive(Debug)]
pub struct BrowseAnnouncer {
    comment: heapless::Vec<u8, COMMENT_MAX>,
    interval: Option<Duration>,
    state: State,
    rng: Rng,
    counters: BrowseCounters,
}

impl BrowseAnnouncer {
    /// An announcer with no comment, on the [MS-BRWS] schedule. `seed` must come from real
    /// entropy (the delay before answering an AnnouncementRequest).
    pub fn new(seed: u64) -> BrowseAnnouncer {
        BrowseAnnouncer {
            comment: heapless::Vec::new(),
            interval: None,
            state: State::Waiting,
            rng: Rng::new(seed),
            counters: BrowseCounters::default(),
        }
    }

    /// Sets the comment the browse list shows: at most [`COMMENT_MAX`] printable ASCII
    /// characters.
    pub fn set_comment(&mut self, comment: &[u8]) -> Result<(), CommentError> {
        if !comment.iter().all(|b| matches!(b, b' '..=b'~')) {
            return Err(CommentError);
        }
        self.comment = heapless::Vec::from_slice(comment).map_err(|_| CommentError)?;
        Ok(())
    }

    /// The comment.
    pub fn comment(&self) -> &[u8] {
        &self.comment
    }

    /// A fixed interval between announcements instead of the [MS-BRWS] schedule (`None`: the
    /// schedule). Zero is taken as one second.
    pub fn set_interval(&mut self, interval: Option<Duration>) {
        self.interval = interval.map(|i| i.max(Duration::from_secs(1)));
    }

    /// The fixed interval, if one replaces the schedule.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Counts an announcement handed out that could not be sent.
    pub fn count_failed(&mut self) {
        self.counters.announcements_failed.bump();
    }

    /// The counters.
    pub fn counters(&self) -> &BrowseCounters {
        &self.counters
    }

    /// The workgroup we announce in, once announcing.
    pub fn workgroup(&self) -> Option<Name> {
        match self.state {
            State::Announcing { workgroup, .. } => Some(workgroup),
            _ => None,
        }
    }

    /// When the next announcement is due (scheduled or requested), while announcing.
    pub fn next_due(&self) -> Option<Instant> {
        match self.state {
            State::Announcing {
                next_at, extra_at, ..
            } => Some(extra_at.map_or(next_at, |extra| extra.min(next_at))),
            _ => None,
        }
    }

    /// When [`BrowseAnnouncer::poll`] next has work (while waiting for the names, the name
    /// service's own timers wake the node).
    pub fn poll_at(&self) -> Option<Instant> {
        self.next_due()
    }

    fn interval_after(&self, sent: u32) -> Duration {
        self.interval.unwrap_or(scheduled_interval(sent))
    }

    /// Starts once the workgroup and the server name are registered; returns the announcement
    /// due at `now`, if any. Call until it returns `None`.
    pub fn poll(&mut self, now: Instant, names: &NameService) -> Option<HostAnnouncement> {
        if self.state == State::Waiting {
            let (workgroup, server) = registered_names(names)?;
            net_debug!("announcing {} in workgroup {}", server, workgroup);
            self.state = State::Announcing {
                workgroup,
                server,
                sent: 0,
                next_at: now,
                extra_at: None,
            };
        }
        let State::Announcing {
            workgroup,
            server,
            sent,
            next_at,
            extra_at,
        } = self.state
        else {
            return None;
        };
        // One announcement either way: the scheduled one (which answers a pending request
        // too), or the requested one, which leaves the schedule alone.
        let (sent, next_at, interval) = if next_at <= now {
            let interval = self.interval_after(sent);
            (sent.saturating_add(1), now + interval, interval)
        } else if extra_at.is_some_and(|at| at <= now) {
            (sent, next_at, self.interval_after(sent.saturating_sub(1)))
        } else {
            return None;
        };
        self.state = State::Announcing {
            workgroup,
            server,
            sent,
            next_at,
            extra_at: None,
        };
        if extra_at.is_some() {
            self.counters.requested_announcements.bump();
        }
        Some(self.announcement(workgroup, server, interval, ServerType::NETBT))
    }

    /// Stops announcing; returns the last announcement, with server type 0, if we were
    /// announcing.
    pub fn shut_down(&mut self) -> Option<HostAnnouncement> {
        let state = core::mem::replace(&mut self.state, State::Stopped);
        let State::Announcing {
            workgroup,
            server,
            sent,
            ..
        } = state
        else {
            return None;
        };
        let interval = self.interval_after(sent.saturating_sub(1));
        Some(self.announcement(workgroup, server, interval, ServerType(0)))
    }

    /// Looks at a datagram in our scope: an AnnouncementRequest for our workgroup schedules an
    /// extra announcement; other browser, LANMAN and logon frames are counted. Mailslots of
    /// other names are not the announcer's business.
    pub fn receive(&mut self, inbound: Inbound<'_>, now: Instant) {
        let Ok(write) =
            smb_mailslot::Repr::parse(&smb_mailslot::Packet::new_unchecked(inbound.data))
        else {
            return;
        };
        let mailslot = write.mailslot;
        let lanman = mailslot.eq_ignore_ascii_case(smb_mailslot::LANMAN);
        if mailslot.eq_ignore_ascii_case(smb_mailslot::NETLOGON)
            || mailslot.eq_ignore_ascii_case(smb_mailslot::NTLOGON)
        {
            self.counters.logon_frames_ignored.bump();
            return;
        }
        if !lanman && !mailslot.eq_ignore_ascii_case(smb_mailslot::BROWSE) {
            return;
        }
        let frame = browser::Repr::parse(&browser::Packet::new_unchecked(write.data));
        let for_our_workgroup = self.workgroup().is_some_and(|workgroup| {
            inbound.destination.with_suffix(0) == workgroup
                && matches!(inbound.destination.suffix(), 0x00 | BROWSER_ELECTION_SUFFIX)
        });
        match frame {
            Ok(browser::Repr::AnnouncementRequest { .. }) if for_our_workgroup => {
                self.counters.announcement_requests.bump();
                self.schedule_extra(now);
            }
            _ if lanman => self.counters.lanman_frames_ignored.bump(),
            _ => self.counters.browser_frames_ignored.bump(),
        }
    }

    fn schedule_extra(&mut self, now: Instant) {
        let delay = Duration::from_millis(u64::from(
            self.rng.up_to(REQUEST_DELAY_MAX.total_millis() as u32),
        ));
        if let State::Announcing { extra_at, .. } = &mut self.state {
            let at = now + delay;
            *extra_at = Some(extra_at.map_or(at, |earlier| earlier.min(at)));
            net_debug!(
                "announcement requested: one more in {} ms",
                delay.total_millis()
            );
        }
    }

    fn announcement(
        &mut self,
        workgroup: Name,
        server: Name,
        periodicity: Duration,
        server_type: ServerType,
    ) -> HostAnnouncement {
        let repr = browser::Repr::HostAnnouncement(Announcement {
            update_count: 0,
            periodicity_ms: u32::try_from(periodicity.total_millis()).unwrap_or(u32::MAX),
            server_name: server.base(),
            os_version: OS_VERSION,
            server_type,
            browser_version: browser::BROWSER_VERSION,
            signature: browser::SIGNATURE,
            comment: &self.comment,
        });
        // Emitted in place, into the announcement returned.
        let mut announcement = HostAnnouncement {
            source: server,
            destination: workgroup.with_suffix(MASTER_BROWSER_SUFFIX),
            frame: [0; ANNOUNCEMENT_LEN + COMMENT_MAX + 1],
            len: repr.buffer_len(),
        };
        repr.emit(&mut announcement.frame);
        self.counters.announcements_sent.bump();
        announcement
    }
}

/// The workgroup (the first group name with suffix 0x00) and the server name (the first
/// unique name with suffix 0x00), if both are registered.
fn registered_names(names: &NameService) -> Option<(Name, Name)> {
    let table = names.names();
    let workgroup = table.iter().find(|n| n.group && n.name.suffix() == 0)?;
    let server = table.iter().find(|n| !n.group && n.name.suffix() == 0)?;
    (workgroup.state == NameState::Active && server.state == NameState::Active)
        .then_some((workgroup.name, server.name))
}

#[cfg(test)]
mod tests;
