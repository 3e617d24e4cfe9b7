"""``mercato.validation.load``: what every boundary refuses before a schema looks."""

import pytest
from marshmallow import INCLUDE, Schema, fields

from mercato.errors import ValidationError
from mercato.validation import UNSAFE_TEXT, load


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"items": [{"name": "ok"}, {"name": "x\udfff"}]}, "items.1.name"),
        ({"a\x00b": "ok"}, "a\\x00b"),
        ({"\udc00": "ok"}, "\\udc00"),
    ],
)
def test_nul_and_lone_surrogates_are_refused_naming_where_they_are(payload, field):
    class Anything(Schema):
        class Meta:
            unknown = INCLUDE

    with pytest.raises(ValidationError) as refused:
        load(Anything, payload)

    assert refused.value.fields == {field: [UNSAFE_TEXT]}


def test_text_with_any_other_character_loads():
    class Named(Schema):
        name = fields.String()

    assert load(Named, {"name": "tab\there, é, 😀, \ufffd"}) == {"name": "tab\there, é, 😀, \ufffd"}
