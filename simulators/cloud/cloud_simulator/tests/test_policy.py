"""The simulator's IAM policy 1.1 evaluator, table-driven."""

from __future__ import annotations

import pytest

from cloud_simulator.policy import evaluate

ALLOW_ECS = {"Effect": "Allow", "Action": ["ecs:cloudServers:*"]}
DENY_DELETE = {"Effect": "Deny", "Action": ["ecs:cloudServers:delete"]}


@pytest.mark.parametrize(
    ("statements", "action", "allowed"),
    [
        ([ALLOW_ECS], "ecs:cloudServers:create", True),
        ([ALLOW_ECS], "ECS:cloudServers:create", True),  # the service part ignores case
        ([ALLOW_ECS], "ecs:cloudservers:create", False),  # the rest does not
        ([ALLOW_ECS], "ecs:flavors:get", False),  # nothing matches: deny
        ([ALLOW_ECS, DENY_DELETE], "ecs:cloudServers:delete", False),  # explicit deny wins
        ([DENY_DELETE, ALLOW_ECS], "ecs:cloudServers:delete", False),
        ([ALLOW_ECS, DENY_DELETE], "ecs:cloudServers:get", True),
        ([{"Effect": "Allow", "Action": ["*:*:*"]}], "vpc:publicIps:create", True),
        ([{"Effect": "Allow", "Action": ["*"]}], "kms:dek:decrypt", True),
        ([{"Effect": "Allow", "Action": ["vpc:*:get"]}], "vpc:subnets:get", True),
        ([{"Effect": "Allow", "Action": ["vpc:*:get"]}], "vpc:quotas:list", False),
        ([{"Effect": "Allow", "Action": ["kms:dek:?ecrypt"]}], "kms:dek:decrypt", True),
        ([{"Effect": "Allow", "Action": ["kms:dek:?ecrypt"]}], "kms:dek:create", False),
        ([{"Effect": "Allow", "Action": "rf:stack:*"}], "rf:stack:createStack", True),
        ([], "rf:stack:createStack", False),
    ],
)
def test_evaluate(statements, action, allowed):
    decision = evaluate([{"Version": "1.1", "Statement": statements}], action)
    assert decision.allowed is allowed


def test_the_deciding_statement_is_returned():
    assert (
        evaluate([{"Statement": [ALLOW_ECS, DENY_DELETE]}], "ecs:cloudServers:delete").statement
        == DENY_DELETE
    )
    assert evaluate([{"Statement": [ALLOW_ECS]}], "ecs:cloudServers:get").statement == ALLOW_ECS
    assert evaluate([{"Statement": [ALLOW_ECS]}], "ecs:flavors:get").statement is None


def test_statements_of_several_documents_combine():
    documents = [{"Statement": [ALLOW_ECS]}, {"Statement": [DENY_DELETE]}]
    assert not evaluate(documents, "ecs:cloudServers:delete").allowed
    assert evaluate(documents, "ecs:cloudServers:list").allowed
