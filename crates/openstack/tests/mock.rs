//! Client behaviour against a scripted HTTP server (wiremock): auth flows,
//! error mapping, retries, pagination and Neutron's odd reply shapes.

use std::time::Duration;

use openstack::neutron::{Neutron, PortCreate, PortUpdate, Query, Resource, SubPort};
use openstack::{AuthOptions, AuthType, Client, Error, Interface, RetryPolicy};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

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
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
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
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .and(body_json(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "kuryr", "domain": {"name": "Default"}, "password": "pa55w0rd"}}},
            "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}
        }})))
        .respond_with(token_reply(&server.uri(), "tok1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/networking/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .respond_with(token_reply(&server.uri(), "tok1", 3600).set_delay(Duration::from_millis(50)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/networking/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .respond_with(token_reply(&server.uri(), "short", 30))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/networking/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .respond_with(token_reply(&server.uri(), "short", 30))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/networking/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .respond_with(token_reply(&server.uri(), "old", 3600))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .respond_with(token_reply(&server.uri(), "new", 3600))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/networking/v2.0/ports"))
        .and(header("x-auth-token", "old"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Authentication required"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/networking/v2.0/ports"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
        .respond_with(token_reply(&server.uri(), "tok", 3600))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/networking/v2.0/networks"))
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
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(TOKENS))
        .and(body_json(
            json!({"auth": {"identity": {"methods": ["token"],
            "token": {"id": "unscoped"}}, "scope": {"project": {"id": "p"}}}}),
        ))
        .respond_with(token_reply(&server.uri(), "scoped", 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKENS))
        .and(body_partial_json(json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": "ac", "secret": "s3"}}}})))
        .respond_with(token_reply(&server.uri(), "appcred", 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/networking/v2.0/networks"))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
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
    Mock::given(method("POST"))
        .and(path(format!("/identity{TOKENS}")))
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

// ---------------------------------------------------------- error mapping

#[tokio::test]
async fn neutron_errors_are_mapped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("x-openstack-request-id", "req-abc")
                .set_body_json(json!({"NeutronError": {"type": "IpAddressAlreadyAllocated",
                    "message": "IP address 10.0.0.5 already allocated in subnet s1",
                    "detail": ""}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports/missing"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"NeutronError": {
            "type": "PortNotFound", "message": "Port missing could not be found.", "detail": ""}})),
        )
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let err = neutron
        .create_port(&PortCreate::new("n"))
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.neutron_type(), Some("IpAddressAlreadyAllocated"));
    assert_eq!(err.request_id(), Some("req-abc"));
    let api = err.api().unwrap();
    assert_eq!(
        (api.method.as_str(), api.path.as_str()),
        ("POST", "/v2.0/ports")
    );

    let err = neutron.get_port("missing").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("PortNotFound"));
    assert_eq!(neutron.calls().get, 1, "a 404 is not retried");
}

#[tokio::test]
async fn bad_json_in_a_success_reply_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports/p"))
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
        .mount(&server)
        .await;
    let err = noauth(&server).get_port("p").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
}

// ----------------------------------------------------------------- retries

#[tokio::test]
async fn idempotent_requests_are_retried_on_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(networks_reply())
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/ports/p"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/ports/p"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    assert_eq!(neutron.list_networks(&Query::new()).await.unwrap().len(), 1);
    neutron.delete_port("p").await.unwrap();
    let calls = neutron.calls();
    assert_eq!((calls.get, calls.delete), (3, 2));
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/ports/p"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"NeutronError": {
            "type": "DBError", "message": "database is locked", "detail": ""}})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = noauth(&server)
        .update_port("p", &PortUpdate::default())
        .await
        .unwrap_err();
    assert!(err.is_server_error());
    assert_eq!(err.neutron_type(), Some("DBError"));
}

#[tokio::test]
async fn post_is_not_retried_on_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let err = neutron
        .create_port(&PortCreate::new("n"))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(neutron.calls().post, 1);
}

#[tokio::test]
async fn post_is_not_retried_on_timeout_but_get_is() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({"port": {"id": "p"}}))
        .set_delay(Duration::from_secs(2));
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .respond_with(slow.clone())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports/p"))
        .respond_with(slow)
        .mount(&server)
        .await;
    let opts = AuthOptions {
        timeout: Some(Duration::from_millis(150)),
        ..AuthOptions::noauth(server.uri())
    };
    let neutron = Neutron::from_client(
        Client::builder(opts)
            .retry_policy(fast_retries())
            .build()
            .unwrap(),
    );
    let err = neutron
        .create_port(&PortCreate::new("n"))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        count(&server, "/v2.0/ports").await,
        1,
        "a POST that may have landed is not resent"
    );
    let err = neutron.get_port("p").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(count(&server, "/v2.0/ports/p").await, 3);
}

#[tokio::test]
async fn connection_refused_is_retried_even_for_post() {
    // Bind then drop a listener to get a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let neutron = Neutron::from_client(
        Client::builder(AuthOptions::noauth(format!("http://{addr}")))
            .retry_policy(fast_retries())
            .build()
            .unwrap(),
    );
    let err = neutron
        .create_port(&PortCreate::new("n"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(neutron.calls().post, 3, "never sent, so safe to resend");
    let err = neutron.get_port("p").await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(neutron.calls().get, 3);
}

// ------------------------------------------------------- Neutron shapes

#[tokio::test]
async fn lists_follow_next_links() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("marker", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ports": [{"id": "p3"}],
            "ports_links": [{"rel": "previous", "href": format!("{uri}/v2.0/ports?limit=2&marker=p3&page_reverse=True")}]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("limit", "2"))
        .and(query_param("tags", "a,b"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ports": [{"id": "p1"}, {"id": "p2"}],
            "ports_links": [{"rel": "next", "href": format!("{uri}/v2.0/ports?limit=2&tags=a%2Cb&marker=p2")}]
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let ports = neutron
        .list_ports(&Query::new().tags(["a", "b"]).limit(2))
        .await
        .unwrap();
    let ids: Vec<_> = ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2", "p3"]);
    assert_eq!(neutron.calls().get, 2);
    let second = &requests(&server).await[1];
    assert_eq!(second.url.query(), Some("limit=2&tags=a%2Cb&marker=p2"));
}

#[tokio::test]
async fn fields_and_filters_reach_the_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ports": [{"id": "p1"}]})))
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let q = Query::new()
        .fields(["id", "fixed_ips"])
        .fixed_ip_address("10.0.0.5".parse().unwrap())
        .binding_host_id("vm")
        .not_tags(["x"]);
    let ports = neutron.list_ports(&q).await.unwrap();
    assert!(ports[0].fixed_ips.is_empty());
    assert_eq!(
        requests(&server).await[0].url.query(),
        Some("fields=id&fields=fixed_ips&fixed_ips=ip_address%3D10.0.0.5&binding%3Ahost_id=vm&not-tags=x")
    );
}

#[tokio::test]
async fn subnetpool_prefixlens_may_be_strings() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/subnetpools"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"subnetpools": [
            {"id": "a", "name": "kuryr", "prefixes": ["10.10.0.0/16"], "default_prefixlen": "24",
             "min_prefixlen": "8", "max_prefixlen": "32", "ip_version": 4, "default_quota": null},
            {"id": "b", "name": "n", "prefixes": ["fd10::/48"], "default_prefixlen": 64,
             "min_prefixlen": 64, "max_prefixlen": 128, "ip_version": 6}
        ]})))
        .mount(&server)
        .await;
    let pools = noauth(&server)
        .list_subnetpools(&Query::new())
        .await
        .unwrap();
    assert_eq!(pools[0].default_prefixlen, Some(24));
    assert_eq!(pools[1].max_prefixlen, Some(128));
}

#[tokio::test]
async fn trunk_subport_calls_take_unwrapped_replies() {
    let server = MockServer::start().await;
    let trunk = json!({"id": "t1", "port_id": "parent", "status": "DOWN",
        "sub_ports": [{"port_id": "sp1", "segmentation_type": "vlan", "segmentation_id": 100}]});
    Mock::given(method("PUT"))
        .and(path("/v2.0/trunks/t1/add_subports"))
        .and(body_json(json!({"sub_ports": [
            {"port_id": "sp1", "segmentation_type": "vlan", "segmentation_id": 100}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(trunk.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/trunks/t1/remove_subports"))
        .and(body_json(json!({"sub_ports": [{"port_id": "sp1"}]})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"trunk": {"id": "t1", "sub_ports": []}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/trunks/t1/get_subports"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sub_ports": [
            {"port_id": "sp1", "segmentation_type": "vlan", "segmentation_id": 100, "mac_address": "fa:16:3e:00:00:01"}]})))
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let t = neutron
        .add_subports("t1", &[SubPort::vlan("sp1", 100)])
        .await
        .unwrap();
    assert_eq!(t.sub_ports[0].segmentation_id, Some(100));
    let subs = neutron.get_subports("t1").await.unwrap();
    assert_eq!(subs[0].mac_address.as_deref(), Some("fa:16:3e:00:00:01"));
    let t = neutron.remove_subports("t1", &["sp1"]).await.unwrap();
    assert_eq!(t.id, "t1", "a wrapped reply is accepted too");
    assert!(t.sub_ports.is_empty());
}

#[tokio::test]
async fn bulk_create_and_if_match() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(body_json(json!({"ports": [
            {"network_id": "n", "name": "a"}, {"network_id": "n", "name": "b"}]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"ports": [
            {"id": "1", "name": "a"}, {"id": "2", "name": "b"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/ports/1"))
        .and(header("if-match", "revision_number=4"))
        .respond_with(
            ResponseTemplate::new(412).set_body_json(json!({"NeutronError": {
            "type": "RevisionNumberConstraintFailed",
            "message": "Constrained to 4, but current revision is 5", "detail": ""}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let bodies: Vec<PortCreate> = ["a", "b"]
        .iter()
        .map(|n| PortCreate {
            name: Some(n.to_string()),
            ..PortCreate::new("n")
        })
        .collect();
    let ports = neutron.create_ports(&bodies).await.unwrap();
    assert_eq!(ports.len(), 2);
    assert!(neutron.create_ports(&[]).await.unwrap().is_empty());
    let err = neutron
        .update_port_if_revision("1", &PortUpdate::default(), 4)
        .await
        .unwrap_err();
    assert!(err.is_precondition_failed());
    assert_eq!(err.neutron_type(), Some("RevisionNumberConstraintFailed"));
    assert_eq!(neutron.calls().post, 1, "an empty bulk sends nothing");
}

#[tokio::test]
async fn tag_calls() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/networks/n1/tags/a%20b%2Fc"))
        .respond_with(ResponseTemplate::new(201).set_body_string("null"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/ports/p1/tags"))
        .and(body_json(json!({"tags": ["x", "y"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tags": ["x", "y"]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/security-groups/sg/tags/x"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    neutron
        .add_tag(Resource::Networks, "n1", "a b/c")
        .await
        .unwrap();
    assert_eq!(
        neutron
            .replace_tags(Resource::Ports, "p1", &["x", "y"])
            .await
            .unwrap(),
        ["x", "y"]
    );
    neutron
        .remove_tag(Resource::SecurityGroups, "sg", "x")
        .await
        .unwrap();
}

#[tokio::test]
async fn list_with_security_group_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/security-groups"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"security_groups": [
            {"id": "sg", "name": "default", "security_group_rules": [
                {"id": "r", "direction": "egress", "ethertype": "IPv4", "protocol": null,
                 "port_range_min": null, "remote_ip_prefix": null}]}]})),
        )
        .mount(&server)
        .await;
    let groups = noauth(&server)
        .list_security_groups(&Query::new())
        .await
        .unwrap();
    assert_eq!(groups[0].security_group_rules[0].direction, "egress");
}

#[tokio::test]
async fn raw_requests_for_uncovered_calls() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/routers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"routers": []})))
        .mount(&server)
        .await;
    let neutron = noauth(&server);
    let v: Value = neutron
        .client()
        .send_json(&openstack::ApiRequest::new(
            openstack::Method::GET,
            "/v2.0/routers",
        ))
        .await
        .unwrap();
    assert_eq!(v, json!({"routers": []}));
}
