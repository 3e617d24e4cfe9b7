"""The conformance kit a seller runs against its SaaS endpoint before listing a product.

    python -m provisioning.conformance --url https://seller.example.com/saas \\
        --access-key ak_… --secret … [--json]

It drives the endpoint through the same ``SellerClient`` Mercato's provisioning uses,
creates one test tenant (every request carries ``testFlag: "1"``), takes it through its
whole life (each activity after the purchase twice: Mercato asks again whenever an
answer is lost), checks that a released or unknown instance answers 000003, then sends the requests a seller must refuse: another secret, a timestamp
five minutes old, a replayed nonce, a missing field, an unknown activity. Each check
prints PASS or FAIL with a one-line reason; the exit code is 0 only if all pass, 1 if
any fails, 2 when the arguments are wrong. See docs/seller-saas-interface.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from seller_interface import (
    APP_INFO_FIELDS,
    DEFAULT_TIMEOUT_SECONDS,
    Activity,
    ResultCode,
    SellerAnswer,
    SellerBadSignature,
    SellerCallError,
    SellerClient,
    SignedRequest,
    rfc3339,
    validate_endpoint_url,
)

DEFAULT_READY_TIMEOUT_SECONDS = 30.0
DEFAULT_POLL_INTERVAL_SECONDS = 0.5
STALE_BY_MS = 5 * 60 * 1000

# Every check, in the order it runs, with what it asserts (the docs list the same).
CHECKS: dict[str, str] = {
    "new-instance": "newInstance answers 000000 with an instanceId",
    "new-instance-idempotent": "newInstance of the same orderId+orderLineId gives the same instanceId",
    "query-instance-ready": "queryInstance answers 000000 with the four appInfo fields within the bound",
    "query-unknown-instance": "queryInstance of an unknown instanceId answers 000003",
    "refresh-instance": "refreshInstance answers 000000",
    "refresh-instance-repeated": "the same refreshInstance again answers 000000",
    "freeze-instance": "updateInstanceStatus FREEZE answers 000000",
    "freeze-instance-repeated": "updateInstanceStatus FREEZE of a frozen instance answers 000000",
    "unfreeze-instance": "updateInstanceStatus UNFREEZE answers 000000",
    "unfreeze-instance-repeated": "updateInstanceStatus UNFREEZE of an unfrozen instance answers 000000",
    "upgrade-instance": "upgradeInstance answers 000000",
    "upgrade-instance-repeated": "the same upgradeInstance again answers 000000",
    "release-instance": "releaseInstance answers 000000",
    "release-instance-repeated": "releaseInstance of a released instance answers 000000",
    "query-released-instance": "queryInstance of a released instance answers 000003",
    "actions-on-released-instance": "refreshInstance, updateInstanceStatus and upgradeInstance of the released instance answer 000003",
    "actions-on-unknown-instance": "refreshInstance, updateInstanceStatus and upgradeInstance of an unknown instanceId answer 000003, releaseInstance 000000 or 000003",
    "wrong-signature-refused": "a request signed with another secret is refused with 000001",
    "stale-timestamp-refused": "a request whose timestamp is 5 minutes old is refused with 000001",
    "replayed-nonce-refused": "the same signed request sent twice is refused the second time with 000001",
    "missing-field-refused": "newInstance without orderId answers 000002 naming orderId",
    "unknown-activity-refused": "an unknown activity answers 000002",
    "body-sign": "every answer carries a valid Body-Sign",
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass
class Report:
    url: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    @property
    def failed(self) -> list[str]:
        return [result.name for result in self.results if not result.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "passed": self.passed,
            "total": len(self.results),
            "failed": self.failed,
            "checks": [{**asdict(result), "status": result.status} for result in self.results],
        }

    def write_text(self, out: TextIO) -> None:
        width = max(len(name) for name in CHECKS)
        out.write(f"Mercato SaaS seller interface v1 conformance: {self.url}\n")
        for result in self.results:
            out.write(f"{result.status}  {result.name:<{width}}  {result.reason}\n")
        failed = self.failed
        out.write(
            f"{len(self.results)} checks: {len(self.results) - len(failed)} passed, "
            f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "") + "\n"
        )


class _Failed(Exception):
    """A check's expectation was not met; its message is the check's reason."""


def _describe(answer: SellerAnswer) -> str:
    message = answer.result_msg[:120]
    return f"{answer.result_code} ({message})" if message else answer.result_code


def _expect(answer: SellerAnswer, code: ResultCode, what: str) -> None:
    if answer.result_code != code:
        raise _Failed(f"expected {code.value} for {what}, got {_describe(answer)}")


class ConformanceRun:
    """One run of every check against one endpoint. Checks share the test tenant."""

    def __init__(
        self,
        client: SellerClient,
        ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.ready_timeout = ready_timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.run_id = uuid.uuid4().hex[:12]
        self.order_id = f"conformance-{self.run_id}"
        self.order_line_id = f"{self.order_id}-1"
        self.instance_id: str | None = None
        started = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        self.renewed_expiry = rfc3339(started + dt.timedelta(days=62))
        self.answers = 0
        self.bad_signatures: list[tuple[str, str]] = []

    # -- calls -------------------------------------------------------------------------

    def send(self, request: SignedRequest, check: str) -> SellerAnswer:
        try:
            answer = self.client.send(request)
        except SellerBadSignature as exc:
            self.answers += 1
            self.bad_signatures.append((check, exc.reason))
            raise
        self.answers += 1
        return answer

    def call(self, check: str, activity: str, fields: dict[str, Any]) -> SellerAnswer:
        return self.send(self.client.prepare(activity, {**fields, "testFlag": "1"}), check)

    def new_instance_fields(self) -> dict[str, Any]:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return {
            "businessId": uuid.uuid4().hex,
            "orderId": self.order_id,
            "orderLineId": self.order_line_id,
            "productId": "conformance-product",
            "specificationId": "conformance-basic",
            "specificationName": "Conformance basic",
            "customerId": f"conformance-buyer-{self.run_id}",
            "customerName": "Conformance Buyer",
            "chargingMode": "yearly_monthly",
            "periodUnit": "month",
            "periodCount": 1,
            "quantity": 1,
            "expireTime": rfc3339(now + dt.timedelta(days=31)),
        }

    def needs_instance(self) -> str:
        if self.instance_id is None:
            raise _Failed("not run: new-instance gave no instanceId")
        return self.instance_id

    # -- checks --------------------------------------------------------------------------

    def run(self) -> list[CheckResult]:
        results = []
        for name in CHECKS:
            check: Callable[[], str] = getattr(self, "check_" + name.replace("-", "_"))
            try:
                results.append(CheckResult(name, True, check()))
            except _Failed as exc:
                results.append(CheckResult(name, False, str(exc)))
            except SellerCallError as exc:
                results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
        return results

    def check_new_instance(self) -> str:
        answer = self.call("new-instance", Activity.NEW_INSTANCE, self.new_instance_fields())
        _expect(answer, ResultCode.SUCCESS, "newInstance")
        instance_id = answer.data.get("instanceId")
        if not isinstance(instance_id, str) or not instance_id:
            raise _Failed("newInstance answered 000000 without an instanceId string")
        self.instance_id = instance_id
        return f"instanceId {instance_id!r} in {answer.elapsed_seconds * 1000:.0f} ms"

    def check_new_instance_idempotent(self) -> str:
        first = self.needs_instance()
        answer = self.call(
            "new-instance-idempotent", Activity.NEW_INSTANCE, self.new_instance_fields()
        )
        _expect(answer, ResultCode.SUCCESS, "a repeated newInstance")
        again = answer.data.get("instanceId")
        if again != first:
            raise _Failed(
                f"the same order line gave instanceId {again!r}, the first call {first!r}: "
                "a retry would create a second tenant"
            )
        return f"the same order line gave the same instanceId {first!r}"

    def check_query_instance_ready(self) -> str:
        instance_id = self.needs_instance()
        started = self.clock()
        polls = 0
        while True:
            polls += 1
            answer = self.call(
                "query-instance-ready", Activity.QUERY_INSTANCE, {"instanceId": instance_id}
            )
            waited = self.clock() - started
            if answer.result_code == ResultCode.SUCCESS:
                break
            if answer.result_code != ResultCode.PROCESSING:
                raise _Failed(
                    f"expected 000004 while creating then 000000, got {_describe(answer)} "
                    f"after {waited:.1f} s"
                )
            if waited >= self.ready_timeout:
                raise _Failed(
                    f"still 000004 (processing) after {waited:.1f} s and {polls} queries; "
                    f"the tenant must be ready within {self.ready_timeout:g} s"
                )
            self.sleep(self.poll_interval)
        app_info = answer.data.get("appInfo")
        if not isinstance(app_info, dict):
            raise _Failed("queryInstance answered 000000 without an appInfo object")
        missing = [
            name
            for name in APP_INFO_FIELDS
            if not isinstance(app_info.get(name), str) or not app_info[name]
        ]
        if missing:
            raise _Failed(f"appInfo lacks {', '.join(missing)} (each a non-empty string)")
        for name in ("frontEndUrl", "adminUrl"):
            if not app_info[name].startswith(("https://", "http://")):
                raise _Failed(f"appInfo.{name} is not an http(s) URL")
        if answer.data.get("instanceId") not in (None, instance_id):
            raise _Failed("queryInstance answered with another instanceId")
        return (
            f"ready after {waited:.1f} s ({polls} queries); appInfo has "
            f"{', '.join(APP_INFO_FIELDS)}; front end {app_info['frontEndUrl']}"
        )

    def check_query_unknown_instance(self) -> str:
        unknown = f"conformance-unknown-{uuid.uuid4().hex}"
        answer = self.call(
            "query-unknown-instance", Activity.QUERY_INSTANCE, {"instanceId": unknown}
        )
        _expect(answer, ResultCode.NO_SUCH_INSTANCE, "an unknown instanceId")
        return "an unknown instanceId answered 000003"

    # Mercato asks again whenever an answer is lost, so every activity after the
    # purchase must answer 000000 when repeated (the "-repeated" checks).

    def refresh_fields(self, instance_id: str) -> dict[str, Any]:
        return {
            "instanceId": instance_id,
            "orderId": f"{self.order_id}-renew",
            "orderLineId": f"{self.order_id}-renew-1",
            "expireTime": self.renewed_expiry,
        }

    def upgrade_fields(self, instance_id: str) -> dict[str, Any]:
        return {
            "instanceId": instance_id,
            "orderId": f"{self.order_id}-upgrade",
            "orderLineId": f"{self.order_id}-upgrade-1",
            "specificationId": "conformance-pro",
            "quantity": 2,
        }

    def _activity(self, check: str, activity: str, fields: dict[str, Any], what: str) -> str:
        answer = self.call(check, activity, fields)
        _expect(answer, ResultCode.SUCCESS, what)
        return f"{what} answered 000000"

    def check_refresh_instance(self) -> str:
        fields = self.refresh_fields(self.needs_instance())
        return self._activity(
            "refresh-instance", Activity.REFRESH_INSTANCE, fields, "refreshInstance"
        )

    def check_refresh_instance_repeated(self) -> str:
        fields = self.refresh_fields(self.needs_instance())
        return self._activity(
            "refresh-instance-repeated",
            Activity.REFRESH_INSTANCE,
            fields,
            "the same refreshInstance again",
        )

    def _set_status(self, check: str, status: str, what: str) -> str:
        instance_id = self.needs_instance()
        fields = {"instanceId": instance_id, "status": status}
        return self._activity(check, Activity.UPDATE_INSTANCE_STATUS, fields, what)

    def check_freeze_instance(self) -> str:
        return self._set_status("freeze-instance", "FREEZE", "updateInstanceStatus FREEZE")

    def check_freeze_instance_repeated(self) -> str:
        return self._set_status(
            "freeze-instance-repeated", "FREEZE", "updateInstanceStatus FREEZE of a frozen instance"
        )

    def check_unfreeze_instance(self) -> str:
        return self._set_status("unfreeze-instance", "UNFREEZE", "updateInstanceStatus UNFREEZE")

    def check_unfreeze_instance_repeated(self) -> str:
        return self._set_status(
            "unfreeze-instance-repeated",
            "UNFREEZE",
            "updateInstanceStatus UNFREEZE of an unfrozen instance",
        )

    def check_upgrade_instance(self) -> str:
        fields = self.upgrade_fields(self.needs_instance())
        return self._activity(
            "upgrade-instance", Activity.UPGRADE_INSTANCE, fields, "upgradeInstance"
        )

    def check_upgrade_instance_repeated(self) -> str:
        fields = self.upgrade_fields(self.needs_instance())
        return self._activity(
            "upgrade-instance-repeated",
            Activity.UPGRADE_INSTANCE,
            fields,
            "the same upgradeInstance again",
        )

    def check_release_instance(self) -> str:
        fields = {"instanceId": self.needs_instance(), "orderId": self.order_id}
        return self._activity(
            "release-instance", Activity.RELEASE_INSTANCE, fields, "releaseInstance"
        )

    def check_release_instance_repeated(self) -> str:
        fields = {"instanceId": self.needs_instance(), "orderId": self.order_id}
        return self._activity(
            "release-instance-repeated",
            Activity.RELEASE_INSTANCE,
            fields,
            "releaseInstance of a released instance",
        )

    def _on_missing_instance(self, check: str, instance_id: str, what: str) -> str:
        """Every activity after the purchase of ``instance_id`` answers 000003 (a
        release may answer 000000: there is nothing left to release either way)."""
        asked = [
            (Activity.REFRESH_INSTANCE, self.refresh_fields(instance_id)),
            (Activity.UPDATE_INSTANCE_STATUS, {"instanceId": instance_id, "status": "FREEZE"}),
            (Activity.UPGRADE_INSTANCE, self.upgrade_fields(instance_id)),
        ]
        for activity, fields in asked:
            _expect(self.call(check, activity, fields), ResultCode.NO_SUCH_INSTANCE, what)
        release = self.call(check, Activity.RELEASE_INSTANCE, {"instanceId": instance_id})
        if release.result_code not in (ResultCode.SUCCESS, ResultCode.NO_SUCH_INSTANCE):
            raise _Failed(
                f"expected 000000 or 000003 for releaseInstance of {what}, got {_describe(release)}"
            )
        return (
            f"refreshInstance, updateInstanceStatus and upgradeInstance of {what} answered "
            f"000003, releaseInstance {release.result_code}"
        )

    def check_actions_on_released_instance(self) -> str:
        return self._on_missing_instance(
            "actions-on-released-instance", self.needs_instance(), "the released instance"
        )

    def check_actions_on_unknown_instance(self) -> str:
        unknown = f"conformance-unknown-{uuid.uuid4().hex}"
        return self._on_missing_instance(
            "actions-on-unknown-instance", unknown, "an unknown instanceId"
        )

    def check_query_released_instance(self) -> str:
        instance_id = self.needs_instance()
        answer = self.call(
            "query-released-instance", Activity.QUERY_INSTANCE, {"instanceId": instance_id}
        )
        _expect(answer, ResultCode.NO_SUCH_INSTANCE, "queryInstance after releaseInstance")
        return "the released instance answered 000003"

    def _unknown_query(self) -> dict[str, Any]:
        return {"instanceId": f"conformance-unknown-{uuid.uuid4().hex}", "testFlag": "1"}

    def check_wrong_signature_refused(self) -> str:
        request = self.client.prepare(
            Activity.QUERY_INSTANCE,
            self._unknown_query(),
            signing_secret="conformance-wrong-secret-" + uuid.uuid4().hex,
        )
        answer = self.send(request, "wrong-signature-refused")
        _expect(answer, ResultCode.AUTHENTICATION_FAILED, "a request signed with another secret")
        return "a request signed with another secret answered 000001"

    def check_stale_timestamp_refused(self) -> str:
        stale = int(self.clock() * 1000) - STALE_BY_MS
        request = self.client.prepare(
            Activity.QUERY_INSTANCE, self._unknown_query(), timestamp_ms=stale
        )
        answer = self.send(request, "stale-timestamp-refused")
        _expect(answer, ResultCode.AUTHENTICATION_FAILED, "a timestamp 5 minutes old")
        return "a correctly signed request 5 minutes old answered 000001"

    def check_replayed_nonce_refused(self) -> str:
        request = self.client.prepare(Activity.QUERY_INSTANCE, self._unknown_query())
        first = self.send(request, "replayed-nonce-refused")
        if first.result_code == ResultCode.AUTHENTICATION_FAILED:
            raise _Failed(
                "the first, valid request was already refused with 000001, so replay "
                "protection cannot be told apart from a broken signature check"
            )
        second = self.send(request, "replayed-nonce-refused")
        _expect(second, ResultCode.AUTHENTICATION_FAILED, "the same request sent a second time")
        return f"first send answered {first.result_code}, the replay 000001"

    def check_missing_field_refused(self) -> str:
        fields = self.new_instance_fields()
        del fields["orderId"]
        fields["orderLineId"] = f"{self.order_id}-missing-1"
        answer = self.call("missing-field-refused", Activity.NEW_INSTANCE, fields)
        _expect(answer, ResultCode.BAD_PARAMETERS, "newInstance without orderId")
        if "orderId" not in answer.result_msg:
            raise _Failed(
                f"answered 000002 but resultMsg {answer.result_msg[:120]!r} does not name orderId"
            )
        return f"answered 000002: {answer.result_msg[:120]}"

    def check_unknown_activity_refused(self) -> str:
        answer = self.call(
            "unknown-activity-refused", "conformanceUnknownActivity", {"instanceId": "x"}
        )
        _expect(answer, ResultCode.BAD_PARAMETERS, "an unknown activity")
        return "an unknown activity answered 000002"

    def check_body_sign(self) -> str:
        if self.bad_signatures:
            checks = list(dict.fromkeys(check for check, _ in self.bad_signatures))
            raise _Failed(
                f"{len(self.bad_signatures)} of {self.answers} answers had no valid Body-Sign "
                f"(in {', '.join(checks)}); first: {self.bad_signatures[0][1]}"
            )
        if self.answers == 0:
            raise _Failed("no answer was received")
        return f"all {self.answers} answers carried a valid Body-Sign"


def run_checks(
    client: SellerClient,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
) -> Report:
    report = Report(client.endpoint_url)
    report.results = ConformanceRun(client, ready_timeout, poll_interval).run()
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.conformance",
        description="Check a seller's SaaS endpoint against the Mercato SaaS seller interface v1.",
    )
    parser.add_argument(
        "--url", required=True, help="the endpoint, e.g. https://seller.example.com/saas"
    )
    parser.add_argument(
        "--access-key",
        default=os.environ.get("SELLER_ACCESS_KEY"),
        help="the access key Mercato issued (default: $SELLER_ACCESS_KEY)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("SELLER_SECRET"),
        help="its secret (default: $SELLER_SECRET; prefer the variable, a flag shows in ps)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds each call may take (default {DEFAULT_TIMEOUT_SECONDS:g}, as Mercato)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_SECONDS,
        help=f"seconds the tenant may take to be ready (default {DEFAULT_READY_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_SECONDS,
        help=f"seconds between queryInstance polls (default {DEFAULT_POLL_INTERVAL_SECONDS:g})",
    )
    parser.add_argument("--verbose", action="store_true", help="log every call to stderr")
    args = parser.parse_args(argv)
    if not args.access_key or not args.secret:
        parser.error("an access key and a secret are required (--access-key/--secret or env)")
    try:
        validate_endpoint_url(args.url)
    except ValueError as exc:
        parser.error(f"--url: {exc}")
    for name in ("timeout", "ready_timeout", "poll_interval"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client_log = logging.getLogger("seller_interface")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    elif not any(isinstance(h, logging.NullHandler) for h in client_log.handlers):
        client_log.addHandler(logging.NullHandler())  # the report says it all
    with SellerClient(args.url, args.access_key, args.secret, timeout=args.timeout) as client:
        report = run_checks(client, args.ready_timeout, args.poll_interval)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        report.write_text(sys.stdout)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
