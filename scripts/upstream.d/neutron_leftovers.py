#!/usr/bin/env python3
"""Neutron objects upstream's fullstack suite made, for scripts/upstream.

    neutron_leftovers.py ENDPOINT snapshot FILE   record the ids that exist now
    neutron_leftovers.py ENDPOINT list FILE [IDS] objects made since FILE that belong
                                                  to the suite: "TEST<TAB>KIND ID (details)"
    neutron_leftovers.py ENDPOINT sweep FILE [IDS] delete those (ports, subnets,
                                                  networks, subnetpools)
    neutron_leftovers.py - test-of CIDR           the test that uses CIDR (or "?")

An object is the suite's when it did not exist at the snapshot and has one
of the fixed CIDRs the suite's tests use (below); an address carved from
the stack's own subnetpools (kuryr, kuryr6) never is, so other work on the
stack is left alone. A network with no subnet left is the suite's when it
is named as the suite names its own (8 hex digits) or is tagged for one of
the Docker networks in the file IDS (one id a line: the networks of driver
`kuryr` created while the suite ran). Each CIDR belongs to one test, so a leftover can be
blamed on the test that made it. Standard library only; Neutron in noauth mode.
"""
import ipaddress
import json
import re
import sys
import urllib.request

P = "kuryr_libnetwork.tests.fullstack."
# The fixed CIDRs of each test (read from the suite's source): its --subnet
# and --ip-range, or the subnets it makes itself. Matched exactly, so other
# work in nearby ranges (e.g. 10.10.213.0/24 carved by another test) is never
# taken for the suite's.
TESTS = {
    P + "test_network.NetworkTest.test_create_delete_network_with_kuryr_driver":
        ["10.0.0.0/16", "10.0.0.0/24"],
    P + "test_container.ContainerTest.test_connect_disconnect_container":
        ["10.3.0.0/16", "10.3.0.0/24"],
    P + "test_network.NetworkTest.test_create_delete_dualstack_network_with_kuryr_driver":
        ["10.4.0.0/16", "10.4.0.0/24", "2001:db8:a0b:12f0::/64"],
    P + "test_ipam.IpamTest.test_container_ipam_release_address_with_existing_network":
        ["10.10.0.0/16", "10.10.0.0/24"],
    P + "test_ipam.IpamTest.test_container_ipam_request_release_pool":
        ["10.11.0.0/16", "10.11.0.0/24"],
    P + "test_ipam.IpamTest.test_container_ipam_request_address":
        ["10.12.0.0/16", "10.12.0.0/24"],
    P + "test_ipam.IpamTest.test_container_ipam_release_address":
        ["10.13.0.0/16", "10.13.0.0/24"],
    P + "test_ipam.IpamTest.test_container_ipam_request_address_with_existing_port":
        ["10.14.0.0/24", "fe81::/64"],
    P + "test_ipam.IpamTest.test_container_ipam_release_address_with_existing_port_same_ip":
        ["10.15.0.0/24"],
}
STACK_POOLS = ("kuryr", "kuryr6")
# Networks the suite makes itself are named get_random_string(8): 8 hex digits.
SUITE_NAME = re.compile(r"^[0-9a-f]{8}$")


def test_of(cidr):
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return "?"
    for test, cidrs in TESTS.items():
        if any(net == ipaddress.ip_network(c) for c in cidrs):
            return test
    return "?"


class Neutron:
    def __init__(self, endpoint):
        self.base = endpoint.rstrip("/") + "/v2.0/"

    def call(self, method, path):
        req = urllib.request.Request(self.base + path, method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body else None

    def list(self, kind):
        return self.call("GET", kind)[kind]


def snapshot(n):
    return {k: sorted(o["id"] for o in n.list(k)) for k in ("networks", "subnets", "ports", "subnetpools")}


def suite_objects(n, before, docker_ids=()):
    """[(test, kind, id, details)], in deletion order."""
    docker_tags = {"kuryr.net.uuid.lh:" + d[:32] for d in docker_ids if len(d) == 64}
    old = {k: set(v) for k, v in before.items()}
    pools = n.list("subnetpools")
    stack_pool_ids = {p["id"] for p in pools if p["name"] in STACK_POOLS}
    subnets = [s for s in n.list("subnets") if s["id"] not in old["subnets"]
               and s.get("subnetpool_id") not in stack_pool_ids and test_of(s["cidr"]) != "?"]
    nets = {}
    for s in subnets:
        nets.setdefault(s["network_id"], test_of(s["cidr"]))
    all_nets = n.list("networks")
    all_subnet_nets = {s["network_id"] for s in n.list("subnets")}
    for net in all_nets:
        # A network of the suite's whose subnets are gone already.
        if (net["id"] not in old["networks"] and net["id"] not in all_subnet_nets
                and (SUITE_NAME.match(net["name"] or "") or docker_tags & set(net.get("tags") or []))):
            nets.setdefault(net["id"], "?")
    names = {net["id"]: net["name"] for net in all_nets}
    out = []
    for p in n.list("ports"):
        if p["id"] in old["ports"] or p["network_id"] not in nets:
            continue
        if p["device_owner"].startswith("network:"):
            continue  # Neutron's own (metadata/DHCP) port: goes with its network
        ips = ",".join(ip["ip_address"] for ip in p["fixed_ips"])
        out.append((nets[p["network_id"]], "port", p["id"],
                    f"name={p['name']!r} owner={p['device_owner']!r} ips={ips} status={p['status']}"))
    for s in subnets:
        out.append((test_of(s["cidr"]), "subnet", s["id"], f"name={s['name']!r} cidr={s['cidr']}"))
    for net_id, test in nets.items():
        if net_id not in old["networks"]:
            out.append((test, "network", net_id, f"name={names.get(net_id)!r}"))
    for p in pools:
        if p["id"] in old["subnetpools"] or p["id"] in stack_pool_ids:
            continue
        tests = {test_of(c) for c in p["prefixes"]} - {"?"}
        if tests:
            out.append((tests.pop(), "subnetpool", p["id"],
                        f"name={p['name']!r} prefixes={','.join(p['prefixes'])}"))
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[2] == "test-of":
        print(test_of(sys.argv[3]))
        return 0
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in ("snapshot", "list", "sweep"):
        print(__doc__, file=sys.stderr)
        return 2
    n = Neutron(sys.argv[1])
    cmd, path = sys.argv[2], sys.argv[3]
    if cmd == "snapshot":
        with open(path, "w") as f:
            json.dump(snapshot(n), f)
        return 0
    with open(path) as f:
        before = json.load(f)
    docker_ids = []
    if len(sys.argv) == 5:
        with open(sys.argv[4]) as f:
            docker_ids = [line.split()[0] for line in f if line.strip()]
    objs = suite_objects(n, before, docker_ids)
    if cmd == "list":
        for test, kind, oid, details in objs:
            print(f"{test}\t{kind} {oid} ({details})")
        return 0
    failed = 0
    for _test, kind, oid, details in objs:
        try:
            n.call("DELETE", f"{kind}s/{oid}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                print(f"could not delete {kind} {oid} ({details}): HTTP {e.code}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
