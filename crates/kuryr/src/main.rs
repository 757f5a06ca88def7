use clap::Parser;

/// Kuryr: Neutron networking for containers.
#[derive(Parser)]
#[command(name = "kuryr", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
