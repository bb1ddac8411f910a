//! The `netbt` binary's command line: help, version, the name codec, usage errors.

use std::process::{Command, Output};

fn netbt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netbt"))
        .args(args)
        .output()
        .expect("run netbt")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn version_and_help() {
    let version = netbt(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        format!("netbt {}", env!("CARGO_PKG_VERSION"))
    );
    let help = netbt(&["--help"]);
    assert!(help.status.success());
    assert!(stdout(&help).contains("Usage: netbt"));
}

#[test]
fn encodes_rfc_vectors() {
    let out = netbt(&["encode", "*SMBSERVER#20", "fred#20", "FRED"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "*SMBSERVER<20>\tCKFDENECFDEFFCFGEFFCCACACACACACA\n\
         FRED<20>\tEGFCEFEECACACACACACACACACACACACA\n\
         FRED<00>\tEGFCEFEECACACACACACACACACACACAAA\n"
    );
    let scoped = netbt(&["encode", "FRED#20", "--scope", "netbios.com"]);
    assert_eq!(
        stdout(&scoped),
        "FRED<20>.NETBIOS.COM\tEGFCEFEECACACACACACACACACACACACA.NETBIOS.COM\n"
    );
    let decoded = netbt(&["decode", "CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
    assert_eq!(stdout(&decoded), "*<00>\n");
}

#[test]
fn bad_usage_exits_2_with_one_clear_line() {
    for args in [
        &["encode", "ABCDEFGHIJKLMNOPQ"][..],
        &["encode", "LABSRV#2G"],
        &["encode", "X", "--scope", "a..b"],
        &["decode", "CKAAQ"],
        &["no-such-command"],
        &[],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.trim().is_empty(), "{args:?} says why");
    }
    let long = netbt(&["encode", "ABCDEFGHIJKLMNOPQ"]);
    assert_eq!(
        String::from_utf8_lossy(&long.stderr).trim(),
        "netbt: \"ABCDEFGHIJKLMNOPQ\": NetBIOS name is longer than 15 characters"
    );
}

#[test]
fn serve_on_a_missing_tap_exits_2_and_says_how_to_create_it() {
    let out = netbt(&["serve", "--tap", "netbt-no-such-tap9"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("netbt-no-such-tap9"), "{stderr}");
    assert!(
        stderr.contains("ip tuntap add dev netbt-no-such-tap9 mode tap"),
        "{stderr}"
    );
    // Nothing was created.
    assert!(!std::path::Path::new("/sys/class/net/netbt-no-such-tap9").exists());
}

#[test]
fn serve_rejects_bad_session_options_with_exit_2() {
    for args in [
        &["serve", "--sessions", "0"][..],
        &["serve", "--sessions", "65001"],
        &["serve", "--session-buffer", "100"],
        &["serve", "--request-timeout", "-1"],
        &["serve", "--handler", "teleport"],
        &["serve", "--allow-calling", "MUCHTOOLONGNAME123"],
        &["serve", "--refusal-delay", "10001"],
        &["serve", "--refusal-delay", "1.5"],
        &["serve", "--syn-backlog", "8193"],
        &["serve", "--syn-backlog", "-1"],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn bad_retarget_siblings_exit_2_with_a_clear_error() {
    for (args, says) in [
        (
            &["serve", "--retarget", "192.168.69.2"][..],
            "is not IP:PORT",
        ),
        (&["serve", "--retarget", "192.168.69.2:0"], "is not a port"),
        (
            &["serve", "--retarget", "nowhere:139"],
            "is not an IPv4 address",
        ),
        (
            &["serve", "--retarget", "0.0.0.0:139"],
            "is not a node's address",
        ),
        (
            &[
                "serve",
                "--ip",
                "192.168.69.1/24",
                "--retarget",
                "192.168.69.1:139",
            ],
            "this node itself",
        ),
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(says), "{args:?}: {says:?} not in {err:?}");
    }
    let mut nine = vec!["serve", "--tap", "netbt-no-such-tap9"];
    for _ in 0..9 {
        nine.extend(["--retarget", "192.168.69.2:139"]);
    }
    let out = netbt(&nine);
    assert_eq!(out.status.code(), Some(2));
    // One line, before the TAP is opened.
    assert_eq!(
        stderr(&out).trim(),
        "netbt: --retarget given 9 times: at most 8"
    );
}

/// A fresh directory for one test's sockets (removed by the caller).
fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netbt-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit 1 and exactly one line on stderr that contains every one of `needles`.
#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
}

#[test]
fn status_without_a_daemon_exits_1_naming_the_path() {
    let out = netbt(&["status", "--control", "/nonexistent/netbt.sock"]);
    assert_fails_with(&out, &["/nonexistent/netbt.sock", "no netbt daemon"]);

    // No --control and nothing at any default place for this TAP: every place is named.
    let out = netbt(&["status", "--tap", "nbtnotap0"]);
    assert_fails_with(&out, &["/run/netbt/nbtnotap0", "/tmp/netbt-nbtnotap0"]);

    let dir = scratch("stale");
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let out = netbt(&["status", "--control", stale.to_str().unwrap(), "--json"]);
    assert_fails_with(&out, &[stale.to_str().unwrap(), "no netbt daemon answers"]);

    let file = dir.join("plain");
    std::fs::write(&file, "").unwrap();
    let out = netbt(&["status", "--control", file.to_str().unwrap()]);
    assert_fails_with(&out, &[file.to_str().unwrap(), "not a socket"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Answers up to `connections` requests on `path` with `reply`, returning the request lines;
/// gives up after 10 s without a client, so a client that never connects fails the test
/// instead of hanging it.
fn fake_daemon(
    path: &std::path::Path,
    reply: &'static str,
    connections: usize,
) -> std::thread::JoinHandle<Vec<String>> {
    use std::io::{BufRead, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let mut requests = Vec::new();
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while requests.len() < connections && std::time::Instant::now() < give_up {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(e) => panic!("accept: {e}"),
            };
            stream.set_nonblocking(false).expect("blocking");
            let mut line = String::new();
            std::io::BufReader::new(&stream)
                .read_line(&mut line)
                .expect("request");
            requests.push(line);
            (&stream).write_all(reply.as_bytes()).expect("reply");
        }
        requests
    })
}

const STATUS: &str = r#"{
  "netbt": "0.1.0",
  "pid": 7,
  "tap": "tap0",
  "address": "192.168.69.1/24",
  "mac": "02:00:00:00:00:01",
  "scope": "",
  "uptime_ms": 1500,
  "ready": true,
  "stopping": false,
  "names": [
    {
      "name": "LABSRV<20>",
      "suffix": 32,
      "group": false,
      "state": "Registered",
      "listening": true
    }
  ],
  "listeners": [
    {
      "name": "LABSRV<20>",
      "calling": null
    }
  ],
  "sessions": [
    {
      "slot": 1,
      "generation": 2,
      "role": "session",
      "phase": "Established",
      "peer": "192.168.69.100:40000",
      "called": "LABSRV<20>",
      "calling": "PROBE<00>",
      "age_ms": 900,
      "bytes_in": 5,
      "bytes_out": 5
    }
  ],
  "ledger": {
    "session_slots": 8,
    "refusal_slots": 0,
    "free": 7,
    "busy": 0,
    "pending": 0,
    "refusing": 0,
    "closing": 0,
    "waiting": 0,
    "syn_backlog": 0,
    "bytes_per_session_slot": 0,
    "bytes_per_refusal_slot": 0
  },
  "counters": {
    "sessions": {
      "positive": 1,
      "not_listening_on_called": 0,
      "not_listening_for_calling": 0,
      "called_not_present": 0,
      "insufficient_resources": 0,
      "unspecified": 0,
      "gate": {
        "syns_held": 0,
        "syns_dropped": 0,
        "syns_replayed": 0,
        "syns_to_refusal_slots": 0,
        "duplicate_syns_swallowed": 0,
        "resets_sent": 0,
        "strays_acknowledged": 0,
        "strays_dropped": 0,
        "closed_displaced": 0
      },
      "request_timeouts": 0,
      "drains": 0,
      "drain_timeouts": 0,
      "handshakes_expired": 0,
      "aborts_close": 0,
      "aborts_stalled": 0,
      "closes_expired": 0,
      "handovers": 0,
      "handshakes_given_up": 0,
      "idle_given_way": 0,
      "peer_resets": 0,
      "peer_closes": 0,
      "keepalives_sent": 0,
      "keepalives_received": 0,
      "protocol_errors": 0,
      "high_water": 0,
      "events_lost": 0
    },
    "names": {
      "received": 4,
      "malformed": 0,
      "queries_answered": 0,
      "queries_refused": 0,
      "node_status_answered": 0,
      "defences": 0,
      "conflicts": 0,
      "foreign_releases_ignored": 0,
      "unsolicited_conflicts_ignored": 0,
      "unsolicited_responses_ignored": 0,
      "sent": 0,
      "unsent": 0,
      "events_lost": 0
    },
    "node_status": {
      "unit_id": [
        2,
        0,
        0,
        0,
        0,
        1
      ],
      "jumpers": 0,
      "test_result": 0,
      "version_number": 0,
      "period_of_statistics": 0,
      "number_of_crcs": 0,
      "number_alignment_errors": 0,
      "number_of_collisions": 0,
      "number_send_aborts": 0,
      "number_good_sends": 0,
      "number_good_receives": 0,
      "number_retransmits": 0,
      "number_no_resource_conditions": 0,
      "number_free_command_blocks": 0,
      "total_number_command_blocks": 0,
      "max_total_number_command_blocks": 0,
      "number_pending_sessions": 0,
      "max_number_pending_sessions": 0,
      "max_total_sessions_possible": 0,
      "session_data_packet_size": 0
    }
  }
}
"#;

#[test]
fn status_renders_the_daemons_answer() {
    let dir = scratch("render");
    let path = dir.join("netbt.sock");
    let daemon = fake_daemon(&path, STATUS, 2);
    let text = netbt(&["status", "--control", path.to_str().unwrap()]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    for needle in [
        "\nNames\n",
        "LABSRV<20>  unique  Registered  listening",
        "\nSessions\n",
        "1     session  Established  192.168.69.100:40000  LABSRV<20>  PROBE<00>  0.9    5   5",
        "\nLedger\n  session slots           8\n  refusal slots           0\n  free                    7\n",
        "\nCounters\n",
        "    positive                   1\n",
        "    received                       4\n",
        "    unit id                          02:00:00:00:00:01\n",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let json = netbt(&["status", "--control", path.to_str().unwrap(), "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    assert_eq!(stdout(&json), STATUS, "--json prints the document as is");
    assert_eq!(daemon.join().unwrap(), ["status\n", "status\n"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_reports_a_refusal_or_garbage_as_exit_1() {
    let dir = scratch("refusal");
    let path = dir.join("netbt.sock");
    let daemon = fake_daemon(&path, "{\"error\": \"unknown request\"}\n", 1);
    let out = netbt(&["status", "--control", path.to_str().unwrap()]);
    assert_fails_with(&out, &["unknown request"]);
    daemon.join().unwrap();
    std::fs::remove_file(&path).unwrap();

    let daemon = fake_daemon(&path, "{\"names\": [", 1);
    let out = netbt(&["status", "--control", path.to_str().unwrap(), "--json"]);
    assert_fails_with(&out, &["unreadable answer"]);
    daemon.join().unwrap();
    std::fs::remove_file(&path).unwrap();

    // JSON, but not a status document: text needs every field.
    let daemon = fake_daemon(&path, "{\"names\": []}\n", 1);
    let out = netbt(&["status", "--control", path.to_str().unwrap()]);
    assert_fails_with(&out, &["unreadable answer", "missing field"]);
    daemon.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_forward_handlers_exit_2_with_one_line() {
    for handler in [
        "teleport",
        "forward=",
        "forward=127.0.0.1",
        "forward=127.0.0.1:0",
        "forward=:445",
        "forward=backend:port",
    ] {
        // Checked before the TAP is opened: the missing TAP is never reached.
        let out = netbt(&["serve", "--tap", "netbt-no-such-tap9", "--handler", handler]);
        assert_eq!(out.status.code(), Some(2), "{handler}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("netbt: --handler "), "{err}");
        assert!(!err.contains("TAP"), "{err}");
    }
}

#[test]
fn status_and_serve_usage_errors_exit_2() {
    for args in [
        &["status", "--bogus"][..],
        &["status", "--tap", "a/b"],
        &["serve", "--tap", "a/b"],
        &["serve", "--tap", ".."],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn probe_usage_errors_exit_2_with_one_line() {
    for (args, needle) in [
        (&["probe"][..], "netbt probe: give IP and CALLED"),
        (&["probe", "127.0.0.1"], "netbt probe: give IP and CALLED"),
        (
            &["probe", "127.0.0.1", "LABSRV#2G"],
            "netbt probe: CALLED \"LABSRV#2G\"",
        ),
        (
            &[
                "probe",
                "127.0.0.1",
                "LABSRV",
                "--calling",
                "ABCDEFGHIJKLMNOPQ",
            ],
            "netbt probe: --calling \"ABCDEFGHIJKLMNOPQ\"",
        ),
        (
            &["probe", "127.0.0.1", "LABSRV", "--timeout", "0"],
            "netbt probe: --timeout 0",
        ),
        (
            &["probe", "127.0.0.1", "LABSRV", "--echo", "131072"],
            "netbt probe: --echo 131072",
        ),
        (
            &["probe", "malformed", "127.0.0.1", "garbage"],
            "netbt probe: malformed \"garbage\"",
        ),
        (
            &[
                "probe",
                "flood",
                "127.0.0.1",
                "LABSRV",
                "--retry-ms",
                "600:200",
            ],
            "netbt probe: --retry-ms \"600:200\"",
        ),
        (
            &["probe", "silent", "127.0.0.1", "--count", "0"],
            "netbt probe: --count 0",
        ),
        (
            &["probe", "flood", "127.0.0.1", "LABSRV", "--within", "0"],
            "netbt probe: --within 0",
        ),
        (
            &["probe", "slow", "127.0.0.1", "LABSRV", "--interval", "0"],
            "netbt probe: --interval 0",
        ),
        (
            &["probe", "reopen", "127.0.0.1", "--count", "1001"],
            "netbt probe: --count 1001",
        ),
        (
            &["probe", "synflood", "127.0.0.1", "--from", "10.0.0.0/16"],
            "netbt probe: --from \"10.0.0.0/16\"",
        ),
        (
            &["probe", "synflood", "127.0.0.1", "--rate", "0"],
            "netbt probe: --rate 0",
        ),
        (
            &["probe", "churn", "127.0.0.1", "LABSRV", "--echo", "131072"],
            "netbt probe: --echo 131072",
        ),
        (
            &["probe", "churn", "127.0.0.1", "LABSRV", "--count", "0"],
            "netbt probe: --count 0",
        ),
        (
            &["probe", "query-flood", "127.0.0.1", "LABSRV", "--rate", "0"],
            "netbt probe: --rate 0",
        ),
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with(needle), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    // Flags clap rejects: exit 2 too, the error on the first line.
    for args in [
        &["probe", "127.0.0.1", "LABSRV", "--bogus"][..],
        &["probe", "not-an-ip", "LABSRV"],
        &["probe", "query", "LABSRV"],
        &["probe", "node-status", "127.0.0.1", "--wait-free", "x"],
        &["probe", "127.0.0.1", "LABSRV", "--timeout", "soon"],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn probe_help_documents_the_output_keys() {
    let help = stdout(&netbt(&["probe", "--help"]));
    for key in [
        "RESULT=POSITIVE",
        "CODE=0x8N",
        "TO=ip:port",
        "ECHO=OK",
        "STILL_ALIVE",
        "AFTER=",
    ] {
        assert!(help.contains(key), "{key} in {help}");
    }
}

#[test]
fn probe_of_a_closed_port_reports_refused_and_exits_0() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    drop(listener);
    let out = netbt(&["probe", "127.0.0.1", "LABSRV", "--port", &port]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("RESULT=REFUSED MS="),
        "{}",
        stdout(&out)
    );
    // An echo was asked for and could not run: a failed check.
    let out = netbt(&[
        "probe",
        "127.0.0.1",
        "LABSRV",
        "--port",
        &port,
        "--echo",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout(&out);
    assert!(
        doc.starts_with('{') && doc.contains("\"result\":\"REFUSED\""),
        "{doc}"
    );
}

#[test]
fn bad_wins_options_exit_2_with_one_line_before_the_tap_is_opened() {
    for (args, needle) in [
        (&["--node-type", "p"][..], "needs a WINS server"),
        (&["--node-type", "m"], "needs a WINS server"),
        (&["--node-type", "h"], "needs a WINS server"),
        (
            &["--node-type", "x", "--wins", "192.168.69.50"],
            "unknown node type",
        ),
        (
            &["--node-type", "b", "--wins", "192.168.69.50"],
            "uses no WINS server",
        ),
        (
            &[
                "--wins",
                "192.168.69.50",
                "--wins",
                "192.168.69.51",
                "--wins",
                "192.168.69.52",
            ],
            "at most 2",
        ),
        (
            &["--wins-conflict-retry", "5"],
            "--wins-conflict-retry: a B-node has no WINS server to ask",
        ),
    ] {
        let mut all = vec!["serve", "--tap", "netbt-no-such-tap9"];
        all.extend_from_slice(args);
        let out = netbt(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
        assert!(!err.contains("TAP"), "{err}");
    }
    // An address clap cannot read, or a retry wait out of 1..=3600 s: exit 2 too.
    let out = netbt(&["serve", "--wins", "wins.example"]);
    assert_eq!(out.status.code(), Some(2));
    for wait in ["0", "3601", "1.5"] {
        let out = netbt(&[
            "serve",
            "--wins",
            "192.168.69.50",
            "--wins-conflict-retry",
            wait,
        ]);
        assert_eq!(out.status.code(), Some(2), "{wait}");
        assert!(stderr(&out).contains("--wins-conflict-retry"), "{wait}");
    }
    // With a server the node type defaults to h: the start gets as far as the TAP.
    let out = netbt(&[
        "serve",
        "--tap",
        "netbt-no-such-tap9",
        "--wins",
        "192.168.69.50",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot open TAP device"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn query_usage_errors_exit_2_and_no_daemon_exits_1() {
    for args in [
        &["query"][..],
        &["query", "MUCHTOOLONGNAME123"],
        &["query", "LABSRV#2G"],
        &["query", "LABSRV", "--bogus"],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let out = netbt(&["query", "LABSRV", "--control", "/nonexistent/netbt.sock"]);
    assert_fails_with(&out, &["/nonexistent/netbt.sock"]);
}

const FOUND: &str = r#"{
  "name": "LABSRV<20>",
  "found": true,
  "answered_by": "wins",
  "from": "192.168.69.50",
  "ttl": 300,
  "addresses": [
    {
      "address": "192.168.69.2",
      "group": false,
      "node_type": "H"
    }
  ],
  "denied_by": null,
  "broadcast": false
}
"#;

const NOT_FOUND: &str = r#"{
  "name": "NOBODY<20>",
  "found": false,
  "answered_by": null,
  "from": null,
  "ttl": null,
  "addresses": [],
  "denied_by": "192.168.69.50",
  "broadcast": true
}
"#;

#[test]
fn query_prints_the_owners_or_exits_1_with_one_line() {
    let dir = scratch("query");
    let path = dir.join("netbt.sock");
    let daemon = fake_daemon(&path, FOUND, 2);
    let control = path.to_str().unwrap();
    let out = netbt(&["query", "LABSRV", "--control", control]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "LABSRV<20> 192.168.69.2 unique H-node (wins 192.168.69.50, ttl 300 s)\n"
    );
    let out = netbt(&["query", "LABSRV#20", "--control", control, "--json"]);
    assert_eq!(stdout(&out), FOUND);
    // The name goes first-level encoded: no spaces on the request line.
    let requests = daemon.join().unwrap();
    assert_eq!(
        requests, ["query EMEBECFDFCFGCACACACACACACACACACA\n"; 2],
        "{requests:?}"
    );

    std::fs::remove_file(&path).unwrap();
    let daemon = fake_daemon(&path, NOT_FOUND, 1);
    let out = netbt(&["query", "NOBODY", "--control", control]);
    assert_fails_with(
        &out,
        &["NOBODY<20>: not found", "192.168.69.50 says NAM_ERR"],
    );
    daemon.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn datagram_usage_errors_exit_2_with_one_line() {
    let dir = scratch("datagram-usage");
    let missing = dir.join("missing.bin");
    let missing = missing.to_str().unwrap();
    let long = "x".repeat(495);
    for (args, needle) in [
        (
            &["datagram", "send", "--to", "OTHER#20", "--data", "x"][..],
            "netbt datagram send: give --from NAME and --to NAME#XX",
        ),
        (
            &["datagram", "send", "--from", "LABSRV", "--data", "x"],
            "netbt datagram send: give --from NAME and --to NAME#XX",
        ),
        (
            &["datagram", "send", "--from", "LABSRV", "--to", "OTHER"],
            "netbt datagram send: give exactly one of --data TEXT and --file FILE",
        ),
        (
            &[
                "datagram", "send", "--from", "LABSRV", "--to", "OTHER", "--data", "x", "--file",
                missing,
            ],
            "netbt datagram send: give exactly one of --data TEXT and --file FILE",
        ),
        (
            &[
                "datagram", "send", "--from", "LABSRV", "--to", "OTHER", "--file", missing,
            ],
            "netbt datagram send: --file ",
        ),
        (
            &[
                "datagram",
                "send",
                "--from",
                "ABCDEFGHIJKLMNOPQ",
                "--to",
                "X",
                "--data",
                "x",
            ],
            "netbt datagram send: --from \"ABCDEFGHIJKLMNOPQ\"",
        ),
        (
            &[
                "datagram", "send", "--from", "LABSRV", "--to", "X#2G", "--data", "x",
            ],
            "netbt datagram send: --to \"X#2G\"",
        ),
        (
            &[
                "datagram", "send", "--from", "LABSRV", "--to", "*", "--group", "--data", "x",
            ],
            "netbt datagram send: --to '*' is a broadcast",
        ),
        (
            &[
                "datagram",
                "send",
                "--from",
                "LABSRV",
                "--to",
                "X",
                "--mailslot",
                "\\PIPE\\X",
                "--data",
                "x",
            ],
            "netbt datagram send: --mailslot \"\\\\PIPE\\\\X\"",
        ),
        (
            &[
                "datagram", "send", "--from", "LABSRV", "--to", "X", "--data", &long,
            ],
            "netbt datagram send: 495 bytes of data; at most 494 fit",
        ),
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with(needle), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    // What clap rejects: exit 2 too.
    for args in [
        &["datagram"][..],
        &["datagram", "send", "--bogus"],
        &[
            "datagram", "send", "--from", "A", "--to", "B", "--ip", "not-ip", "--data", "x",
        ],
        &["datagram", "watch", "--bogus"],
        &["serve", "--announce-interval", "0"],
        &["serve", "--announce-interval", "soon"],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A comment the browse list cannot carry: one line, before any TAP is opened.
    for comment in ["x".repeat(44), "tab\there".to_string()] {
        let out = netbt(&["serve", "--tap", "nbtnotap0", "--comment", &comment]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("netbt: --comment "), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn datagram_without_a_daemon_exits_1_naming_the_path() {
    let out = netbt(&[
        "datagram",
        "send",
        "--control",
        "/nonexistent/netbt.sock",
        "--from",
        "LABSRV",
        "--to",
        "OTHER#20",
        "--data",
        "hello",
    ]);
    assert_fails_with(&out, &["/nonexistent/netbt.sock", "no netbt daemon"]);
    let out = netbt(&["datagram", "watch", "--control", "/nonexistent/netbt.sock"]);
    assert_fails_with(&out, &["/nonexistent/netbt.sock", "no netbt daemon"]);
    let out = netbt(&["datagram", "watch", "--tap", "nbtnotap0", "--json"]);
    assert_fails_with(&out, &["/run/netbt/nbtnotap0", "/tmp/netbt-nbtnotap0"]);
}

#[test]
fn datagram_send_asks_the_daemon_and_reports_its_refusal() {
    let dir = scratch("datagram-send");
    let path = dir.join("netbt.sock");
    let reply = "{\"sent\":\"unique\",\"from\":\"LABSRV<00>\",\"to\":\"OTHER<20>\",\
                 \"address\":\"192.168.69.2:138\",\"bytes\":5}\n";
    let requests = fake_daemon(&path, reply, 1);
    let out = netbt(&[
        "datagram",
        "send",
        "--control",
        path.to_str().unwrap(),
        "--from",
        "LABSRV",
        "--to",
        "OTHER#20",
        "--ip",
        "192.168.69.2",
        "--mailslot",
        "\\MAILSLOT\\LAB",
        "--data",
        "hello",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "sent unique datagram LABSRV<00> -> OTHER<20> to 192.168.69.2:138, 5 bytes\n"
    );
    let lines = requests.join().unwrap();
    assert_eq!(lines.len(), 1);
    let request = lines[0]
        .strip_prefix("datagram send ")
        .expect("a send request");
    let value: serde_json::Value = serde_json::from_str(request).unwrap();
    assert_eq!(value["from"], "LABSRV");
    assert_eq!(value["to"], "OTHER#20");
    assert_eq!(value["address"], "192.168.69.2");
    assert_eq!(value["mailslot"], "\\MAILSLOT\\LAB");
    assert_eq!(value["data_hex"], "68656c6c6f");
    assert_eq!(value["group"], false);

    let path = dir.join("refusing.sock");
    let requests = fake_daemon(&path, "{\"error\": \"STRANGER<00> is not ours\"}\n", 1);
    let out = netbt(&[
        "datagram",
        "send",
        "--control",
        path.to_str().unwrap(),
        "--from",
        "STRANGER",
        "--to",
        "*",
        "--data",
        "x",
    ]);
    assert_fails_with(&out, &["refused: STRANGER<00> is not ours"]);
    requests.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
