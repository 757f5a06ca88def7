//! Query strings for Neutron list calls: filters, `fields=`, paging, sorting.

use std::net::IpAddr;

/// A list query: filters, field selection, page size. Keys may repeat (a
/// repeated filter means "any of", as in Neutron).
///
/// ```
/// use openstack::neutron::Query;
/// let q = Query::new()
///     .network_id("net")
///     .tags(["kuryr", "ep"])
///     .fixed_ip_address("10.0.0.5".parse().unwrap())
///     .fields(["id", "fixed_ips"])
///     .limit(100);
/// assert_eq!(
///     q.to_query_string(),
///     "network_id=net&tags=kuryr%2Cep&fixed_ips=ip_address%3D10.0.0.5&fields=id&fields=fixed_ips&limit=100"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// Defines the tag filters of [`Query`], which differ only in their key.
macro_rules! tag_filters {
    ($($(#[$doc:meta])* $name:ident => $key:literal,)*) => {
        $(
            $(#[$doc])*
            pub fn $name<I, S>(self, tags: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: AsRef<str>,
            {
                self.tag_filter($key, tags)
            }
        )*
    };
}

impl Query {
    /// An empty query.
    pub fn new() -> Self {
        Query::default()
    }

    /// Adds `key=value` (repeatable).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// URL-encoded form (for logs and tests).
    pub fn to_query_string(&self) -> String {
        let mut url = reqwest::Url::parse("http://q/").expect("static URL parses");
        url.query_pairs_mut().extend_pairs(self.pairs.iter());
        url.query().unwrap_or_default().to_owned()
    }

    /// Returns only these fields (`fields=a&fields=b`).
    pub fn fields<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        fields.into_iter().fold(self, |q, f| q.param("fields", f))
    }

    /// `id=` filter.
    pub fn id(self, id: impl Into<String>) -> Self {
        self.param("id", id)
    }

    /// `name=` filter.
    pub fn name(self, name: impl Into<String>) -> Self {
        self.param("name", name)
    }

    /// `network_id=` filter.
    pub fn network_id(self, id: impl Into<String>) -> Self {
        self.param("network_id", id)
    }

    /// `device_id=` filter.
    pub fn device_id(self, id: impl Into<String>) -> Self {
        self.param("device_id", id)
    }

    /// `device_owner=` filter.
    pub fn device_owner(self, owner: impl Into<String>) -> Self {
        self.param("device_owner", owner)
    }

    /// `mac_address=` filter.
    pub fn mac_address(self, mac: impl Into<String>) -> Self {
        self.param("mac_address", mac)
    }

    /// `binding:host_id=` filter.
    pub fn binding_host_id(self, host: impl Into<String>) -> Self {
        self.param("binding:host_id", host)
    }

    /// `project_id=` filter.
    pub fn project_id(self, id: impl Into<String>) -> Self {
        self.param("project_id", id)
    }

    /// `status=` filter.
    pub fn status(self, status: impl Into<String>) -> Self {
        self.param("status", status)
    }

    /// `cidr=` filter.
    pub fn cidr(self, cidr: impl Into<String>) -> Self {
        self.param("cidr", cidr)
    }

    /// `subnetpool_id=` filter.
    pub fn subnetpool_id(self, id: impl Into<String>) -> Self {
        self.param("subnetpool_id", id)
    }

    /// `port_id=` filter (trunks, floating IPs).
    pub fn port_id(self, id: impl Into<String>) -> Self {
        self.param("port_id", id)
    }

    /// `security_group_id=` filter (rules).
    pub fn security_group_id(self, id: impl Into<String>) -> Self {
        self.param("security_group_id", id)
    }

    /// `ip_version=` filter.
    pub fn ip_version(self, version: u8) -> Self {
        self.param("ip_version", version.to_string())
    }

    /// `fixed_ips=ip_address=X`: ports holding this address.
    pub fn fixed_ip_address(self, ip: IpAddr) -> Self {
        self.param("fixed_ips", format!("ip_address={ip}"))
    }

    /// `fixed_ips=subnet_id=Y`: ports with an address on this subnet.
    pub fn fixed_ip_subnet(self, subnet_id: impl AsRef<str>) -> Self {
        self.param("fixed_ips", format!("subnet_id={}", subnet_id.as_ref()))
    }

    tag_filters! {
        /// `tags=a,b`: resources having all these tags.
        tags => "tags",
        /// `tags-any=a,b`: resources having any of these tags.
        tags_any => "tags-any",
        /// `not-tags=a,b`: resources not having all of these tags.
        not_tags => "not-tags",
        /// `not-tags-any=a,b`: resources having none of these tags.
        not_tags_any => "not-tags-any",
    }

    fn tag_filter<I, S>(self, key: &str, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = tags.into_iter().map(|t| t.as_ref().to_owned()).collect::<Vec<_>>().join(",");
        self.param(key, joined)
    }

    /// Page size; further pages are followed automatically by list calls.
    pub fn limit(self, limit: u32) -> Self {
        self.param("limit", limit.to_string())
    }

    /// Start after this id.
    pub fn marker(self, id: impl Into<String>) -> Self {
        self.param("marker", id)
    }

    /// Sort by `key`, ascending or descending.
    pub fn sort(self, key: impl Into<String>, ascending: bool) -> Self {
        self.param("sort_key", key).param("sort_dir", if ascending { "asc" } else { "desc" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_encode_like_neutronclient() {
        let q = Query::new()
            .binding_host_id("node-1")
            .fixed_ip_subnet("s1")
            .not_tags(["a"])
            .tags_any(["x", "y"])
            .not_tags_any(["z"])
            .mac_address("fa:16:3e:00:00:01")
            .sort("name", false);
        assert_eq!(
            q.to_query_string(),
            "binding%3Ahost_id=node-1&fixed_ips=subnet_id%3Ds1&not-tags=a&tags-any=x%2Cy&not-tags-any=z&mac_address=fa%3A16%3A3e%3A00%3A00%3A01&sort_key=name&sort_dir=desc"
        );
        assert!(Query::new().is_empty());
    }
}
