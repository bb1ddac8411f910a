//! Retarget (RFC 1002 §4.3.5, RETARGET SESSION RESPONSE 0x84): a node at capacity sends the
//! caller to a sibling node instead of refusing it with 0x83.
//!
//! [`Retargets`] is the fixed list of siblings ([`SessionConfig::retarget`]); each retarget
//! names the next one, round robin. Only a capacity refusal is turned into a retarget: a
//! request on a refusal slot for a name the node listens on (what would be 0x83 0x83). Every
//! other refusal keeps its code, and the refusal slots take SYNs only after the refusal delay,
//! as without retargets. The caller is then drained like a refused one (it closes first, or
//! is closed after [`SessionConfig::drain_timeout`]).
//!
//! [`SessionConfig::retarget`]: super::SessionConfig::retarget
//! [`SessionConfig::drain_timeout`]: super::SessionConfig::drain_timeout

use super::shards::Shards;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use super::request::{SHORT_FRAME, short_frame};
use super::service::SessionService;
use super::slot::Phase;
use super::types::SessionEvent;
use crate::wire::name::Name;
use crate::wire::nbss::{self, NegativeCode};

/// Siblings a [`Retargets`] list holds at most.
pub const MAX_RETARGETS: usize = 8;

/// A sibling node a RETARGET SESSION RESPONSE names: an IPv4 address and a TCP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sibling {
    /// Its address.
    pub address: Ipv4Address,
    /// Its session service port (139 for a NetBT node).
    pub port: u16,
}

impl core::fmt::Display for Sibling {
    /// `192.168.69.2:139`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.address, self.port)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Sibling {
    /// `192.168.69.2:139`, as [`Display`](core::fmt::Display).
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}:{=u16}", self.address, self.port)
    }
}

/// The siblings a node at capacity retargets callers to, in order (at most
/// [`MAX_RETARGETS`]; empty: refuse with 0x83). Fixed size, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retargets {
    siblings: [Sibling; MAX_RETARGETS],
    len: u8,
}

/// [`Retargets::push`] on a full list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRetargets;

impl core::fmt::Display for TooManyRetargets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "at most {MAX_RETARGETS} retarget siblings")
    }
}

impl core::error::Error for TooManyRetargets {}

impl Retargets {
    /// No sibling: capacity refusals stay 0x83.
    pub const NONE: Retargets = Retargets {
        siblings: [Sibling {
            address: Ipv4Address::UNSPECIFIED,
            port: 0,
        }; MAX_RETARGETS],
        len: 0,
    };

    /// Appends `sibling` (after those given before it in the round).
    pub fn push(&mut self, sibling: Sibling) -> Result<(), TooManyRetargets> {
        let slot = self
            .siblings
            .get_mut(usize::from(self.len))
            .ok_or(TooManyRetargets)?;
        *slot = sibling;
        self.len += 1;
        Ok(())
    }

    /// The siblings, in order.
    pub fn as_slice(&self) -> &[Sibling] {
        &self.siblings[..usize::from(self.len)]
    }

    /// Whether there is no sibling.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sibling the `n`-th retarget (from 0) names: round robin over the list.
    pub fn nth(&self, n: u32) -> Option<Sibling> {
        let siblings = self.as_slice();
        if siblings.is_empty() {
            return None;
        }
        siblings.get(n as usize % siblings.len()).copied()
    }
}

impl Default for Retargets {
    fn default() -> Self {
        Retargets::NONE
    }
}

impl<'a> SessionService<'a> {
    /// Answers the request on slot `index` (for `called`, a name we listen on, that found every
    /// session slot busy) with a RETARGET SESSION RESPONSE naming the next sibling, and drains
    /// the caller like a refused one. Without siblings, refuses it with 0x83.
    pub(super) fn retarget(
        &mut self,
        index: usize,
        now: Instant,
        sockets: &mut Shards<'a>,
        called: Name,
    ) {
        // The count of retargets so far is the round robin's position.
        let Some(to) = self.config.retarget.nth(self.counters.retargets.get()) else {
            let code = NegativeCode::InsufficientResources;
            return self.refuse(index, now, sockets, Some(called), code);
        };
        let slot = &mut self.ledger[index];
        let Some(handle) = slot.handle() else { return };
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        let mut buffer = [0; SHORT_FRAME];
        let response = nbss::Repr::RetargetResponse {
            address: to.address,
            port: to.port,
        };
        let _ = socket.send_slice(short_frame(response, &mut buffer));
        slot.called = Some(called);
        slot.enter(Phase::Draining, Some(now + self.config.drain_timeout));
        self.counters.retargets.bump();
        if let Some(peer) = slot.peer {
            self.note(SessionEvent::Retargeted { peer, called, to });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_RETARGETS, Retargets, Sibling, TooManyRetargets};
    use smoltcp::wire::Ipv4Address;
    use std::string::ToString;

    fn sibling(last: u8) -> Sibling {
        Sibling {
            address: Ipv4Address::new(192, 168, 69, last),
            port: 139,
        }
    }

    #[test]
    fn siblings_take_turns_in_the_order_given() {
        let mut list = Retargets::NONE;
        assert!(list.is_empty());
        assert_eq!(list.nth(0), None);
        list.push(sibling(2)).unwrap();
        list.push(sibling(3)).unwrap();
        assert_eq!(list.as_slice(), [sibling(2), sibling(3)]);
        let turns: [_; 5] =
            core::array::from_fn(|n| list.nth(n as u32).unwrap().address.octets()[3]);
        assert_eq!(turns, [2, 3, 2, 3, 2]);
        // The count wraps at u32::MAX; the turn is still one of the list.
        assert!(list.nth(u32::MAX).is_some());
    }

    #[test]
    fn a_full_list_refuses_one_more() {
        let mut list = Retargets::default();
        for last in 0..MAX_RETARGETS as u8 {
            list.push(sibling(10 + last)).unwrap();
        }
        assert_eq!(list.push(sibling(99)), Err(TooManyRetargets));
        assert_eq!(list.as_slice().len(), MAX_RETARGETS);
        assert_eq!(list.nth(MAX_RETARGETS as u32), Some(sibling(10)));
        assert_eq!(TooManyRetargets.to_string(), "at most 8 retarget siblings");
    }

    #[test]
    fn a_sibling_displays_as_address_and_port() {
        assert_eq!(sibling(2).to_string(), "192.168.69.2:139");
    }
}
