//! Client behaviour against a scripted HTTP server (wiremock): auth flows,
//! error mapping, retries, pagination and Neutron's odd reply shapes.

use std::time::Duration;

use openstack::neutron::{Neutron, PortCreate, PortUpdate, Query, Resource, SubPort};
use openstack::{AuthOptions, AuthType, Client, Error, Interface, RetryPolicy};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

mod neutron;

/// A mock of one call, `verb` on exactly `url_path`, to be refined
/// (more matchers, the reply, how often) and mounted.
fn on(verb: &str, url_path: impl Into<String>) -> MockBuilder {
    Mock::given(method(verb)).and(path(url_path))
}

const TOKENS: &str = "/v3/auth/tokens";

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn noauth(server: &MockServer) -> Neutron {
    let client = Client::builder(AuthOptions::noauth(server.uri()))
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    Neutron::from_client(client)
}

fn password_opts(server: &MockServer) -> AuthOptions {
    AuthOptions {
        auth_type: Some(AuthType::Password),
        auth_url: Some(format!("{}/identity/v3", server.uri())),
        username: Some("kuryr".into()),
        password: Some("pa55w0rd".into()),
        project_name: Some("service".into()),
        user_domain_name: Some("Default".into()),
        project_domain_name: Some("Default".into()),
        ..Default::default()
    }
}

/// A Keystone token reply whose catalog points Neutron at `{uri}/networking`
/// (public, RegionOne) and `{uri}/internal` (internal, RegionTwo).
fn token_reply(uri: &str, token: &str, lifetime_s: u32) -> ResponseTemplate {
    let expires = format!(
        "2026-11-28T02:{:02}:{:02}.000000Z",
        lifetime_s / 60,
        lifetime_s % 60
    );
    ResponseTemplate::new(201)
        .insert_header("X-Subject-Token", token)
        .insert_header("x-openstack-request-id", "req-auth")
        .set_body_json(json!({"token": {
            "issued_at": "2026-11-28T02:00:00.000000Z",
            "expires_at": expires,
            "methods": ["password"],
            "user": {"id": "u", "name": "kuryr"},
            "project": {"id": "p", "name": "service"},
            "catalog": [
                {"type": "identity", "name": "keystone", "endpoints": [
                    {"interface": "public", "region_id": "RegionOne", "url": format!("{uri}/identity")}]},
                {"type": "network", "name": "neutron", "endpoints": [
                    {"interface": "public", "region_id": "RegionOne", "region": "RegionOne",
                     "url": format!("{uri}/networking/")},
                    {"interface": "internal", "region_id": "RegionTwo", "region": "RegionTwo",
                     "url": format!("{uri}/internal")}]}
            ]
        }}))
}

fn networks_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"networks": [{"id": "n1", "name": "net"}]}))
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

async fn count(server: &MockServer, p: &str) -> usize {
    requests(server)
        .await
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

// ------------------------------------------------------------------ auth

#[tokio::test]
async fn noauth_sends_no_token_and_counts_calls() {
    let server = MockServer::start().await;
    on("GET", "/v2.0/networks")
        .respond_with(networks_reply())
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let nets = neutron.list_networks(&Query::new()).await.unwrap();
    assert_eq!(nets[0].id, "n1");
    let reqs = requests(&server).await;
    assert!(reqs[0].headers.get("x-auth-token").is_none());
    assert_eq!(reqs[0].headers.get("accept").unwrap(), "application/json");
    let calls = neutron.calls();
    assert_eq!((calls.get, calls.total(), calls.auth), (1, 1, 0));
    assert_eq!(neutron.reply_counts(), vec![("GET".to_string(), 200, 1)]);
}

#[tokio::test]
async fn noauth_endpoint_with_version_suffix_is_normalised() {
    let server = MockServer::start().await;
    on("GET", "/v2.0/networks")
        .respond_with(networks_reply())
        .expect(1)
        .mount(&server)
        .await;
    let neutron = Neutron::new(AuthOptions::noauth(format!("{}/v2.0/", server.uri()))).unwrap();
    neutron.list_networks(&Query::new()).await.unwrap();
}

#[tokio::test]
async fn password_auth_scopes_parses_catalog_and_caches_token() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .and(body_json(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "kuryr", "domain": {"name": "Default"}, "password": "pa55w0rd"}}},
            "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}
        }})))
        .respond_with(token_reply(&server.uri(), "tok1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    on("GET", "/networking/v2.0/networks")
        .and(header("x-auth-token", "tok1"))
        .respond_with(networks_reply())
        .expect(2)
        .mount(&server)
        .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    neutron.list_networks(&Query::new()).await.unwrap();
    neutron.list_networks(&Query::new()).await.unwrap();
    assert_eq!(neutron.calls().auth, 1);
    assert_eq!(neutron.calls().get, 2);
    assert_eq!(
        neutron.client().endpoint().await.unwrap().as_str(),
        format!("{}/networking", server.uri())
    );
}

#[tokio::test]
async fn concurrent_requests_share_one_authentication() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "tok1", 3600).set_delay(Duration::from_millis(50)))
        .expect(1)
        .mount(&server)
        .await;
    on("GET", "/networking/v2.0/networks")
        .respond_with(networks_reply())
        .mount(&server)
        .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    let q = Query::new();
    let (a, b, c) = tokio::join!(
        neutron.list_networks(&q),
        neutron.list_networks(&q),
        neutron.list_networks(&q)
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
}

#[tokio::test]
async fn token_is_renewed_when_close_to_expiry() {
    let server = MockServer::start().await;
    // 30 s of lifetime is under the 60 s renewal margin: every call renews.
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "short", 30))
        .expect(2)
        .mount(&server)
        .await;
    on("GET", "/networking/v2.0/networks")
        .respond_with(networks_reply())
        .expect(2)
        .mount(&server)
        .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    neutron.list_networks(&Query::new()).await.unwrap();
    neutron.list_networks(&Query::new()).await.unwrap();

    // With a 10 s margin the same token is kept.
    let neutron = Neutron::from_client(
        Client::builder(password_opts(&server))
            .renew_before(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    server.reset().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "short", 30))
        .expect(1)
        .mount(&server)
        .await;
    on("GET", "/networking/v2.0/networks")
        .respond_with(networks_reply())
        .expect(2)
        .mount(&server)
        .await;
    neutron.list_networks(&Query::new()).await.unwrap();
    neutron.list_networks(&Query::new()).await.unwrap();
}

#[tokio::test]
async fn unauthorized_reauthenticates_once_and_retries_once() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "old", 3600))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "new", 3600))
        .with_priority(2)
        .mount(&server)
        .await;
    on("POST", "/networking/v2.0/ports")
        .and(header("x-auth-token", "old"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Authentication required"))
        .mount(&server)
        .await;
    on("POST", "/networking/v2.0/ports")
        .and(header("x-auth-token", "new"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"port": {"id": "p1"}})))
        .mount(&server)
        .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    let port = neutron.create_port(&PortCreate::new("n1")).await.unwrap();
    assert_eq!(port.id, "p1");
    assert_eq!(neutron.calls().auth, 2);
    assert_eq!(neutron.calls().post, 2);
}

#[tokio::test]
async fn persistent_unauthorized_gives_up_after_one_reauthentication() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "tok", 3600))
        .expect(2)
        .mount(&server)
        .await;
    on("GET", "/networking/v2.0/networks")
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-openstack-request-id", "req-401")
                .set_body_json(json!({"error": {"code": 401, "title": "Unauthorized",
                    "message": "The request you have made requires authentication."}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    let err = neutron.list_networks(&Query::new()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(err.request_id(), Some("req-401"));
    assert_eq!(err.neutron_type(), Some("Unauthorized"));
}

#[tokio::test]
async fn static_token_with_endpoint_is_sent_and_never_reauthenticated() {
    let server = MockServer::start().await;
    on("GET", "/v2.0/networks")
        .and(header("x-auth-token", "admin-token"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let opts = AuthOptions {
        token: Some("admin-token".into()),
        endpoint: Some(server.uri()),
        ..Default::default()
    };
    assert_eq!(opts.effective_auth_type(), AuthType::Token);
    let neutron = Neutron::new(opts).unwrap();
    assert!(neutron
        .list_networks(&Query::new())
        .await
        .unwrap_err()
        .is_unauthorized());
}

#[tokio::test]
async fn token_auth_and_app_credential_bodies() {
    let server = MockServer::start().await;
    on("POST", TOKENS)
        .and(body_json(
            json!({"auth": {"identity": {"methods": ["token"],
            "token": {"id": "unscoped"}}, "scope": {"project": {"id": "p"}}}}),
        ))
        .respond_with(token_reply(&server.uri(), "scoped", 3600))
        .expect(1)
        .mount(&server)
        .await;
    on("POST", TOKENS)
        .and(body_partial_json(json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": "ac", "secret": "s3"}}}})))
        .respond_with(token_reply(&server.uri(), "appcred", 3600))
        .expect(1)
        .mount(&server)
        .await;
    on("GET", "/networking/v2.0/networks")
        .respond_with(networks_reply())
        .expect(2)
        .mount(&server)
        .await;
    let token_opts = AuthOptions {
        auth_url: Some(server.uri()),
        token: Some("unscoped".into()),
        project_id: Some("p".into()),
        ..Default::default()
    };
    Neutron::new(token_opts)
        .unwrap()
        .list_networks(&Query::new())
        .await
        .unwrap();
    let ac_opts = AuthOptions {
        auth_url: Some(server.uri()),
        application_credential_id: Some("ac".into()),
        application_credential_secret: Some("s3".into()),
        ..Default::default()
    };
    Neutron::new(ac_opts)
        .unwrap()
        .list_networks(&Query::new())
        .await
        .unwrap();
    let reqs = requests(&server).await;
    assert!(reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/networks"))
        .any(|r| r.headers.get("x-auth-token").unwrap() == "appcred"));
}

#[tokio::test]
async fn keystone_rejection_is_a_typed_error() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-openstack-request-id", "req-ks")
                .set_body_json(json!({"error": {"code": 401, "title": "Unauthorized",
                    "message": "The request you have made requires authentication."}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    let err = neutron.list_networks(&Query::new()).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.status.as_u16(), 401);
    assert_eq!(api.path, TOKENS);
    assert_eq!(api.request_id.as_deref(), Some("req-ks"));
    assert!(!err.to_string().contains("pa55w0rd"));
}

#[tokio::test]
async fn interface_region_and_override_select_the_endpoint() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(token_reply(&server.uri(), "tok", 3600))
        .mount(&server)
        .await;
    let uri = server.uri();

    let internal = AuthOptions {
        interface: Some(Interface::Internal),
        region_name: Some("RegionTwo".into()),
        ..password_opts(&server)
    };
    let c = Client::new(internal.clone()).unwrap();
    assert_eq!(
        c.endpoint().await.unwrap().as_str(),
        format!("{uri}/internal")
    );

    let wrong_region = AuthOptions {
        region_name: Some("RegionOne".into()),
        ..internal
    };
    let err = Client::new(wrong_region)
        .unwrap()
        .endpoint()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EndpointNotFound { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "no network endpoint with interface internal in region RegionOne in the service catalog"
    );

    let overridden = AuthOptions {
        endpoint: Some(format!("{uri}/elsewhere")),
        ..password_opts(&server)
    };
    let c = Client::new(overridden).unwrap();
    assert_eq!(
        c.endpoint().await.unwrap().as_str(),
        format!("{uri}/elsewhere")
    );
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let server = MockServer::start().await;
    let opts = password_opts(&server);
    let client = Client::new(opts.clone()).unwrap();
    let text = format!(
        "{opts:?} {client:?} {:?}",
        Neutron::from_client(client.clone())
    );
    assert!(!text.contains("pa55w0rd"), "{text}");
}

#[test]
fn invalid_options_fail_at_build_time() {
    let err = Client::new(AuthOptions {
        auth_type: Some(AuthType::NoAuth),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert_eq!(
        err.to_string(),
        "configuration error: endpoint is required for auth_type none"
    );
    let err = Client::new(AuthOptions {
        cafile: Some("/nonexistent/ca.pem".into()),
        ..AuthOptions::noauth("https://neutron:9696")
    })
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
