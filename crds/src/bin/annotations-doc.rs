//! Prints what is generated from the annotation table. Both outputs are committed:
//!
//! - `cargo run -p sluice-crds --bin annotations-doc > docs/annotations.md`
//! - `cargo run -p sluice-crds --bin annotations-doc -- --admission-policy > config/default/annotation-policy.yaml`

use std::io::Write;
use std::process::ExitCode;

use sluice_crds::annotations::{admission, reference};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => reference::markdown(),
        ["--admission-policy"] => match admission::policy_yaml() {
            Ok(yaml) => yaml,
            Err(err) => {
                eprintln!("annotations-doc: writing the admission policy: {err}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("usage: annotations-doc [--admission-policy]");
            return ExitCode::from(2);
        }
    };
    // Write errors (a closed pipe) are reported rather than panicking in print!.
    if let Err(err) = std::io::stdout().write_all(text.as_bytes()) {
        eprintln!("annotations-doc: writing to stdout: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
