//! The apiserver client of `[kubernetes]` (docs/configuration.md
//! § `[kubernetes]`): `api_root` with a token, a CA bundle and a client
//! certificate when given; without `api_root`, the in-cluster service
//! account, else the kubeconfig (`KUBECONFIG`, `~/.kube/config`), as kubectl
//! finds it.

use kuryr_core::config::KubernetesOptions;

/// Why no apiserver client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `api_root` is not a URL.
    #[error("[kubernetes] api_root = {url}: not a URL: {reason}")]
    BadUrl {
        /// The option's value.
        url: String,
        /// Why.
        reason: String,
    },
    /// A file the options name cannot be read.
    #[error("[kubernetes] {option} = {path}: {source}")]
    File {
        /// The option.
        option: &'static str,
        /// Its value.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Neither the service account nor a kubeconfig was found.
    #[error("no [kubernetes] api_root, and no in-cluster service account or kubeconfig: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// kube-rs refused the configuration.
    #[error("building the Kubernetes client: {0}")]
    Build(#[from] kube::Error),
}

/// The client configuration `options` describe.
pub async fn config_of(options: &KubernetesOptions) -> Result<kube::Config, ClientError> {
    let Some(url) = &options.api_root else {
        let mut config = kube::Config::infer().await?;
        config.accept_invalid_certs |= !options.ssl_verify_server_crt;
        return Ok(config);
    };
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| ClientError::BadUrl {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let mut config = kube::Config::new(uri);
    config.accept_invalid_certs = !options.ssl_verify_server_crt;
    // The service account's files are defaults: used when they exist.
    if options.ssl_ca_crt_file.exists() {
        let pem = std::fs::read(&options.ssl_ca_crt_file).map_err(|source| ClientError::File {
            option: "ssl_ca_crt_file",
            path: options.ssl_ca_crt_file.display().to_string(),
            source,
        })?;
        config.root_cert = Some(pem_certificates(&pem));
        config.root_cert_file = Some(options.ssl_ca_crt_file.clone());
    }
    if options.token_file.exists() {
        config.auth_info.token_file = Some(options.token_file.display().to_string());
    }
    if let (Some(crt), Some(key)) = (&options.ssl_client_crt_file, &options.ssl_client_key_file) {
        config.auth_info.client_certificate = Some(crt.display().to_string());
        config.auth_info.client_key = Some(key.display().to_string());
    }
    Ok(config)
}

/// A client for `options`.
pub async fn connect(options: &KubernetesOptions) -> Result<kube::Client, ClientError> {
    Ok(kube::Client::try_from(config_of(options).await?)?)
}

/// The DER bodies of the `CERTIFICATE` blocks of a PEM bundle.
fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut certs = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (line, &mut body) {
            ("-----BEGIN CERTIFICATE-----", _) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b64)) => {
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
                    certs.push(der);
                }
                body = None;
            }
            (line, Some(b64)) => b64.push_str(line),
            _ => {}
        }
    }
    certs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_certificate_of_a_bundle() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem), vec![vec![0, 1, 2, 3], vec![4, 5]]);
    }

    #[tokio::test]
    async fn api_root_with_files_that_exist() {
        let dir = std::env::temp_dir().join(format!("kuryr-k8s-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let token = dir.join("token");
        std::fs::write(&token, "t0k3n").expect("token");
        let options = KubernetesOptions {
            api_root: Some("https://127.0.0.1:6443".into()),
            token_file: token.clone(),
            ssl_ca_crt_file: dir.join("absent-ca.crt"),
            ssl_verify_server_crt: false,
            ..KubernetesOptions::default()
        };
        let config = config_of(&options).await.expect("config");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert!(config.accept_invalid_certs);
        assert!(config.root_cert.is_none(), "an absent CA file is not used");
        assert_eq!(config.auth_info.token_file.as_deref(), Some(token.to_str().expect("utf-8")));
        let bad = KubernetesOptions { api_root: Some("not a url".into()), ..options };
        assert!(matches!(config_of(&bad).await, Err(ClientError::BadUrl { .. })));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
