//! `keelson-cni`: the CNI plugin binary the container runtime executes
//! (`type: "keelson-cni"` in the network config). Everything lives in
//! `keelson_node::cni`.

fn main() -> std::process::ExitCode {
    keelson_node::cni::main()
}
