//! `netbt status` as text: a header line, then tables of names and sessions, then the ledger
//! and the counters one `key  value` line each, in the document's order.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::status::Status;

/// The status as text: a header line, then Names, Sessions, Ledger and Counters.
pub fn render_text(status: &Status) -> String {
    let mut out = String::new();
    header(&mut out, status);

    out.push_str("\nNames\n");
    let wins = status.wins.is_some();
    let rows: Vec<Vec<String>> = status
        .names
        .iter()
        .map(|name| {
            let listener = status.listeners.iter().find(|l| l.name == name.name);
            let sessions = match (name.listening, listener.and_then(|l| l.calling.as_ref())) {
                (true, Some(calling)) => format!("listening (from {calling} only)"),
                (true, None) => "listening".to_string(),
                (false, _) => "-".to_string(),
            };
            let mut row = vec![
                name.name.clone(),
                if name.group { "group" } else { "unique" }.to_string(),
                name.state.clone(),
                sessions,
            ];
            if wins {
                row.extend(wins_cells(name.wins.as_ref()));
            }
            row
        })
        .collect();
    let mut columns = vec!["NAME", "TYPE", "STATE", "SESSIONS"];
    if wins {
        columns.extend(["WINS", "SERVER", "TTL s", "NEXT IN s"]);
    }
    table(&mut out, &columns, &rows);

    out.push_str("\nSessions\n");
    let forwarded = status.sessions.iter().any(|s| s.backend.is_some());
    let rows: Vec<Vec<String>> = status
        .sessions
        .iter()
        .map(|s| {
            let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_string());
            let mut row = vec![
                s.slot.to_string(),
                s.role.clone(),
                s.phase.clone(),
                shown(&s.peer),
                shown(&s.called),
                shown(&s.calling),
            ];
            if forwarded {
                row.push(shown(&s.backend));
            }
            row.extend([
                seconds(s.age_ms),
                s.bytes_in.to_string(),
                s.bytes_out.to_string(),
            ]);
            row
        })
        .collect();
    let mut columns = vec!["SLOT", "ROLE", "PHASE", "PEER", "CALLED", "CALLING"];
    if forwarded {
        columns.push("BACKEND");
    }
    columns.extend(["AGE s", "IN", "OUT"]);
    table(&mut out, &columns, &rows);

    out.push_str("\nLedger\n");
    let mut ledger = fields(&status.ledger);
    if !status.retarget.is_empty() {
        ledger.push((
            "retarget_to".to_string(),
            Field::Value(status.retarget.join(" ")),
        ));
    }
    key_values(&mut out, "  ", &ledger);

    out.push_str("\nBrowse\n");
    browse(&mut out, status);

    out.push_str("\nCounters\n");
    let counters = &status.counters;
    for (title, block) in [
        ("session service (TCP 139)", fields(&counters.sessions)),
        ("name service (UDP 137)", fields(&counters.names)),
        (
            "node status statistics (RFC 1002)",
            fields(&counters.node_status),
        ),
        ("TAP device (kernel side)", fields(&counters.tap)),
        ("datagram service (UDP 138)", fields(&counters.datagrams)),
        ("browse announcer", fields(&counters.browse)),
    ]
    .into_iter()
    .chain(
        status
            .wins
            .as_ref()
            .map(|wins| ("WINS client", fields(&wins.counters))),
    ) {
        let _ = writeln!(out, "  {title}");
        key_values(&mut out, "    ", &block);
    }
    out
}

/// `netbt 0.1.0 (pid 42) on tap0 192.168.69.1/24 02:00:00:00:00:01, up 12.3 s, ready`.
fn header(out: &mut String, status: &Status) {
    let scope = if status.scope.is_empty() {
        String::new()
    } else {
        format!(" scope {}", status.scope)
    };
    let state = if status.stopping {
        "stopping"
    } else if status.ready {
        "ready"
    } else {
        "registering"
    };
    let wins = match &status.wins {
        Some(wins) => format!(", {}-node, WINS {}", wins.node_type, wins.servers.join(" ")),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "netbt {} (pid {}) on {} {} {}{scope}{wins}, up {} s, {state}",
        status.netbt,
        status.pid,
        status.tap,
        status.address,
        status.mac,
        seconds(status.uptime_ms),
    );
}

/// A name's WINS columns: state, server, TTL granted, time to the next refresh (or, in
/// Conflict, to the next try).
fn wins_cells(row: Option<&super::status::WinsRow>) -> [String; 4] {
    let Some(row) = row else {
        return ["-", "-", "-", "-"].map(String::from);
    };
    [
        row.state.clone(),
        row.server.clone().unwrap_or_else(|| "-".to_string()),
        if row.ttl == 0 {
            "-".to_string()
        } else {
            row.ttl.to_string()
        },
        row.refresh_in_ms
            .or(row.retry_in_ms)
            .map_or_else(|| "-".to_string(), seconds),
    ]
}

/// The browse announcer: workgroup, comment, schedule, announcements, the next one.
fn browse(out: &mut String, status: &Status) {
    let b = &status.browse;
    let schedule = match b.interval_s {
        Some(secs) => format!("every {secs} s (--announce-interval)"),
        None => "MS-BRWS (1, 1, 2, 4, 8, then 12 min)".to_string(),
    };
    let next = b
        .next_announcement_ms
        .map_or_else(|| "-".to_string(), |ms| format!("in {} s", seconds(ms)));
    let rows = [
        (
            "workgroup",
            b.workgroup
                .clone()
                .unwrap_or_else(|| "- (not announcing)".to_string()),
        ),
        ("comment", b.comment.clone()),
        ("schedule", schedule),
        ("announcements sent", b.announcements_sent.to_string()),
        ("next announcement", next),
    ];
    for (key, value) in rows {
        let line = format!("  {key:<18}  {value}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// Milliseconds as seconds with one decimal.
fn seconds(ms: u64) -> String {
    format!("{}.{}", ms / 1000, ms % 1000 / 100)
}

/// Columns padded to their widest cell; the last column is not padded. `(none)` for no rows.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from("  ");
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let gap = if i == 0 { "" } else { "  " };
            let _ = write!(line, "{gap}{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `key  value` lines, keys with spaces for underscores, values aligned; a nested struct is a
/// heading with its fields indented below it.
fn key_values(out: &mut String, indent: &str, fields: &[(String, Field)]) {
    let width = fields
        .iter()
        .filter(|(_, f)| matches!(f, Field::Value(_)))
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    for (key, field) in fields {
        let key = key.replace('_', " ");
        match field {
            Field::Value(value) => {
                let _ = writeln!(out, "{indent}{key:<width$}  {value}");
            }
            Field::Group(inner) => {
                let _ = writeln!(out, "{indent}{key}");
                key_values(out, &format!("{indent}  "), inner);
            }
        }
    }
}

/// One field of a struct as text: its value, or its own fields when it is a struct.
#[derive(Debug, PartialEq)]
enum Field {
    Value(String),
    Group(Vec<(String, Field)>),
}

/// The fields of `value` in declaration order, as serde sees them. (A `serde_json::Value`
/// would sort the keys.)
fn fields<T: Serialize>(value: &T) -> Vec<(String, Field)> {
    let fields = serde_json::to_string(value).and_then(|json| serde_json::from_str(&json));
    match fields {
        Ok(Field::Group(fields)) => fields,
        _ => Vec::new(),
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, string, boolean, null, array or object")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
        Ok(Field::Value(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Value(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Value(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
        Ok(Field::Value(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Value(v.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Value("-".to_string()))
    }

    /// An array of bytes (UNIT_ID) is written as a MAC address is; others comma-separated.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            items.push(item);
        }
        let bytes: Option<Vec<u8>> = items
            .iter()
            .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect();
        let text = match bytes {
            Some(bytes) if !bytes.is_empty() => bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            _ => items
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        Ok(Field::Value(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        let mut fields = Vec::new();
        while let Some(entry) = map.next_entry::<String, Field>()? {
            fields.push(entry);
        }
        Ok(Field::Group(fields))
    }
}
