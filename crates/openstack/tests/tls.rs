//! TLS settings against a real TLS server (`openssl s_server`) with a
//! throw-away CA: system roots reject it, `cafile` or `insecure` accept it,
//! and a server that demands a client certificate gets one from
//! `certfile`/`keyfile`. Skipped when the `openssl` binary is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openstack::neutron::{Neutron, Query};
use openstack::{AuthOptions, Error};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_pki(tag: &str) -> Option<Dir> {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: no openssl binary");
        return None;
    }
    let dir = Dir(std::env::temp_dir().join(format!("openstack-tls-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let d = &dir.0;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca"]);
    openssl(d, &ca);
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let mut req = vec!["req"];
        req.extend(ec);
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
        openssl(d, &req);
        std::fs::write(
            d.join(&ext),
            format!("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &ext,
            ],
        );
    }
    Some(dir)
}

/// `openssl s_server -www` on a free port; `require_client_cert` makes it
/// demand a certificate signed by the CA.
fn serve(dir: &Path, require_client_cert: bool) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_server",
        "-quiet",
        "-www",
        "-accept",
        &accept,
        "-cert",
        "server.pem",
        "-key",
        "server.key",
    ];
    if require_client_cert {
        args.extend(["-Verify", "1", "-CAfile", "ca.pem", "-verify_return_error"]);
    }
    let child = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

/// One GET; `Ok` when TLS and HTTP worked (s_server's HTML status page is
/// no JSON, so a decode error or an API error both prove the handshake).
async fn probe(opts: AuthOptions) -> Result<(), Error> {
    match Neutron::new(opts)?.list_networks(&Query::new()).await {
        Ok(_) | Err(Error::Decode { .. }) | Err(Error::Api(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[tokio::test]
async fn ca_bundle_and_insecure_switch() {
    let Some(pki) = make_pki("ca") else { return };
    let (_server, port) = serve(&pki.0, false);
    let url = format!("https://127.0.0.1:{port}");

    let err = probe(AuthOptions::noauth(&url)).await.unwrap_err();
    assert!(err.is_connect(), "unknown CA must be refused: {err}");

    probe(AuthOptions { cafile: Some(pki.0.join("ca.pem")), ..AuthOptions::noauth(&url) })
        .await
        .unwrap();

    probe(AuthOptions { insecure: true, ..AuthOptions::noauth(&url) }).await.unwrap();
}

#[tokio::test]
async fn client_certificate() {
    let Some(pki) = make_pki("client") else {
        return;
    };
    let (_server, port) = serve(&pki.0, true);
    let base = AuthOptions {
        cafile: Some(pki.0.join("ca.pem")),
        ..AuthOptions::noauth(format!("https://127.0.0.1:{port}"))
    };
    assert!(probe(base.clone()).await.is_err(), "the server demands a client certificate");
    probe(AuthOptions {
        certfile: Some(pki.0.join("client.pem")),
        keyfile: Some(pki.0.join("client.key")),
        ..base
    })
    .await
    .unwrap();
}

#[test]
fn unusable_tls_files_are_config_errors() {
    let Some(pki) = make_pki("bad") else { return };
    let garbage = pki.0.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let err = Neutron::new(AuthOptions {
        cafile: Some(garbage),
        ..AuthOptions::noauth("https://127.0.0.1:1")
    })
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("garbage.pem"), "{err}");

    let err = Neutron::new(AuthOptions {
        keyfile: Some(pki.0.join("client.key")),
        ..AuthOptions::noauth("https://127.0.0.1:1")
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration error: TLS configuration: keyfile is set without certfile"
    );
}
