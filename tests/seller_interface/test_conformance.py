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
        "7 of 7 answers had no valid Body-Sign (in new-instance, query-unknown-instance, "
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
