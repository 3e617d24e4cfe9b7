"""The simulator as a process: its state survives a restart."""

from __future__ import annotations

from huaweicloudsdkiam.v3 import ListAgenciesRequest

from mercato_testing.cloud import create_agency, global_client, start_cloud_simulator


def test_accounts_and_agencies_survive_a_restart(tmp_path):
    cloud = start_cloud_simulator(tmp_path)
    try:
        buyer = cloud.create_account("restart-buyer")
        create_agency(global_client(cloud.url, buyer), buyer, "mkp_rfs_agency_trust", "op_svc_rfs")
    finally:
        assert cloud.stop() == 0
    cloud = start_cloud_simulator(tmp_path)
    try:
        agencies = global_client(cloud.url, buyer).list_agencies(
            ListAgenciesRequest(domain_id=buyer["domain_id"])
        )
        assert [a.trust_domain_name for a in agencies.agencies] == ["op_svc_rfs"]
        assert cloud.admin("GET", "/sim/health") == {"status": "ok"}
    finally:
        cloud.stop()
