//! `netbt query NAME[#XX]`: asks the running daemon to resolve a name the way its node type
//! says (B: broadcast; P: WINS; M: broadcast, then WINS; H: WINS, then broadcast) and prints
//! the owners and who answered.
//!
//! The request is `query ENCODED` (the name first-level encoded: no spaces on the line); the
//! answer is a [`QueryReply`] document.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use netbt::name_service::{AnsweredBy, Resolution};
use netbt::wire::name::Name;
use netbt::wire::nbns::NodeType;
use serde::{Deserialize, Serialize};

use super::client::{ask, find_socket};
use super::status::ErrorReply;

/// How long `netbt query` waits for the daemon (its bound, and a little more).
const QUERY_TIMEOUT: StdDuration = StdDuration::from_secs(17);

/// The answer to `query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryReply {
    /// `LABSRV<20>`.
    pub name: String,
    /// Someone owns it.
    pub found: bool,
    /// `local`, `wins` or `broadcast` (absent when not found).
    pub answered_by: Option<String>,
    /// The WINS server or the node that answered (absent for `local`).
    pub from: Option<String>,
    /// TTL of the answer, in seconds.
    pub ttl: Option<u32>,
    /// The owners.
    pub addresses: Vec<Owner>,
    /// Not found: a WINS server that said so (NAM_ERR).
    pub denied_by: Option<String>,
    /// Not found: the segment was asked by broadcast.
    pub broadcast: bool,
}

/// One owner of a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Its address.
    pub address: String,
    /// The name is a group name.
    pub group: bool,
    /// Its node type: B, P, M or H.
    pub node_type: String,
}

impl QueryReply {
    /// The document for `name`'s `resolution`.
    pub fn new(name: Name, resolution: &Resolution) -> QueryReply {
        match resolution {
            Resolution::Found { by, ttl, entries } => {
                let (answered_by, from) = match by {
                    AnsweredBy::Local => ("local", None),
                    AnsweredBy::Wins(server) => ("wins", Some(server.to_string())),
                    AnsweredBy::Broadcast(node) => ("broadcast", Some(node.to_string())),
                };
                QueryReply {
                    name: name.to_string(),
                    found: true,
                    answered_by: Some(answered_by.to_string()),
                    from,
                    ttl: Some(*ttl),
                    addresses: entries
                        .iter()
                        .map(|e| Owner {
                            address: e.address.to_string(),
                            group: e.flags.is_group(),
                            node_type: node_type(e.flags.node_type()).to_string(),
                        })
                        .collect(),
                    denied_by: None,
                    broadcast: false,
                }
            }
            Resolution::NotFound {
                denied_by,
                broadcast,
            } => QueryReply {
                name: name.to_string(),
                found: false,
                answered_by: None,
                from: None,
                ttl: None,
                addresses: Vec::new(),
                denied_by: denied_by.map(|s| s.to_string()),
                broadcast: *broadcast,
            },
        }
    }

    /// The document as the daemon sends it.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("the reply serializes");
        out.push('\n');
        out
    }

    /// As text: one line per owner, `LABSRV<20> 192.168.69.2 unique H-node (wins
    /// 192.168.69.50, ttl 300 s)`.
    pub fn render_text(&self) -> String {
        let source = match (&self.answered_by, &self.from) {
            (Some(by), Some(from)) => format!("{by} {from}"),
            (Some(by), None) => by.clone(),
            _ => "-".to_string(),
        };
        let ttl = self.ttl.map(|t| format!(", ttl {t} s")).unwrap_or_default();
        self.addresses
            .iter()
            .map(|owner| {
                format!(
                    "{} {} {} {}-node ({source}{ttl})\n",
                    self.name,
                    owner.address,
                    if owner.group { "group" } else { "unique" },
                    owner.node_type
                )
            })
            .collect()
    }

    /// The one line for a name nobody owns.
    pub fn not_found_line(&self) -> String {
        let mut asked = Vec::new();
        if let Some(server) = &self.denied_by {
            asked.push(format!("WINS {server} says NAM_ERR"));
        }
        if self.broadcast {
            asked.push("no answer to broadcast".to_string());
        }
        if asked.is_empty() {
            asked.push("no WINS server answered".to_string());
        }
        format!("{}: not found ({})", self.name, asked.join("; "))
    }
}

fn node_type(node_type: NodeType) -> &'static str {
    match node_type {
        NodeType::B => "B",
        NodeType::P => "P",
        NodeType::M => "M",
        NodeType::H => "H",
    }
}

/// `netbt query`: prints the owners (or with `json` the document as it came); a name nobody
/// owns, like every failure, is an error of one line for exit 1.
pub fn print_query(
    control: Option<PathBuf>,
    tap: &str,
    name: Name,
    json: bool,
) -> Result<(), String> {
    let path = find_socket(control, tap)?;
    let encoded = String::from_utf8_lossy(&name.encode()).into_owned();
    let reply = ask(&path, &format!("query {encoded}"), QUERY_TIMEOUT)?;
    let shown = path.display();
    if let Ok(refusal) = serde_json::from_str::<ErrorReply>(&reply) {
        return Err(format!("the daemon at {shown} refused: {}", refusal.error));
    }
    let answer: QueryReply = serde_json::from_str(&reply)
        .map_err(|e| format!("the daemon at {shown} sent an unreadable answer: {e}"))?;
    let out = if json {
        reply.clone()
    } else {
        answer.render_text()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the answer: {e}"))?;
    if answer.found {
        Ok(())
    } else {
        Err(answer.not_found_line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbt::wire::nbns::{AddrEntry, NbFlags};
    use smoltcp::wire::Ipv4Address;

    #[test]
    fn replies_read_back_and_render() {
        let name = Name::parse_text("LABSRV", 0x20).unwrap();
        let mut entries = heapless::Vec::new();
        entries
            .push(AddrEntry {
                flags: NbFlags::new(false, NodeType::H),
                address: Ipv4Address::new(192, 168, 69, 2),
            })
            .unwrap();
        let found = QueryReply::new(
            name,
            &Resolution::Found {
                by: AnsweredBy::Wins(Ipv4Address::new(192, 168, 69, 50)),
                ttl: 300,
                entries,
            },
        );
        let parsed: QueryReply = serde_json::from_str(&found.to_json()).unwrap();
        assert_eq!(parsed, found);
        assert_eq!(
            found.render_text(),
            "LABSRV<20> 192.168.69.2 unique H-node (wins 192.168.69.50, ttl 300 s)\n"
        );
        let missing = QueryReply::new(
            name,
            &Resolution::NotFound {
                denied_by: Some(Ipv4Address::new(192, 168, 69, 50)),
                broadcast: true,
            },
        );
        assert_eq!(
            missing.not_found_line(),
            "LABSRV<20>: not found (WINS 192.168.69.50 says NAM_ERR; no answer to broadcast)"
        );
        assert_eq!(missing.render_text(), "");
    }
}
