//! `keelson-server`: the control plane's command line.
//!
//! Lists only what works today; the API server and its store add their
//! flags as they land.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "keelson-server",
    version,
    about = "Keelson control plane: Kubernetes API server, store, scheduler and controllers",
    arg_required_else_help = true
)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
