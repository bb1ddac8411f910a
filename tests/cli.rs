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
        &["serve", "--session-buffer", "100"],
        &["serve", "--request-timeout", "-1"],
        &["serve", "--handler", "teleport"],
        &["serve", "--allow-calling", "MUCHTOOLONGNAME123"],
    ] {
        let out = netbt(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
