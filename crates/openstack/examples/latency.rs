//! Measures the client-side latency of a Neutron port create and port show.
//!
//! ```sh
//! eval "$(scripts/stack env)"
//! cargo run --release -p openstack --example latency -- 20
//! ```
//!
//! Creates a scratch network and subnet, N ports one after another, shows
//! each port, then deletes everything (also on error).

use std::time::{Duration, Instant};

use openstack::neutron::{NetworkCreate, Neutron, PortCreate, SubnetCreate};
use openstack::AuthOptions;

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<12} n={:<3} median={:>7.1} ms  p90={:>7.1} ms  min={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20).max(1);
    let neutron = Neutron::new(AuthOptions::from_env()?)?;
    // Authenticate (if needed) outside the measurement.
    neutron.list_extensions().await?;

    let net = neutron
        .create_network(&NetworkCreate {
            name: Some(format!("latency-{}", std::process::id())),
            ..Default::default()
        })
        .await?;
    let result = measure(&neutron, &net.id, n).await;
    // Deleting the network would fail while ports exist; `measure` removes
    // its ports whatever happens.
    neutron.delete_network(&net.id).await?;
    let (creates, shows) = result?;
    summary("port create", creates);
    summary("port show", shows);
    let calls = neutron.calls();
    println!(
        "calls: GET={} POST={} PUT={} DELETE={} auth={}",
        calls.get, calls.post, calls.put, calls.delete, calls.auth
    );
    Ok(())
}

async fn measure(
    neutron: &Neutron,
    network_id: &str,
    n: usize,
) -> Result<(Vec<Duration>, Vec<Duration>), openstack::Error> {
    neutron.create_subnet(&SubnetCreate::new(network_id, "10.250.0.0/22")).await?;
    let mut ids = Vec::with_capacity(n);
    let mut creates = Vec::with_capacity(n);
    let mut shows = Vec::with_capacity(n);
    let mut outcome = Ok(());
    for _ in 0..n {
        let started = Instant::now();
        match neutron.create_port(&PortCreate::new(network_id)).await {
            Ok(p) => {
                creates.push(started.elapsed());
                ids.push(p.id);
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if outcome.is_ok() {
        for id in &ids {
            let started = Instant::now();
            if let Err(e) = neutron.get_port(id).await {
                outcome = Err(e);
                break;
            }
            shows.push(started.elapsed());
        }
    }
    for id in &ids {
        if let Err(e) = neutron.delete_port(id).await {
            eprintln!("cleanup: port {id}: {e}");
        }
    }
    outcome.map(|()| (creates, shows))
}
