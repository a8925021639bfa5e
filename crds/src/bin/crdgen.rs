//! Prints the IngressControllerSet CRD as YAML. Its output is committed:
//! `cargo run -p sluice-crds --bin crdgen > config/crd/sluice.dev_ingresscontrollersets.yaml`

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let yaml = match sluice_crds::crd::crd_yaml() {
        Ok(yaml) => yaml,
        Err(err) => {
            eprintln!("crdgen: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Write errors (a closed pipe) are reported rather than panicking in print!.
    if let Err(err) = std::io::stdout().write_all(yaml.as_bytes()) {
        eprintln!("crdgen: writing to stdout: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
