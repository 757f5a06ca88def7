//! Trunk subport actions (`add_subports`, `remove_subports`,
//! `get_subports`).

use reqwest::Method;
use serde_json::{json, Value};

use super::{item_path, Neutron, Resource, SubPort, Trunk};
use crate::client::ApiRequest;
use crate::error::{Error, Result};

impl Neutron {
    /// Adds subports; returns the trunk (Neutron replies unwrapped).
    pub async fn add_subports(&self, trunk_id: &str, sub_ports: &[SubPort]) -> Result<Trunk> {
        let body = json!({ "sub_ports": sub_ports });
        self.trunk_action(trunk_id, "add_subports", body).await
    }

    /// Removes the subports with these port ids; returns the trunk.
    pub async fn remove_subports<S: AsRef<str>>(
        &self,
        trunk_id: &str,
        port_ids: &[S],
    ) -> Result<Trunk> {
        let list: Vec<Value> = port_ids.iter().map(|p| json!({ "port_id": p.as_ref() })).collect();
        self.trunk_action(trunk_id, "remove_subports", json!({ "sub_ports": list })).await
    }

    /// `GET /v2.0/trunks/{id}/get_subports`.
    pub async fn get_subports(&self, trunk_id: &str) -> Result<Vec<SubPort>> {
        let path = format!("{}/get_subports", item_path(Resource::Trunks, trunk_id));
        self.send_for(ApiRequest::new(Method::GET, path), "sub_ports").await
    }

    async fn trunk_action(&self, trunk_id: &str, action: &str, body: Value) -> Result<Trunk> {
        let path = format!("{}/{action}", item_path(Resource::Trunks, trunk_id));
        let reply: Value =
            self.client.send_json(&ApiRequest::new(Method::PUT, path.clone()).json(body)).await?;
        // Neutron replies with the bare trunk; accept a wrapped one too.
        let trunk = match reply {
            Value::Object(mut m) if m.contains_key("trunk") && !m.contains_key("id") => {
                m.remove("trunk").unwrap_or(Value::Null)
            }
            other => other,
        };
        serde_json::from_value(trunk).map_err(|e| Error::decode("PUT", &path, e))
    }
}
