//! Neutron v2.0: typed calls over a [`Client`].

mod calls;
mod de;
mod ids;
mod query;
mod routers;
mod tags;
mod trunks;
mod types;

use std::fmt;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use ids::{
    AddressScopeId, FloatingIpId, NetworkId, PortId, PortStatus, ProjectId, RouterId,
    SecurityGroupId, SecurityGroupRuleId, SubnetId, SubnetPoolId, TrunkId, VifType,
};
pub use query::Query;
pub use routers::{InterfaceAction, RouterInterface};
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
        let req = ApiRequest::new(Method::GET, item_path(res, id)).query(query.pairs().to_vec());
        self.send_for(req, res.singular()).await
    }

    /// `POST /v2.0/{collection}` with `{singular: body}`.
    pub async fn create<B: Serialize, T: DeserializeOwned>(
        &self,
        res: Resource,
        body: &B,
    ) -> Result<T> {
        let path = collection_path(res);
        let body = json!({ res.singular(): to_value("POST", &path, body)? });
        self.send_for(ApiRequest::new(Method::POST, path).json(body), res.singular()).await
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
        self.send_for(req, res.singular()).await
    }

    /// `DELETE /v2.0/{collection}/{id}`.
    pub async fn delete(&self, res: Resource, id: &str) -> Result<()> {
        self.send_only(ApiRequest::new(Method::DELETE, item_path(res, id))).await
    }

    /// Sends `req` and takes `key` out of the JSON reply.
    async fn send_for<T: DeserializeOwned>(&self, req: ApiRequest, key: &str) -> Result<T> {
        let reply: Value = self.client.send_json(&req).await?;
        field(req.method.as_str(), &req.path, reply, key)
    }

    /// Sends `req`; the reply body is not read.
    async fn send_only(&self, req: ApiRequest) -> Result<()> {
        self.client.send(&req).await.map(drop)
    }

    // --------------------------------------------------------- extensions

    /// `GET /v2.0/extensions`.
    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        self.send_for(ApiRequest::new(Method::GET, "/v2.0/extensions"), "extensions").await
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
