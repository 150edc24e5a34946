//! The `scar` binary: everything lives in the library; `main` only dispatches.

fn main() -> std::process::ExitCode {
    scar::cli::main()
}
