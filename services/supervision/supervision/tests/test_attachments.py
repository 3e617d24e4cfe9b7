"""Attachments' use cases on in-memory repositories: registering an upload, who may
download it, and attaching uploads to a flow (``claim_for_flow``, which the flows' use
cases call)."""

from __future__ import annotations

import datetime as dt

import pytest

from mercato.clock import ManualClock
from mercato.errors import Conflict, NotFound, ValidationError
from mercato.identity import BUYER, OPERATOR, SELLER, Identity
from mercato_testing.fakes import FakeUnitOfWork, InMemoryRepository
from supervision import attachments
from supervision.models import Attachment, Flow

BUYER_ID, SELLER_ID, OTHER_BUYER_ID, OPERATOR_ID = "acc_b", "acc_s", "acc_x", "acc_op"
FLOW_ID, OTHER_FLOW_ID = "flw_1", "flw_2"
SHA = "ab" * 32


def identity(account_id: str, role: str) -> Identity:
    return Identity(
        account_id=account_id, user_id=f"usr_{account_id}", account_type=role, roles=(role,)
    )


class FakeAttachments(InMemoryRepository):
    def __init__(self) -> None:
        super().__init__()
        self.appealed_flows: set[str] = set()

    def add(self, attachment: Attachment) -> None:
        self.table("attachments")[attachment.id] = attachment

    def get(self, attachment_id: str) -> Attachment | None:
        return self.table("attachments").get(attachment_id)

    def get_by_storage_key(self, storage_key: str) -> Attachment | None:
        return next(
            (a for a in self.table("attachments").values() if a.storage_key == storage_key), None
        )

    def lock_many(self, attachment_ids) -> list[Attachment]:
        rows = self.table("attachments")
        return [rows[i] for i in sorted(set(attachment_ids)) if i in rows]

    def has_appeal_on_flow(self, flow_id: str) -> bool:
        return flow_id in self.appealed_flows


class FakeFlows(InMemoryRepository):
    def get(self, flow_id: str) -> Flow | None:
        return self.table("flows").get(flow_id)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    unit = FakeUnitOfWork(attachments=FakeAttachments(), flows=FakeFlows())
    unit.flows.table("flows")[FLOW_ID] = Flow(
        id=FLOW_ID, buyer_account_id=BUYER_ID, seller_account_id=SELLER_ID
    )
    unit.commit()
    return unit


CLOCK = ManualClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))


def registration(**changes):
    return {
        "filename": "spec.pdf",
        "content_type": "application/pdf",
        "size": 1234,
        "sha256": SHA,
        "storage_key": "attachments/ab/abc",
        **changes,
    }


def upload(uow, account_id: str = BUYER_ID, role: str = BUYER, key: str = "attachments/ab/abc"):
    return attachments.register(
        uow, CLOCK, uploader=identity(account_id, role), request=registration(storage_key=key)
    )


def stored(uow, attachment_id: str) -> Attachment:
    return uow.attachments.table("attachments")[attachment_id]


# -- registering ---------------------------------------------------------------------------


def test_registering_records_the_callers_upload_and_answers_its_view(uow):
    commits = uow.commits
    answer = upload(uow)

    assert answer == {
        "id": answer["id"],
        "filename": "spec.pdf",
        "content_type": "application/pdf",
        "size": 1234,
        "sha256": SHA,
    }
    assert answer["id"].startswith("att_")
    row = stored(uow, answer["id"])
    assert (row.uploader_account_id, row.flow_id, row.created_at) == (BUYER_ID, None, CLOCK.now())
    assert uow.commits == commits + 1


def test_the_same_registration_again_answers_the_same_attachment(uow):
    first = upload(uow)
    again = upload(uow)

    assert again == first
    assert len(uow.attachments.table("attachments")) == 1


def test_a_storage_key_registered_by_someone_else_is_a_conflict(uow):
    upload(uow)
    with pytest.raises(Conflict):
        upload(uow, OTHER_BUYER_ID)


# -- downloading ----------------------------------------------------------------------------


def test_the_uploader_may_download_its_own_unattached_upload(uow):
    attachment_id = upload(uow, SELLER_ID, SELLER)["id"]

    found = attachments.for_download(
        uow, caller=identity(SELLER_ID, SELLER), attachment_id=attachment_id
    )

    assert found["storage_key"] == "attachments/ab/abc"
    assert found["filename"] == "spec.pdf"


@pytest.mark.parametrize(
    "account_id, role", [(SELLER_ID, SELLER), (OTHER_BUYER_ID, BUYER), (OPERATOR_ID, OPERATOR)]
)
def test_nobody_else_may_download_an_unattached_upload(uow, account_id, role):
    attachment_id = upload(uow)["id"]
    with pytest.raises(NotFound):
        attachments.for_download(
            uow, caller=identity(account_id, role), attachment_id=attachment_id
        )


def test_the_parties_of_the_flow_may_download_what_is_attached_to_it(uow):
    attachment_id = upload(uow)["id"]
    attachments.claim_for_flow(uow, [attachment_id], BUYER_ID, FLOW_ID)

    for account_id, role in ((BUYER_ID, BUYER), (SELLER_ID, SELLER)):
        found = attachments.for_download(
            uow, caller=identity(account_id, role), attachment_id=attachment_id
        )
        assert found["id"] == attachment_id
    with pytest.raises(NotFound):
        attachments.for_download(
            uow, caller=identity(OTHER_BUYER_ID, BUYER), attachment_id=attachment_id
        )


def test_an_operator_may_download_it_only_once_the_flow_has_an_appeal(uow):
    attachment_id = upload(uow)["id"]
    attachments.claim_for_flow(uow, [attachment_id], BUYER_ID, FLOW_ID)
    operator = identity(OPERATOR_ID, OPERATOR)

    with pytest.raises(NotFound):
        attachments.for_download(uow, caller=operator, attachment_id=attachment_id)
    uow.attachments.appealed_flows.add(FLOW_ID)
    assert (
        attachments.for_download(uow, caller=operator, attachment_id=attachment_id)["id"]
        == attachment_id
    )


def test_an_unknown_attachment_is_not_found(uow):
    with pytest.raises(NotFound):
        attachments.for_download(uow, caller=identity(BUYER_ID, BUYER), attachment_id="att_nope")


# -- attaching to a flow ----------------------------------------------------------------------


def test_claiming_attaches_the_uploaders_files_to_the_flow_once_each_in_order(uow):
    first = upload(uow, key="attachments/aa/one")["id"]
    second = upload(uow, key="attachments/aa/two")["id"]

    claimed = attachments.claim_for_flow(uow, [second, first, second], BUYER_ID, FLOW_ID)

    assert claimed == [second, first]
    assert stored(uow, first).flow_id == stored(uow, second).flow_id == FLOW_ID


def test_claiming_does_not_commit_the_flows_use_case_does(uow):
    attachment_id = upload(uow)["id"]
    commits = uow.commits

    attachments.claim_for_flow(uow, [attachment_id], BUYER_ID, FLOW_ID)
    uow.rollback()

    assert uow.commits == commits
    assert stored(uow, attachment_id).flow_id is None


def test_claiming_again_for_the_same_flow_is_allowed(uow):
    attachment_id = upload(uow)["id"]
    attachments.claim_for_flow(uow, [attachment_id], BUYER_ID, FLOW_ID)

    assert attachments.claim_for_flow(uow, [attachment_id], BUYER_ID, FLOW_ID) == [attachment_id]


def test_nothing_is_claimed_when_one_id_is_wrong_and_every_problem_is_named(uow):
    mine = upload(uow, key="attachments/aa/mine")["id"]
    theirs = upload(uow, OTHER_BUYER_ID, key="attachments/aa/theirs")["id"]
    taken = upload(uow, key="attachments/aa/taken")["id"]
    attachments.claim_for_flow(uow, [taken], BUYER_ID, OTHER_FLOW_ID)
    uow.commit()

    with pytest.raises(ValidationError) as refused:
        attachments.claim_for_flow(uow, [mine, theirs, "att_missing", taken], BUYER_ID, FLOW_ID)

    problems = refused.value.fields["attachment_ids"]
    assert problems == [
        f"{theirs}: no such attachment of yours",
        "att_missing: no such attachment of yours",
        f"{taken}: already attached to another order's flow",
    ]
    assert stored(uow, mine).flow_id is None
    assert stored(uow, taken).flow_id == OTHER_FLOW_ID


def test_claiming_nothing_is_nothing(uow):
    assert attachments.claim_for_flow(uow, [], BUYER_ID, FLOW_ID) == []
