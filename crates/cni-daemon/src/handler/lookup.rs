//! Resolving what a CNI configuration names (`neutron.network`,
//! `neutron.namespace_networks`, `neutron.subnet`, `neutron.security_groups`)
//! to Neutron ids, by id or by name, cached (docs/cni.md § Configuration).

use super::{errors, lock, NetworkRef, NeutronCni};
use crate::proto::AttachmentRequest;
use crate::CniError;
use openstack::neutron::Query;

impl NeutronCni {
    /// The network named by `neutron.namespace_networks[<K8S_POD_NAMESPACE>]`,
    /// else by `neutron.network`.
    pub(super) async fn network_for(
        &self,
        req: &AttachmentRequest,
    ) -> Result<NetworkRef, CniError> {
        let conf = req.config.neutron.clone().unwrap_or_default();
        let by_namespace = req.args.k8s_pod_namespace().and_then(|ns| {
            conf.namespace_networks
                .as_ref()
                .and_then(|map| map.get(ns))
                .map(|net| (format!("neutron.namespace_networks[{ns:?}]"), net.clone()))
        });
        let (key, reference) = match by_namespace {
            Some(found) => found,
            None => match conf.network {
                Some(net) => ("neutron.network".to_string(), net),
                None => {
                    return Err(CniError::invalid_config(
                        "no Neutron network: set neutron.network (or map the pod's namespace in neutron.namespace_networks)",
                    ))
                }
            },
        };
        self.resolve_network(&key, &reference).await
    }

    pub(super) async fn resolve_network(
        &self,
        key: &str,
        reference: &str,
    ) -> Result<NetworkRef, CniError> {
        if let Some(found) = lock(&self.networks).get(reference) {
            return Ok(found.clone());
        }
        let query = Query::new().fields(["id", "name", "mtu"]);
        let query =
            if looks_like_uuid(reference) { query.id(reference) } else { query.name(reference) };
        let found = self
            .neutron
            .list_networks(&query)
            .await
            .map_err(|e| errors::neutron(&format!("looking up {key} = {reference:?}"), &e))?;
        let network = match found.as_slice() {
            [one] => NetworkRef { id: one.id.to_string(), mtu: one.mtu },
            [] => {
                return Err(CniError::invalid_config(format!(
                    "{key} = {reference:?}: no Neutron network with that name or id"
                )))
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|n| n.id.as_str()).collect();
                return Err(CniError::invalid_config(format!(
                    "{key} = {reference:?}: {} Neutron networks have that name ({}); use the id",
                    many.len(),
                    ids.join(", ")
                )));
            }
        };
        lock(&self.networks).insert(reference.to_string(), network.clone());
        Ok(network)
    }

    pub(super) fn forget_network(&self, network_id: &str) {
        lock(&self.networks).retain(|_, net| net.id != network_id);
    }

    pub(super) async fn subnet_id(
        &self,
        network_id: &str,
        reference: &str,
    ) -> Result<String, CniError> {
        let query = Query::new().network_id(network_id).fields(["id"]);
        let query =
            if looks_like_uuid(reference) { query.id(reference) } else { query.name(reference) };
        let lookup = async {
            let found = self.neutron.list_subnets(&query).await.map_err(|e| {
                errors::neutron(&format!("looking up neutron.subnet = {reference:?}"), &e)
            })?;
            Ok(found.into_iter().map(|s| s.id.into_string()).collect())
        };
        self.one_id(
            format!("subnet:{network_id}:{reference}"),
            lookup,
            || format!("neutron.subnet = {reference:?}: no subnet with that name or id on network {network_id}"),
            || format!("neutron.subnet = {reference:?}: several subnets of network {network_id} have that name; use the id"),
        )
        .await
    }

    pub(super) async fn security_group_id(
        &self,
        reference: &str,
        project: Option<&str>,
    ) -> Result<String, CniError> {
        if looks_like_uuid(reference) {
            return Ok(reference.to_string());
        }
        let mut query = Query::new().name(reference).fields(["id"]);
        if let Some(project) = project {
            query = query.project_id(project);
        }
        let lookup = async {
            let found = self.neutron.list_security_groups(&query).await.map_err(|e| {
                errors::neutron(
                    &format!("looking up neutron.security_groups entry {reference:?}"),
                    &e,
                )
            })?;
            Ok(found.into_iter().map(|g| g.id.into_string()).collect())
        };
        self.one_id(
            format!("sg:{}:{reference}", project.unwrap_or_default()),
            lookup,
            || format!("neutron.security_groups: no security group named {reference:?}"),
            || format!("neutron.security_groups: several security groups are named {reference:?}; use the id or set neutron.project"),
        )
        .await
    }

    /// The id cached under `cache_key`, else the one `lookup` finds,
    /// cached; none or several is a configuration error, worded by `none`
    /// or `several`.
    async fn one_id(
        &self,
        cache_key: String,
        lookup: impl std::future::Future<Output = Result<Vec<String>, CniError>>,
        none: impl FnOnce() -> String,
        several: impl FnOnce() -> String,
    ) -> Result<String, CniError> {
        if let Some(id) = lock(&self.ids).get(&cache_key) {
            return Ok(id.clone());
        }
        let id = match <[String; 1]>::try_from(lookup.await?) {
            Ok([one]) => one,
            Err(found) if found.is_empty() => return Err(CniError::invalid_config(none())),
            Err(_) => return Err(CniError::invalid_config(several())),
        };
        lock(&self.ids).insert(cache_key, id.clone());
        Ok(id)
    }
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        assert!(looks_like_uuid("0f0e0d0c-aaaa-bbbb-cccc-000000000001"));
        assert!(!looks_like_uuid("pods"));
        assert!(!looks_like_uuid("0f0e0d0c-aaaa-bbbb-cccc-00000000000g"));
    }
}
