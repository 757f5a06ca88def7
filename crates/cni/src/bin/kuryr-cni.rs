//! `kuryr-cni`: the CNI plugin binary. It forwards each call to the Kuryr
//! node daemon over a unix socket; see `kuryr_cni::plugin`.

fn main() {
    std::process::exit(kuryr_cni::plugin::main());
}
