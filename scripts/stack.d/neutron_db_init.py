"""Create Neutron's SQLite schema from the models (as Neutron's unit tests do).

`neutron-db-manage upgrade heads` cannot run on SQLite (ALTER of constraints),
so build the tables from the model metadata, switch the file to WAL and add
the four security-group template rules that data migration c33da356b165 adds
(without them new security groups get no egress rules).

usage: neutron_db_init.py <sqlite file>
"""
import sys

import sqlalchemy as sa
from oslo_utils import uuidutils

from neutron.db.migration.models import head

EGRESS = "Legacy default SG rule for egress traffic"
INGRESS = "Legacy default SG rule for ingress traffic"
TEMPLATE_RULES = [
    dict(direction="egress", ethertype="IPv4", remote_group_id=None,
         used_in_default_sg=True, used_in_non_default_sg=True, description=EGRESS),
    dict(direction="egress", ethertype="IPv6", remote_group_id=None,
         used_in_default_sg=True, used_in_non_default_sg=True, description=EGRESS),
    dict(direction="ingress", ethertype="IPv4", remote_group_id="PARENT",
         used_in_default_sg=True, used_in_non_default_sg=False, description=INGRESS),
    dict(direction="ingress", ethertype="IPv6", remote_group_id="PARENT",
         used_in_default_sg=True, used_in_non_default_sg=False, description=INGRESS),
]


def main(path):
    engine = sa.create_engine("sqlite:///" + path)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    metadata = head.get_metadata()
    metadata.create_all(engine)
    std = metadata.tables["standardattributes"]
    rules = metadata.tables["securitygroupdefaultrules"]
    with engine.begin() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(rules)).scalar():
            return
        for rule in TEMPLATE_RULES:
            rule = dict(rule)
            res = conn.execute(sa.insert(std).values(
                description=rule.pop("description"),
                resource_type="securitygroupdefaultrules"))
            rule["standard_attr_id"] = res.inserted_primary_key[0]
            rule["id"] = uuidutils.generate_uuid()
            conn.execute(sa.insert(rules).values(**rule))
    print("tables: %d" % len(metadata.tables))


if __name__ == "__main__":
    main(sys.argv[1])
