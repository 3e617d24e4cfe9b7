"""Validation at every boundary: marshmallow errors become one ``ValidationError``.

``load(SignUpSchema, payload)`` returns the loaded data or raises
``mercato.errors.ValidationError`` whose ``fields`` name each field and the rule it
broke, e.g. ``{"email": ["Not a valid email address."], "colour": ["Unknown field."]}``.
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from mercato.errors import ValidationError


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested marshmallow messages as ``{"a.b": [...]}``; list items as ``a.0.b``."""
    if isinstance(messages, list):
        return {prefix or "_schema": [str(message) for message in messages]}
    if not isinstance(messages, dict):
        return {prefix or "_schema": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten_messages(value, name))
    return flat


MAX_PAGE = 100_000  # beyond it an offset only costs the database
MAX_PAGE_SIZE = 100  # API.md: page_size at most 100
DEFAULT_PAGE_SIZE = 20


class StrictSchema(Schema):
    """What an RPC accepts: a field it does not know is an error that names it."""

    class Meta:
        unknown = RAISE


class PageSchema(StrictSchema):
    """``{page, page_size}`` of a list (API.md's lists)."""

    page = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = fields.Integer(
        strict=True,
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
    )


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """The answer schema of a list: ``{items, total, page, page_size}``."""
    return type(
        f"{item_schema.__name__}Page",
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "total": fields.Integer(),
            "page": fields.Integer(),
            "page_size": fields.Integer(),
        },
    )


@functools.cache
def _instance(schema_class: type[Schema]) -> Schema:
    # building a schema (its nested schemas included) costs more than using it, and a
    # marshmallow schema keeps no state between loads and dumps: one instance a class
    return schema_class()


def dump(schema: Schema | type[Schema], data: Any) -> Any:
    """``data`` through the schema's dump (the shape an answer or event takes)."""
    return (_instance(schema) if isinstance(schema, type) else schema).dump(data)


def load(schema: Schema | type[Schema], payload: Any, *, partial: bool = False) -> Any:
    instance = _instance(schema) if isinstance(schema, type) else schema
    if payload is None:
        payload = {}
    try:
        return instance.load(payload, partial=partial)
    except SchemaError as exc:
        fields = flatten_messages(exc.messages)
        names = ", ".join(sorted(fields))
        raise ValidationError(f"invalid request: check {names}", fields) from None


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``, nothing that merely looks like one ("yes", 1)."""

    default_error_messages = {"invalid": "Not a valid boolean: must be true or false."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value
