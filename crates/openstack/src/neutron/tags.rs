//! Tags of any resource, and quotas of a project.

use reqwest::Method;
use serde_json::json;

use super::{item_path, seg, to_value, Neutron, Quota, Resource};
use crate::client::ApiRequest;
use crate::error::Result;

fn tags_path(res: Resource, id: &str) -> String {
    format!("{}/tags", item_path(res, id))
}

fn tag_path(res: Resource, id: &str, tag: &str) -> String {
    format!("{}/{}", tags_path(res, id), seg(tag))
}

fn quota_path(project_id: &str) -> String {
    format!("/v2.0/quotas/{}", seg(project_id))
}

impl Neutron {
    /// The tags of a resource.
    pub async fn get_tags(&self, res: Resource, id: &str) -> Result<Vec<String>> {
        self.send_for(ApiRequest::new(Method::GET, tags_path(res, id)), "tags").await
    }

    /// Adds one tag (`PUT .../tags/{tag}`); adding an existing tag is a no-op.
    pub async fn add_tag(&self, res: Resource, id: &str, tag: &str) -> Result<()> {
        self.send_only(ApiRequest::new(Method::PUT, tag_path(res, id, tag))).await
    }

    /// Replaces all tags (`PUT .../tags {"tags": [...]}`); returns the new set.
    pub async fn replace_tags<S: AsRef<str>>(
        &self,
        res: Resource,
        id: &str,
        tags: &[S],
    ) -> Result<Vec<String>> {
        let list: Vec<&str> = tags.iter().map(AsRef::as_ref).collect();
        let req = ApiRequest::new(Method::PUT, tags_path(res, id)).json(json!({ "tags": list }));
        self.send_for(req, "tags").await
    }

    /// Removes one tag (`DELETE .../tags/{tag}`; 404 if absent).
    pub async fn remove_tag(&self, res: Resource, id: &str, tag: &str) -> Result<()> {
        self.send_only(ApiRequest::new(Method::DELETE, tag_path(res, id, tag))).await
    }

    /// Removes all tags (`DELETE .../tags`).
    pub async fn remove_all_tags(&self, res: Resource, id: &str) -> Result<()> {
        self.send_only(ApiRequest::new(Method::DELETE, tags_path(res, id))).await
    }

    /// The quotas of a project.
    pub async fn get_quota(&self, project_id: &str) -> Result<Quota> {
        self.send_for(ApiRequest::new(Method::GET, quota_path(project_id)), "quota").await
    }

    /// Sets the given quotas of a project; returns all of them.
    pub async fn update_quota(&self, project_id: &str, quota: &Quota) -> Result<Quota> {
        let path = quota_path(project_id);
        let body = json!({ "quota": to_value("PUT", &path, quota)? });
        self.send_for(ApiRequest::new(Method::PUT, path).json(body), "quota").await
    }

    /// Resets a project's quotas to the defaults.
    pub async fn reset_quota(&self, project_id: &str) -> Result<()> {
        self.send_only(ApiRequest::new(Method::DELETE, quota_path(project_id))).await
    }
}
