//! `netbt`: the command-line front end of the netbt stack.
//!
//! `netbt serve` (the daemon on a TAP device) arrives with the node; until then the binary
//! offers the name codec for lab scripts.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netbt::wire::name::{Name, NbName, Scope};

/// A userspace TCP/IP stack with NetBIOS over TCP/IP (RFC 1001/1002) that answers running out of
/// sessions with a negative session response, never a reset.
#[derive(Parser)]
#[command(name = "netbt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the RFC 1001 first-level encoding of NetBIOS names (NAME or NAME#XX, default
    /// suffix <00>), as they appear on the wire.
    Encode {
        /// Names in Samba syntax: LABSRV, LABSRV#20, '*'.
        #[arg(required = true, value_name = "NAME[#XX]")]
        names: Vec<String>,
        /// NetBIOS scope appended to every name, e.g. lab.example.
        #[arg(long, default_value = "")]
        scope: String,
    },
    /// Decode 32 letters A..P back into a NetBIOS name.
    Decode {
        /// First-level encoded names, e.g. CKFDENECFDEFFCFGEFFCCACACACACACA.
        #[arg(required = true, value_name = "ENCODED")]
        encoded: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("netbt: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Encode { names, scope } => {
            let scope = Scope::parse_text(&scope).map_err(|e| format!("--scope {scope:?}: {e}"))?;
            for text in names {
                let name = Name::parse_text(&text, Name::SUFFIX_WORKSTATION)
                    .map_err(|e| format!("{text:?}: {e}"))?;
                let nb = NbName::new(name, scope);
                let encoded = String::from_utf8_lossy(&name.encode()).into_owned();
                if scope.is_empty() {
                    println!("{nb}\t{encoded}");
                } else {
                    println!("{nb}\t{encoded}.{scope}");
                }
            }
        }
        Command::Decode { encoded } => {
            for text in encoded {
                let name = Name::decode(text.as_bytes()).map_err(|_| {
                    format!("{text:?}: not a first-level encoded name (32 letters A..P)")
                })?;
                println!("{name}");
            }
        }
    }
    Ok(())
}
