"""IAM policy 1.1: which statement decides an action, one row a rule."""

import pytest

from mercato.iampolicy import Decision, action_matches, allowed_actions, evaluate

STACKS = {"Effect": "Allow", "Action": ["rf:stack:createStack", "rf:stack:listStacks"]}
KMS_ANY = {"Effect": "Allow", "Action": ["kms:*:*"]}
NO_DELETE = {"Effect": "Deny", "Action": ["rf:stack:delete*"]}
ONE_CHAR = {"Effect": "Allow", "Action": ["ecs:servers:?et"]}
EVERYTHING = {"Effect": "Allow", "Action": ["*"]}
STACK_ANY = {"Effect": "Allow", "Action": ["rf:stack:*"]}


def policy(*statements):
    return {"Version": "1.1", "Statement": list(statements)}


@pytest.mark.parametrize(
    ("document", "action", "decision", "statement"),
    [
        # an action listed is allowed by its statement
        (policy(STACKS), "rf:stack:createStack", "allow", STACKS),
        # an action not listed anywhere is denied, by no statement
        (policy(STACKS), "rf:stack:deleteStack", "deny", None),
        # the service part ignores case, the rest does not
        (policy(STACKS), "RF:stack:createStack", "allow", STACKS),
        (policy(STACKS), "rf:stack:createstack", "deny", None),
        # * stands for any run of characters, within or across the parts
        (policy(KMS_ANY), "kms:dek:decrypt", "allow", KMS_ANY),
        (policy(KMS_ANY), "kms:cmk", "deny", None),
        (policy(EVERYTHING), "vpc:publicIps:create", "allow", EVERYTHING),
        # ? stands for exactly one character
        (policy(ONE_CHAR), "ecs:servers:get", "allow", ONE_CHAR),
        (policy(ONE_CHAR), "ecs:servers:set", "allow", ONE_CHAR),
        (policy(ONE_CHAR), "ecs:servers:et", "deny", None),
        (policy(ONE_CHAR), "ecs:servers:gett", "deny", None),
        # an explicit Deny wins over any Allow, before or after it
        (policy(STACK_ANY, NO_DELETE), "rf:stack:deleteStack", "deny", NO_DELETE),
        (policy(NO_DELETE, STACK_ANY), "rf:stack:deleteStack", "deny", NO_DELETE),
        (policy(STACK_ANY, NO_DELETE), "rf:stack:createStack", "allow", STACK_ANY),
        # the first Allow that matches is the deciding one
        (policy(STACKS, STACK_ANY), "rf:stack:listStacks", "allow", STACKS),
        # regular-expression characters in an action are plain characters
        (policy({"Effect": "Allow", "Action": ["a.b:c"]}), "axb:c", "deny", None),
        # an Action written as one string, an empty policy, no policy at all
        (
            policy({"Effect": "Allow", "Action": "ims:images:list"}),
            "ims:images:list",
            "allow",
            {"Effect": "Allow", "Action": "ims:images:list"},
        ),
        (policy(), "ims:images:list", "deny", None),
        (None, "ims:images:list", "deny", None),
    ],
)
def test_the_deciding_statement(document, action, decision, statement):
    assert evaluate(document, action) == Decision(decision, statement)


def test_a_decision_says_whether_it_allows():
    assert evaluate(policy(STACKS), "rf:stack:listStacks").allowed
    assert not evaluate(policy(STACKS), "rf:stack:updateStack").allowed


def test_patterns_and_the_actions_a_policy_allows():
    assert action_matches("iam:agencies:*", "iam:agencies:getAgency")
    assert not action_matches("iam:agencies:*", "iam:roles:getRole")
    assert allowed_actions(policy(STACKS, NO_DELETE)) == {
        "rf:stack:createStack",
        "rf:stack:listStacks",
    }
