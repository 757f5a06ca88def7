//! Router interface actions ([`InterfaceAction`]: `add_router_interface`,
//! `remove_router_interface`): attaching a subnet to a router and
//! detaching it.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{item_path, Neutron, PortId, Resource, RouterId, SubnetId};
use crate::client::ApiRequest;
use crate::error::{Error, Result};

/// What Neutron answers to a router interface action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouterInterface {
    /// The router.
    pub id: RouterId,
    /// The router's port on the subnet.
    pub port_id: PortId,
    /// The subnet (the first one, for a port on several).
    pub subnet_id: SubnetId,
}

/// A router interface action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceAction {
    /// `add_router_interface`: the subnet's gateway address on the router.
    /// A subnet already attached answers 400.
    Add,
    /// `remove_router_interface`. A subnet not attached, or a router that
    /// is gone, answers 404.
    Remove,
}

impl InterfaceAction {
    /// The action's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceAction::Add => "add_router_interface",
            InterfaceAction::Remove => "remove_router_interface",
        }
    }
}

impl Neutron {
    /// `PUT /v2.0/routers/{router}/{action}` for `subnet`.
    pub async fn router_interface(
        &self,
        action: InterfaceAction,
        router: &str,
        subnet: &str,
    ) -> Result<RouterInterface> {
        let path = format!("{}/{}", item_path(Resource::Routers, router), action.as_str());
        let req = ApiRequest::new(Method::PUT, path.clone()).json(json!({ "subnet_id": subnet }));
        // Neutron replies with the bare interface object.
        let reply: serde_json::Value = self.client.send_json(&req).await?;
        serde_json::from_value(reply).map_err(|e| Error::decode("PUT", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn attaches_and_detaches_a_subnet() {
        let server = MockServer::start().await;
        let reply = json!({"id": "r1", "port_id": "p1", "subnet_id": "s1",
                           "subnet_ids": ["s1"], "tenant_id": "t", "network_id": "n1"});
        for action in [InterfaceAction::Add, InterfaceAction::Remove] {
            Mock::given(method("PUT"))
                .and(path(format!("/v2.0/routers/r1/{}", action.as_str())))
                .and(body_json(json!({"subnet_id": "s1"})))
                .respond_with(ResponseTemplate::new(200).set_body_json(&reply))
                .mount(&server)
                .await;
        }
        let neutron = Neutron::new(crate::AuthOptions::noauth(server.uri())).expect("client");
        let added =
            neutron.router_interface(InterfaceAction::Add, "r1", "s1").await.expect("added");
        assert_eq!(added.port_id, "p1");
        assert_eq!(added.subnet_id, "s1");
        let removed =
            neutron.router_interface(InterfaceAction::Remove, "r1", "s1").await.expect("removed");
        assert_eq!(removed.id, "r1");
        let err = neutron
            .router_interface(InterfaceAction::Remove, "r2", "s1")
            .await
            .expect_err("no script");
        assert!(err.is_not_found(), "{err}");
    }
}
