"""The conformance kit: all PASS against the reference app, named failures otherwise."""

import json
import os
import subprocess
import sys

from mercato.config import ROOT
from provisioning.conformance import CHECKS, main


def run_kit(capsys, seller, *extra):
    argv = [
        f"--url={seller.url}",
        f"--access-key={seller.access_key}",
        f"--secret={seller.secret}",
        "--json",
        "--poll-interval=0.05",
        *extra,
    ]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    by_name = {check["name"]: check for check in report["checks"]}
    return code, report, by_name


def test_reference_app_passes_every_check(capsys, start_seller):
    seller = start_seller(provision_delay=0.3)

    code, report, by_name = run_kit(capsys, seller)

    assert code == 0, report
    assert report["passed"] and report["failed"] == []
    assert list(by_name) == list(CHECKS)
    assert all(check["status"] == "PASS" and check["reason"] for check in report["checks"])
    assert (
        "first send answered 000003, the replay 000001"
        in by_name["replayed-nonce-refused"]["reason"]
    )
    password_free = json.dumps(report)
    assert "password" not in password_free.replace("userName, password", "")
    records = seller.records()
    requests_seen = [r for r in records if r["event"] == "request"]
    assert requests_seen and all(r["result_code"] for r in requests_seen)


def test_text_report_and_module_entry_point(start_seller):
    seller = start_seller(provision_delay=0.1)
    env = {**os.environ, "SELLER_ACCESS_KEY": seller.access_key, "SELLER_SECRET": seller.secret}

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioning.conformance",
            "--url",
            seller.url,
            "--poll-interval",
            "0.05",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Mercato SaaS seller interface v1 conformance: {seller.url}"
    assert sum(line.startswith("PASS  ") for line in lines) == len(CHECKS)
    assert lines[-1] == f"{len(CHECKS)} checks: {len(CHECKS)} passed, 0 failed"
    assert done.stderr == ""


def test_bad_arguments_exit_2(capsys):
    for argv in (
        ["--url", "http://seller.example.com/saas", "--access-key", "a", "--secret", "s"],
        ["--url", "https://seller.example.com/saas"],
    ):
        env_before = {
            k: os.environ.pop(k) for k in ("SELLER_ACCESS_KEY", "SELLER_SECRET") if k in os.environ
        }
        try:
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code == 2
            else:
                raise AssertionError("main() accepted bad arguments")
        finally:
            os.environ.update(env_before)
    assert "https" in capsys.readouterr().err


def test_seller_answering_with_a_wrong_key_fails_every_check(capsys, start_seller):
    seller = start_seller(fault="bad-signature")

    code, report, by_name = run_kit(capsys, seller)

    assert code == 1
    assert report["failed"] == list(CHECKS)
    assert "SellerBadSignature" in by_name["new-instance"]["reason"]
    assert by_name["query-instance-ready"]["reason"] == "not run: new-instance gave no instanceId"
    assert by_name["body-sign"]["reason"].startswith(
        "8 of 8 answers had no valid Body-Sign (in new-instance, query-unknown-instance, "
        "actions-on-unknown-instance, "
    )


def test_seller_in_error_fault_fails_the_activity_checks(capsys, start_seller):
    seller = start_seller(fault="error")

    code, _, by_name = run_kit(capsys, seller)

    assert code == 1
    assert "got 000005" in by_name["new-instance"]["reason"]
    assert by_name["wrong-signature-refused"]["status"] == "PASS"
    assert by_name["body-sign"]["status"] == "PASS"


def test_seller_that_checks_nothing_fails_the_checks_it_breaks(capsys, start_lax_seller):
    stub = start_lax_seller()

    code, report, by_name = run_kit(capsys, stub)

    assert code == 1
    assert set(report["failed"]) == {
        "new-instance-idempotent",
        "query-unknown-instance",
        "query-released-instance",
        "actions-on-released-instance",
        "actions-on-unknown-instance",
        "wrong-signature-refused",
        "stale-timestamp-refused",
        "replayed-nonce-refused",
        "missing-field-refused",
        "unknown-activity-refused",
    }
    assert "a retry would create a second tenant" in by_name["new-instance-idempotent"]["reason"]
    assert (
        "expected 000001 for a request signed with another secret, got 000000"
        in (by_name["wrong-signature-refused"]["reason"])
    )
    assert "got 000000" in by_name["replayed-nonce-refused"]["reason"]
    assert "stub-password-do-not-leak" not in json.dumps(report)


def test_hanging_seller_fails_with_unreachable(capsys, start_seller):
    seller = start_seller(fault="hang")

    code, _, by_name = run_kit(capsys, seller, "--timeout=0.2")

    assert code == 1
    assert by_name["new-instance"]["reason"].startswith("SellerUnreachable: newInstance: no answer")


def test_the_kit_asks_each_activity_after_the_purchase_twice_and_of_a_missing_instance(
    capsys, start_seller
):
    """What the reference app answered, as its log tells: every activity after the
    purchase twice for the test tenant (Mercato asks again when an answer is lost),
    then 000003 for the released and the unknown instance."""
    seller = start_seller(provision_delay=0.1)

    code, report, by_name = run_kit(capsys, seller)

    assert code == 0, report
    instance_id = by_name["new-instance"]["reason"].split("'")[1]
    answered = [
        (record["activity"], record["result_code"])
        for record in seller.records()
        if record.get("event") == "request" and record.get("instance_id") == instance_id
        and record["activity"] not in ("newInstance", "queryInstance")
    ]  # fmt: skip
    assert answered == [
        ("refreshInstance", "000000"),
        ("refreshInstance", "000000"),
        ("updateInstanceStatus", "000000"),
        ("updateInstanceStatus", "000000"),
        ("updateInstanceStatus", "000000"),
        ("updateInstanceStatus", "000000"),
        ("upgradeInstance", "000000"),
        ("upgradeInstance", "000000"),
        ("releaseInstance", "000000"),
        ("releaseInstance", "000000"),
        ("refreshInstance", "000003"),
        ("updateInstanceStatus", "000003"),
        ("upgradeInstance", "000003"),
        ("releaseInstance", "000000"),
    ]
    assert by_name["actions-on-unknown-instance"]["reason"].endswith("releaseInstance 000003")


def test_a_seller_that_forgets_a_frozen_state_or_errs_on_repeats_fails_by_name(
    capsys, start_lax_seller
):
    """A seller that answers a repeated freeze or release with an error fails the
    check that repeats it (the lax seller in mode repeat-error)."""
    stub = start_lax_seller(mode="repeat-error")

    code, _, by_name = run_kit(capsys, stub)

    assert code == 1
    for name in (
        "refresh-instance-repeated",
        "freeze-instance-repeated",
        "unfreeze-instance-repeated",
        "upgrade-instance-repeated",
        "release-instance-repeated",
    ):
        assert by_name[name]["status"] == "FAIL", name
        assert "got 000005" in by_name[name]["reason"], name
    for name in ("refresh-instance", "freeze-instance", "release-instance"):
        assert by_name[name]["status"] == "PASS", name
