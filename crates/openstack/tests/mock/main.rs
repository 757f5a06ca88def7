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

/// A Neutron client for `opts` that retries with [`fast_retries`].
fn fast_neutron(opts: AuthOptions) -> Neutron {
    let client = Client::builder(opts).retry_policy(fast_retries()).build().unwrap();
    Neutron::from_client(client)
}

fn noauth(server: &MockServer) -> Neutron {
    fast_neutron(AuthOptions::noauth(server.uri()))
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
    let expires = format!("2026-11-28T02:{:02}:{:02}.000000Z", lifetime_s / 60, lifetime_s % 60);
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

/// Neutron's network list behind the catalog of [`token_reply`].
const CATALOG_NETWORKS: &str = "/networking/v2.0/networks";

fn networks_reply() -> ResponseTemplate {
    json_reply(200, json!({"networks": [{"id": "n1", "name": "net"}]}))
}

/// A network list at `url_path` that replies with one network.
fn networks(url_path: &str) -> Mock {
    on("GET", url_path).respond_with(networks_reply())
}

/// Keystone's token call at the `/identity` prefix of [`password_opts`],
/// replying with `token` valid for `lifetime_s`.
fn keystone(server: &MockServer, token: &str, lifetime_s: u32) -> Mock {
    on("POST", format!("/identity{TOKENS}")).respond_with(token_reply(
        &server.uri(),
        token,
        lifetime_s,
    ))
}

/// The reply of a Keystone or Neutron that wants another token.
fn unauthorized(request_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(401)
        .insert_header("x-openstack-request-id", request_id)
        .set_body_json(json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}}))
}

/// A Neutron error reply: `status` with a `NeutronError` of `kind`.
fn neutron_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"NeutronError": {"type": kind, "message": message, "detail": ""}}))
}

/// Mounts `mocks` on `server`, in order.
async fn mount_all(server: &MockServer, mocks: impl IntoIterator<Item = Mock>) {
    for mock in mocks {
        mock.mount(server).await;
    }
}

/// A server with `mocks` mounted, for mocks that need not know its address.
async fn serve(mocks: impl IntoIterator<Item = Mock>) -> MockServer {
    let server = MockServer::start().await;
    mount_all(&server, mocks).await;
    server
}

/// A reply of `status` with a JSON body.
fn json_reply(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

async fn count(server: &MockServer, p: &str) -> usize {
    requests(server).await.iter().filter(|r| r.url.path() == p).count()
}

/// Lists networks `times` times through `neutron`, each call succeeding.
async fn list_networks(neutron: &Neutron, times: usize) {
    for _ in 0..times {
        neutron.list_networks(&Query::new()).await.unwrap();
    }
}

// ------------------------------------------------------------------ auth

#[tokio::test]
async fn noauth_sends_no_token_and_counts_calls() {
    let server = MockServer::start().await;
    networks("/v2.0/networks").mount(&server).await;
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
    networks("/v2.0/networks").expect(1).mount(&server).await;
    let neutron = Neutron::new(AuthOptions::noauth(format!("{}/v2.0/", server.uri()))).unwrap();
    list_networks(&neutron, 1).await;
}

#[tokio::test]
async fn password_auth_scopes_parses_catalog_and_caches_token() {
    let server = MockServer::start().await;
    let password_body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "kuryr", "domain": {"name": "Default"}, "password": "pa55w0rd"}}},
        "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}
    }});
    mount_all(
        &server,
        [
            on("POST", format!("/identity{TOKENS}"))
                .and(body_json(password_body))
                .respond_with(token_reply(&server.uri(), "tok1", 3600))
                .expect(1),
            on("GET", CATALOG_NETWORKS)
                .and(header("x-auth-token", "tok1"))
                .respond_with(networks_reply())
                .expect(2),
        ],
    )
    .await;
    let neutron = Neutron::new(password_opts(&server)).unwrap();
    list_networks(&neutron, 2).await;
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
    let slow_token = token_reply(&server.uri(), "tok1", 3600).set_delay(Duration::from_millis(50));
    mount_all(
        &server,
        [
            on("POST", format!("/identity{TOKENS}")).respond_with(slow_token).expect(1),
            networks(CATALOG_NETWORKS),
        ],
    )
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
    // 30 s of lifetime is under the default 60 s renewal margin, so every
    // call renews; with a 10 s margin the same token is kept.
    for (renew_before, authentications) in [(None, 2), (Some(Duration::from_secs(10)), 1)] {
        server.reset().await;
        mount_all(
            &server,
            [
                keystone(&server, "short", 30).expect(authentications),
                networks(CATALOG_NETWORKS).expect(2),
            ],
        )
        .await;
        let mut builder = Client::builder(password_opts(&server));
        if let Some(margin) = renew_before {
            builder = builder.renew_before(margin);
        }
        list_networks(&Neutron::from_client(builder.build().unwrap()), 2).await;
        // A reset forgets the expectations without checking them.
        server.verify().await;
    }
}

#[tokio::test]
async fn unauthorized_reauthenticates_once_and_retries_once() {
    let server = MockServer::start().await;
    let created = json_reply(201, json!({"port": {"id": "p1"}}));
    mount_all(
        &server,
        [
            keystone(&server, "old", 3600).up_to_n_times(1).with_priority(1),
            keystone(&server, "new", 3600).with_priority(2),
            on("POST", "/networking/v2.0/ports").and(header("x-auth-token", "old")).respond_with(
                ResponseTemplate::new(401).set_body_string("Authentication required"),
            ),
            on("POST", "/networking/v2.0/ports")
                .and(header("x-auth-token", "new"))
                .respond_with(created),
        ],
    )
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
    mount_all(
        &server,
        [
            keystone(&server, "tok", 3600).expect(2),
            on("GET", CATALOG_NETWORKS).respond_with(unauthorized("req-401")).expect(2),
        ],
    )
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
    assert!(neutron.list_networks(&Query::new()).await.unwrap_err().is_unauthorized());
}

#[tokio::test]
async fn token_auth_and_app_credential_bodies() {
    let server = MockServer::start().await;
    let token_body = json!({"auth": {"identity": {"methods": ["token"],
        "token": {"id": "unscoped"}}, "scope": {"project": {"id": "p"}}}});
    let app_credential_body = json!({"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": "ac", "secret": "s3"}}}});
    mount_all(
        &server,
        [
            on("POST", TOKENS)
                .and(body_json(token_body))
                .respond_with(token_reply(&server.uri(), "scoped", 3600))
                .expect(1),
            on("POST", TOKENS)
                .and(body_partial_json(app_credential_body))
                .respond_with(token_reply(&server.uri(), "appcred", 3600))
                .expect(1),
            networks(CATALOG_NETWORKS).expect(2),
        ],
    )
    .await;
    let token = AuthOptions {
        token: Some("unscoped".into()),
        project_id: Some("p".into()),
        ..Default::default()
    };
    let app_credential = AuthOptions {
        application_credential_id: Some("ac".into()),
        application_credential_secret: Some("s3".into()),
        ..Default::default()
    };
    for opts in [token, app_credential] {
        let opts = AuthOptions { auth_url: Some(server.uri()), ..opts };
        list_networks(&Neutron::new(opts).unwrap(), 1).await;
    }
    let reqs = requests(&server).await;
    assert!(reqs.iter().filter(|r| r.url.path().ends_with("/networks")).any(|r| r
        .headers
        .get("x-auth-token")
        .unwrap()
        == "appcred"));
}

#[tokio::test]
async fn keystone_rejection_is_a_typed_error() {
    let server = MockServer::start().await;
    on("POST", format!("/identity{TOKENS}"))
        .respond_with(unauthorized("req-ks"))
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
    keystone(&server, "tok", 3600).mount(&server).await;
    let uri = server.uri();

    let internal = AuthOptions {
        interface: Some(Interface::Internal),
        region_name: Some("RegionTwo".into()),
        ..password_opts(&server)
    };
    let c = Client::new(internal.clone()).unwrap();
    assert_eq!(c.endpoint().await.unwrap().as_str(), format!("{uri}/internal"));

    let wrong_region = AuthOptions { region_name: Some("RegionOne".into()), ..internal };
    let err = Client::new(wrong_region).unwrap().endpoint().await.unwrap_err();
    assert!(matches!(err, Error::EndpointNotFound { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "no network endpoint with interface internal in region RegionOne in the service catalog"
    );

    let overridden =
        AuthOptions { endpoint: Some(format!("{uri}/elsewhere")), ..password_opts(&server) };
    let c = Client::new(overridden).unwrap();
    assert_eq!(c.endpoint().await.unwrap().as_str(), format!("{uri}/elsewhere"));
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let server = MockServer::start().await;
    let opts = password_opts(&server);
    let client = Client::new(opts.clone()).unwrap();
    let text = format!("{opts:?} {client:?} {:?}", Neutron::from_client(client.clone()));
    assert!(!text.contains("pa55w0rd"), "{text}");
}

#[test]
fn invalid_options_fail_at_build_time() {
    let err = Client::new(AuthOptions { auth_type: Some(AuthType::NoAuth), ..Default::default() })
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert_eq!(err.to_string(), "configuration error: endpoint is required for auth_type none");
    let err = Client::new(AuthOptions {
        cafile: Some("/nonexistent/ca.pem".into()),
        ..AuthOptions::noauth("https://neutron:9696")
    })
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
