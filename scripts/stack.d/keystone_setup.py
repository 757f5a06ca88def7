"""Populate a freshly bootstrapped Keystone for the dev stack (idempotent).

- project "service", user "neutron" with role admin there (Neutron's
  keystonemiddleware service user, it validates tokens)
- project "demo", user "demo" with role member (a non-admin for 403 tests)
- catalog: service "neutron" of type network, public/internal/admin
  endpoints in the region

usage: keystone_setup.py AUTH_URL REGION ADMIN_PW DEMO_PW NEUTRON_PW NEUTRON_URL
"""
import sys

import requests


class Keystone:
    def __init__(self, url, password):
        self.url = url.rstrip("/")
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"},
                "password": password}}},
            "scope": {"project": {"name": "admin",
                                  "domain": {"name": "Default"}}}}}
        r = requests.post(self.url + "/auth/tokens", json=body, timeout=30)
        r.raise_for_status()
        self.headers = {"X-Auth-Token": r.headers["X-Subject-Token"]}

    def get(self, path, **params):
        r = requests.get(self.url + path, headers=self.headers,
                         params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path, body):
        r = requests.post(self.url + path, headers=self.headers, json=body,
                          timeout=30)
        r.raise_for_status()
        return r.json()

    def put(self, path):
        r = requests.put(self.url + path, headers=self.headers, timeout=30)
        r.raise_for_status()

    def ensure(self, collection, key, name, body, **filters):
        found = self.get("/" + collection, name=name, **filters)[collection]
        if found:
            return found[0]["id"]
        body = dict(body, name=name)
        return self.post("/" + collection, {key: body})[key]["id"]


def main(auth_url, region, admin_pw, demo_pw, neutron_pw, neutron_url):
    ks = Keystone(auth_url, admin_pw)
    roles = {r["name"]: r["id"] for r in ks.get("/roles")["roles"]}
    for role in ("admin", "member", "reader"):
        if role not in roles:
            roles[role] = ks.post("/roles", {"role": {"name": role}})["role"]["id"]

    def user_in_project(user, password, project, role):
        pid = ks.ensure("projects", "project", project,
                        {"domain_id": "default", "enabled": True})
        uid = ks.ensure("users", "user", user,
                        {"domain_id": "default", "enabled": True,
                         "password": password, "default_project_id": pid})
        ks.put("/projects/%s/users/%s/roles/%s" % (pid, uid, roles[role]))

    user_in_project("neutron", neutron_pw, "service", "admin")
    user_in_project("demo", demo_pw, "demo", "member")

    sid = ks.ensure("services", "service", "neutron",
                    {"type": "network", "enabled": True,
                     "description": "Neutron (kuryr dev stack)"})
    existing = {e["interface"] for e in
                ks.get("/endpoints", service_id=sid)["endpoints"]}
    for interface in ("public", "internal", "admin"):
        if interface not in existing:
            ks.post("/endpoints", {"endpoint": {
                "service_id": sid, "interface": interface,
                "url": neutron_url, "region_id": region, "enabled": True}})
    print("keystone: users admin/neutron/demo, network endpoints in %s" % region)


if __name__ == "__main__":
    main(*sys.argv[1:7])
