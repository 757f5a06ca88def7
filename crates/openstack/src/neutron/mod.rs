//! Neutron v2.0: typed calls over a [`Client`].

mod de;
mod query;
mod types;

use std::fmt;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use query::Query;
pub use types::*;

use crate::client::{ApiRequest, CallStats, Client};
use crate::error::{Error, Result};
use crate::AuthOptions;

/// Neutron resource collections, for tags and generic calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `networks`.
    Networks,
    /// `subnets`.
    Subnets,
    /// `subnetpools`.
    SubnetPools,
    /// `ports`.
    Ports,
    /// `trunks`.
    Trunks,
    /// `security-groups`.
    SecurityGroups,
    /// `security-group-rules`.
    SecurityGroupRules,
    /// `floatingips`.
    FloatingIps,
    /// `routers`.
    Routers,
}

impl Resource {
    /// The collection name in URLs and list replies.
    pub fn collection(self) -> &'static str {
        match self {
            Resource::Networks => "networks",
            Resource::Subnets => "subnets",
            Resource::SubnetPools => "subnetpools",
            Resource::Ports => "ports",
            Resource::Trunks => "trunks",
            Resource::SecurityGroups => "security-groups",
            Resource::SecurityGroupRules => "security-group-rules",
            Resource::FloatingIps => "floatingips",
            Resource::Routers => "routers",
        }
    }

    /// The key of one object in request and reply bodies.
    pub fn singular(self) -> &'static str {
        match self {
            Resource::Networks => "network",
            Resource::Subnets => "subnet",
            Resource::SubnetPools => "subnetpool",
            Resource::Ports => "port",
            Resource::Trunks => "trunk",
            Resource::SecurityGroups => "security_group",
            Resource::SecurityGroupRules => "security_group_rule",
            Resource::FloatingIps => "floatingip",
            Resource::Routers => "router",
        }
    }

    /// The key of a list in list replies (`security_groups`, not the URL's
    /// `security-groups`).
    pub fn plural_key(self) -> &'static str {
        match self {
            Resource::SecurityGroups => "security_groups",
            Resource::SecurityGroupRules => "security_group_rules",
            other => other.collection(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.collection())
    }
}

/// Percent-encodes one path segment (ids, tags).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn collection_path(res: Resource) -> String {
    format!("/v2.0/{}", res.collection())
}

fn item_path(res: Resource, id: &str) -> String {
    format!("/v2.0/{}/{}", res.collection(), seg(id))
}

fn to_value<T: Serialize>(method: &str, path: &str, body: &T) -> Result<Value> {
    serde_json::to_value(body).map_err(|e| Error::decode(method, path, e))
}

/// Takes `key` out of a reply object.
fn field<T: DeserializeOwned>(method: &str, path: &str, mut v: Value, key: &str) -> Result<T> {
    let inner = v
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| Error::decode(method, path, format!("no {key:?} in the reply")))?;
    serde_json::from_value(inner).map_err(|e| Error::decode(method, path, e))
}

/// The query of a `rel=next` link in `{key}_links`, if any.
fn next_link(reply: &Value, key: &str) -> Option<Vec<(String, String)>> {
    let links = reply.get(format!("{key}_links"))?.as_array()?;
    let href = links
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))?
        .get("href")?
        .as_str()?;
    let base = reqwest::Url::parse("http://neutron/").expect("static URL parses");
    let url = base.join(href).ok()?;
    Some(url.query_pairs().into_owned().collect())
}

/// A Neutron v2.0 API handle. Cheap to clone (the [`Client`] inside is an
/// `Arc`); clones share token, connections and call counters.
#[derive(Debug, Clone)]
pub struct Neutron {
    client: Client,
}

impl Neutron {
    /// Builds a client for `options` (see [`Client::new`]).
    pub fn new(options: AuthOptions) -> Result<Self> {
        Ok(Neutron::from_client(Client::new(options)?))
    }

    /// Wraps an existing client.
    pub fn from_client(client: Client) -> Self {
        Neutron { client }
    }

    /// The underlying client (for [`Client::send`] of calls not covered here).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Requests sent so far, by method.
    pub fn calls(&self) -> CallStats {
        self.client.calls()
    }

    /// Replies received so far as `(method, status, count)`; see
    /// [`Client::reply_counts`].
    pub fn reply_counts(&self) -> Vec<(String, u16, u64)> {
        self.client.reply_counts()
    }

    // ------------------------------------------------------------ generic

    /// `GET /v2.0/{collection}` with `query`, following `{collection}_links`
    /// `rel=next` pages until the end.
    pub async fn list<T: DeserializeOwned>(&self, res: Resource, query: &Query) -> Result<Vec<T>> {
        let path = collection_path(res);
        let key = res.plural_key();
        let mut items: Vec<T> = Vec::new();
        let mut pairs = query.pairs().to_vec();
        loop {
            let req = ApiRequest::new(Method::GET, path.clone()).query(pairs.clone());
            let mut reply: Value = self.client.send_json(&req).await?;
            let next = next_link(&reply, key);
            let page: Vec<T> = field("GET", &path, reply.take(), key)?;
            let empty = page.is_empty();
            items.extend(page);
            match next {
                // Stop on an empty page or a link that would loop.
                Some(n) if !empty && n != pairs => pairs = n,
                _ => return Ok(items),
            }
        }
    }

    /// `GET /v2.0/{collection}/{id}`, with `fields=` and other parameters
    /// from `query`.
    pub async fn show<T: DeserializeOwned>(
        &self,
        res: Resource,
        id: &str,
        query: &Query,
    ) -> Result<T> {
        let path = item_path(res, id);
        let req = ApiRequest::new(Method::GET, path.clone()).query(query.pairs().to_vec());
        let reply: Value = self.client.send_json(&req).await?;
        field("GET", &path, reply, res.singular())
    }

    /// `POST /v2.0/{collection}` with `{singular: body}`.
    pub async fn create<B: Serialize, T: DeserializeOwned>(
        &self,
        res: Resource,
        body: &B,
    ) -> Result<T> {
        let path = collection_path(res);
        let body = json!({ res.singular(): to_value("POST", &path, body)? });
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::POST, path.clone()).json(body))
            .await?;
        field("POST", &path, reply, res.singular())
    }

    /// `PUT /v2.0/{collection}/{id}` with `{singular: body}`.
    pub async fn update<B: Serialize, T: DeserializeOwned>(
        &self,
        res: Resource,
        id: &str,
        body: &B,
    ) -> Result<T> {
        self.update_with(res, id, body, None).await
    }

    async fn update_with<B: Serialize, T: DeserializeOwned>(
        &self,
        res: Resource,
        id: &str,
        body: &B,
        if_match_revision: Option<u64>,
    ) -> Result<T> {
        let path = item_path(res, id);
        let body = json!({ res.singular(): to_value("PUT", &path, body)? });
        let mut req = ApiRequest::new(Method::PUT, path.clone()).json(body);
        if let Some(rev) = if_match_revision {
            let value = HeaderValue::from_str(&format!("revision_number={rev}"))
                .map_err(|e| Error::decode("PUT", &path, e))?;
            req = req.header(HeaderName::from_static("if-match"), value);
        }
        let reply: Value = self.client.send_json(&req).await?;
        field("PUT", &path, reply, res.singular())
    }

    /// `DELETE /v2.0/{collection}/{id}`.
    pub async fn delete(&self, res: Resource, id: &str) -> Result<()> {
        self.client
            .send(&ApiRequest::new(Method::DELETE, item_path(res, id)))
            .await
            .map(drop)
    }

    // --------------------------------------------------------- extensions

    /// `GET /v2.0/extensions`.
    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        let path = "/v2.0/extensions";
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::GET, path))
            .await?;
        field("GET", path, reply, "extensions")
    }

    // ----------------------------------------------------------- networks

    /// Creates a network.
    pub async fn create_network(&self, body: &NetworkCreate) -> Result<Network> {
        self.create(Resource::Networks, body).await
    }

    /// Shows a network.
    pub async fn get_network(&self, id: &str) -> Result<Network> {
        self.show(Resource::Networks, id, &Query::new()).await
    }

    /// Lists networks (all pages).
    pub async fn list_networks(&self, query: &Query) -> Result<Vec<Network>> {
        self.list(Resource::Networks, query).await
    }

    /// Updates a network.
    pub async fn update_network(&self, id: &str, body: &NetworkUpdate) -> Result<Network> {
        self.update(Resource::Networks, id, body).await
    }

    /// Deletes a network.
    pub async fn delete_network(&self, id: &str) -> Result<()> {
        self.delete(Resource::Networks, id).await
    }

    // ------------------------------------------------------------ subnets

    /// Creates a subnet.
    pub async fn create_subnet(&self, body: &SubnetCreate) -> Result<Subnet> {
        self.create(Resource::Subnets, body).await
    }

    /// Shows a subnet.
    pub async fn get_subnet(&self, id: &str) -> Result<Subnet> {
        self.show(Resource::Subnets, id, &Query::new()).await
    }

    /// Lists subnets (all pages).
    pub async fn list_subnets(&self, query: &Query) -> Result<Vec<Subnet>> {
        self.list(Resource::Subnets, query).await
    }

    /// Updates a subnet.
    pub async fn update_subnet(&self, id: &str, body: &SubnetUpdate) -> Result<Subnet> {
        self.update(Resource::Subnets, id, body).await
    }

    /// Deletes a subnet.
    pub async fn delete_subnet(&self, id: &str) -> Result<()> {
        self.delete(Resource::Subnets, id).await
    }

    // -------------------------------------------------------- subnetpools

    /// Creates a subnetpool.
    pub async fn create_subnetpool(&self, body: &SubnetPoolCreate) -> Result<SubnetPool> {
        self.create(Resource::SubnetPools, body).await
    }

    /// Shows a subnetpool.
    pub async fn get_subnetpool(&self, id: &str) -> Result<SubnetPool> {
        self.show(Resource::SubnetPools, id, &Query::new()).await
    }

    /// Lists subnetpools (all pages).
    pub async fn list_subnetpools(&self, query: &Query) -> Result<Vec<SubnetPool>> {
        self.list(Resource::SubnetPools, query).await
    }

    /// Updates a subnetpool.
    pub async fn update_subnetpool(&self, id: &str, body: &SubnetPoolUpdate) -> Result<SubnetPool> {
        self.update(Resource::SubnetPools, id, body).await
    }

    /// Deletes a subnetpool.
    pub async fn delete_subnetpool(&self, id: &str) -> Result<()> {
        self.delete(Resource::SubnetPools, id).await
    }

    // -------------------------------------------------------------- ports

    /// Creates a port.
    pub async fn create_port(&self, body: &PortCreate) -> Result<Port> {
        self.create(Resource::Ports, body).await
    }

    /// Creates ports in one atomic bulk request (`{"ports": [...]}`): either
    /// all are created or none. An empty slice sends nothing.
    pub async fn create_ports(&self, bodies: &[PortCreate]) -> Result<Vec<Port>> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let path = collection_path(Resource::Ports);
        let body = json!({ "ports": to_value("POST", &path, &bodies)? });
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::POST, path.clone()).json(body))
            .await?;
        field("POST", &path, reply, "ports")
    }

    /// Shows a port.
    pub async fn get_port(&self, id: &str) -> Result<Port> {
        self.show(Resource::Ports, id, &Query::new()).await
    }

    /// Lists ports (all pages).
    pub async fn list_ports(&self, query: &Query) -> Result<Vec<Port>> {
        self.list(Resource::Ports, query).await
    }

    /// Updates a port.
    pub async fn update_port(&self, id: &str, body: &PortUpdate) -> Result<Port> {
        self.update(Resource::Ports, id, body).await
    }

    /// Updates a port only if its `revision_number` is still `revision`
    /// (`If-Match: revision_number=N`); otherwise Neutron answers 412
    /// ([`Error::is_precondition_failed`]).
    pub async fn update_port_if_revision(
        &self,
        id: &str,
        body: &PortUpdate,
        revision: u64,
    ) -> Result<Port> {
        self.update_with(Resource::Ports, id, body, Some(revision))
            .await
    }

    /// Deletes a port.
    pub async fn delete_port(&self, id: &str) -> Result<()> {
        self.delete(Resource::Ports, id).await
    }

    // ------------------------------------------------------------- trunks

    /// Creates a trunk.
    pub async fn create_trunk(&self, body: &TrunkCreate) -> Result<Trunk> {
        self.create(Resource::Trunks, body).await
    }

    /// Shows a trunk.
    pub async fn get_trunk(&self, id: &str) -> Result<Trunk> {
        self.show(Resource::Trunks, id, &Query::new()).await
    }

    /// Lists trunks (all pages).
    pub async fn list_trunks(&self, query: &Query) -> Result<Vec<Trunk>> {
        self.list(Resource::Trunks, query).await
    }

    /// Updates a trunk.
    pub async fn update_trunk(&self, id: &str, body: &TrunkUpdate) -> Result<Trunk> {
        self.update(Resource::Trunks, id, body).await
    }

    /// Deletes a trunk.
    pub async fn delete_trunk(&self, id: &str) -> Result<()> {
        self.delete(Resource::Trunks, id).await
    }

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
        let list: Vec<Value> = port_ids
            .iter()
            .map(|p| json!({ "port_id": p.as_ref() }))
            .collect();
        self.trunk_action(trunk_id, "remove_subports", json!({ "sub_ports": list }))
            .await
    }

    /// `GET /v2.0/trunks/{id}/get_subports`.
    pub async fn get_subports(&self, trunk_id: &str) -> Result<Vec<SubPort>> {
        let path = format!("{}/get_subports", item_path(Resource::Trunks, trunk_id));
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::GET, path.clone()))
            .await?;
        field("GET", &path, reply, "sub_ports")
    }

    async fn trunk_action(&self, trunk_id: &str, action: &str, body: Value) -> Result<Trunk> {
        let path = format!("{}/{action}", item_path(Resource::Trunks, trunk_id));
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::PUT, path.clone()).json(body))
            .await?;
        // Neutron replies with the bare trunk; accept a wrapped one too.
        let trunk = match reply {
            Value::Object(mut m) if m.contains_key("trunk") && !m.contains_key("id") => {
                m.remove("trunk").unwrap_or(Value::Null)
            }
            other => other,
        };
        serde_json::from_value(trunk).map_err(|e| Error::decode("PUT", &path, e))
    }

    // ---------------------------------------------------- security groups

    /// Creates a security group.
    pub async fn create_security_group(&self, body: &SecurityGroupCreate) -> Result<SecurityGroup> {
        self.create(Resource::SecurityGroups, body).await
    }

    /// Shows a security group.
    pub async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.show(Resource::SecurityGroups, id, &Query::new()).await
    }

    /// Lists security groups (all pages).
    pub async fn list_security_groups(&self, query: &Query) -> Result<Vec<SecurityGroup>> {
        self.list(Resource::SecurityGroups, query).await
    }

    /// Deletes a security group.
    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.delete(Resource::SecurityGroups, id).await
    }

    /// Creates a security group rule.
    pub async fn create_security_group_rule(
        &self,
        body: &SecurityGroupRuleCreate,
    ) -> Result<SecurityGroupRule> {
        self.create(Resource::SecurityGroupRules, body).await
    }

    /// Lists security group rules (all pages).
    pub async fn list_security_group_rules(&self, query: &Query) -> Result<Vec<SecurityGroupRule>> {
        self.list(Resource::SecurityGroupRules, query).await
    }

    /// Deletes a security group rule.
    pub async fn delete_security_group_rule(&self, id: &str) -> Result<()> {
        self.delete(Resource::SecurityGroupRules, id).await
    }

    // ------------------------------------------------------- floating IPs

    /// Creates a floating IP.
    pub async fn create_floating_ip(&self, body: &FloatingIpCreate) -> Result<FloatingIp> {
        self.create(Resource::FloatingIps, body).await
    }

    /// Shows a floating IP.
    pub async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.show(Resource::FloatingIps, id, &Query::new()).await
    }

    /// Lists floating IPs (all pages).
    pub async fn list_floating_ips(&self, query: &Query) -> Result<Vec<FloatingIp>> {
        self.list(Resource::FloatingIps, query).await
    }

    /// Updates (associates/disassociates) a floating IP.
    pub async fn update_floating_ip(
        &self,
        id: &str,
        body: &FloatingIpUpdate,
    ) -> Result<FloatingIp> {
        self.update(Resource::FloatingIps, id, body).await
    }

    /// Deletes a floating IP.
    pub async fn delete_floating_ip(&self, id: &str) -> Result<()> {
        self.delete(Resource::FloatingIps, id).await
    }

    // --------------------------------------------------------------- tags

    fn tags_path(res: Resource, id: &str) -> String {
        format!("{}/tags", item_path(res, id))
    }

    /// The tags of a resource.
    pub async fn get_tags(&self, res: Resource, id: &str) -> Result<Vec<String>> {
        let path = Self::tags_path(res, id);
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::GET, path.clone()))
            .await?;
        field("GET", &path, reply, "tags")
    }

    /// Adds one tag (`PUT .../tags/{tag}`); adding an existing tag is a no-op.
    pub async fn add_tag(&self, res: Resource, id: &str, tag: &str) -> Result<()> {
        let path = format!("{}/{}", Self::tags_path(res, id), seg(tag));
        self.client
            .send(&ApiRequest::new(Method::PUT, path))
            .await
            .map(drop)
    }

    /// Replaces all tags (`PUT .../tags {"tags": [...]}`); returns the new set.
    pub async fn replace_tags<S: AsRef<str>>(
        &self,
        res: Resource,
        id: &str,
        tags: &[S],
    ) -> Result<Vec<String>> {
        let path = Self::tags_path(res, id);
        let list: Vec<&str> = tags.iter().map(AsRef::as_ref).collect();
        let req = ApiRequest::new(Method::PUT, path.clone()).json(json!({ "tags": list }));
        let reply: Value = self.client.send_json(&req).await?;
        field("PUT", &path, reply, "tags")
    }

    /// Removes one tag (`DELETE .../tags/{tag}`; 404 if absent).
    pub async fn remove_tag(&self, res: Resource, id: &str, tag: &str) -> Result<()> {
        let path = format!("{}/{}", Self::tags_path(res, id), seg(tag));
        self.client
            .send(&ApiRequest::new(Method::DELETE, path))
            .await
            .map(drop)
    }

    /// Removes all tags (`DELETE .../tags`).
    pub async fn remove_all_tags(&self, res: Resource, id: &str) -> Result<()> {
        self.client
            .send(&ApiRequest::new(Method::DELETE, Self::tags_path(res, id)))
            .await
            .map(drop)
    }

    // ------------------------------------------------------------- quotas

    /// The quotas of a project.
    pub async fn get_quota(&self, project_id: &str) -> Result<Quota> {
        let path = format!("/v2.0/quotas/{}", seg(project_id));
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::GET, path.clone()))
            .await?;
        field("GET", &path, reply, "quota")
    }

    /// Sets the given quotas of a project; returns all of them.
    pub async fn update_quota(&self, project_id: &str, quota: &Quota) -> Result<Quota> {
        let path = format!("/v2.0/quotas/{}", seg(project_id));
        let body = json!({ "quota": to_value("PUT", &path, quota)? });
        let reply: Value = self
            .client
            .send_json(&ApiRequest::new(Method::PUT, path.clone()).json(body))
            .await?;
        field("PUT", &path, reply, "quota")
    }

    /// Resets a project's quotas to the defaults.
    pub async fn reset_quota(&self, project_id: &str) -> Result<()> {
        let path = format!("/v2.0/quotas/{}", seg(project_id));
        self.client
            .send(&ApiRequest::new(Method::DELETE, path))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("abc-DEF_1.2~"), "abc-DEF_1.2~");
        assert_eq!(seg("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(seg("é"), "%C3%A9");
    }

    #[test]
    fn next_links() {
        let v = json!({"ports": [], "ports_links": [
            {"rel": "previous", "href": "http://x/v2.0/ports?marker=a&page_reverse=True"},
            {"rel": "next", "href": "http://x/v2.0/ports?limit=2&marker=b&tags=k%2Cl"}]});
        assert_eq!(
            next_link(&v, "ports").unwrap(),
            vec![
                ("limit".to_owned(), "2".to_owned()),
                ("marker".to_owned(), "b".to_owned()),
                ("tags".to_owned(), "k,l".to_owned())
            ]
        );
        assert_eq!(next_link(&json!({"ports": []}), "ports"), None);
    }

    #[test]
    fn resource_names() {
        assert_eq!(Resource::SecurityGroups.collection(), "security-groups");
        assert_eq!(Resource::SecurityGroups.plural_key(), "security_groups");
        assert_eq!(Resource::FloatingIps.singular(), "floatingip");
    }
}
