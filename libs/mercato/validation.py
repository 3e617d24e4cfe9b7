"""Validation at every boundary: marshmallow errors become one ``ValidationError``.

``load(SignUpSchema, payload)`` returns the loaded data or raises
``mercato.errors.ValidationError`` whose ``fields`` name each field and the rule it
broke, e.g. ``{"email": ["Not a valid email address."], "colour": ["Unknown field."]}``.

The bases of every contract schema (``mercato.contracts``) are here:

- ``StrictSchema``: what an RPC (and the public API, which loads the very same schema
  first) accepts, and what an event carries; a field it does not know is an error that
  names it.
- ``AnswerSchema``: what an RPC answers and the public API returns; an answer may gain
  fields (docs/api.md), so the document does not forbid extra ones.
- ``QuerySchema`` with ``QueryInteger`` and ``QueryBoolean``: a query string, whose
  values arrive at the gateway as strings; the service loads the gateway's result (ints
  and booleans) again with the same schema.
- ``PageSchema`` and ``page_of``: the lists of docs/api.md, ``?page=1&page_size=20`` answered
  ``{items, total, page, page_size}``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, pre_load, validate
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
MAX_PAGE_SIZE = 100  # docs/api.md: page_size at most 100
DEFAULT_PAGE_SIZE = 20


class StrictSchema(Schema):
    """What an RPC accepts and what an event carries: a field it does not know is an
    error that names it."""

    class Meta:
        unknown = RAISE


class AnswerSchema(Schema):
    """What an RPC answers (dumped by the service, projected by the gateway): it may
    gain fields, and a reader ignores those it does not know."""

    class Meta:
        unknown = EXCLUDE


class QuerySchema(StrictSchema):
    """A query string (the gateway's ``web.read_query``): every value arrives as a
    string, and the fields convert it (``page=abc`` is a 400 naming ``page``). Unknown
    names are refused like unknown body fields; an empty value (``?status=``) means
    "not given", as a form sends it."""

    @pre_load
    def drop_empty(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value not in (None, "")}
        return data


class QueryInteger(fields.Integer):
    """A whole number: an int, or one written in decimal digits (``"20"``, ``"-1"``);
    never ``"1.0"``, ``"1e3"`` or ``"1_000"``, which Python's ``int()`` would take, nor
    a float or a boolean."""

    _DIGITS = re.compile(r"^[+-]?[0-9]{1,18}$")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not self._DIGITS.match(value):
            raise self.make_error("invalid")
        return int(value)


class QueryBoolean(fields.Boolean):
    """``true`` or ``false``, spelt so (or already a boolean)."""

    default_error_messages = {"invalid": "Not a valid boolean: must be true or false."}

    _WORDS = {"true": True, "false": False}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in self._WORDS:
            return self._WORDS[value]
        raise self.make_error("invalid")


class PageSchema(QuerySchema):
    """``{page, page_size}`` of a list (the lists of docs/api.md)."""

    page = QueryInteger(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": "From 1.", "example": 1},
    )
    page_size = QueryInteger(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"1 to {MAX_PAGE_SIZE}.", "example": DEFAULT_PAGE_SIZE},
    )


def page_of(item_schema: type[Schema], name: str | None = None) -> type[AnswerSchema]:
    """The answer schema of a list: ``{items, total, page, page_size}``, named ``name``
    (default: the item schema's name and ``Page``)."""
    return type(
        name or f"{item_schema.__name__}Page",
        (AnswerSchema,),
        {
            "__doc__": "One page of a list; ``total`` counts every item of the list.",
            "items": fields.List(fields.Nested(item_schema)),
            "total": fields.Integer(metadata={"example": 1}),
            "page": fields.Integer(metadata={"example": 1}),
            "page_size": fields.Integer(metadata={"example": DEFAULT_PAGE_SIZE}),
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


# NUL (PostgreSQL's text cannot hold it) and lone UTF-16 surrogates (JSON's \ud800
# escapes decode to them; no UTF-8 encoder takes them)
_UNSAFE = re.compile(r"[\x00\ud800-\udfff]")
UNSAFE_TEXT = "Must not contain NUL characters or lone surrogates."


def unsafe_strings(value: Any, prefix: str = "") -> dict[str, list[str]]:
    """Where ``value`` holds a string with NUL or a lone surrogate, as a validation
    error's fields (``{"items.0.name": [...]}``); a key with one is named escaped."""
    found: dict[str, list[str]] = {}
    if isinstance(value, str):
        if _UNSAFE.search(value):
            found[prefix or "_schema"] = [UNSAFE_TEXT]
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if _UNSAFE.search(name):
                name = name.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
                found[f"{prefix}.{name}" if prefix else name] = [UNSAFE_TEXT]
                continue
            found.update(unsafe_strings(item, f"{prefix}.{name}" if prefix else name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.update(unsafe_strings(item, f"{prefix}.{index}" if prefix else str(index)))
    return found


def load(schema: Schema | type[Schema], payload: Any, *, partial: bool = False) -> Any:
    """``payload`` loaded with ``schema``, or a ValidationError naming each field and the
    rule it broke. A string with NUL or a lone surrogate is refused first, wherever it is:
    no database, encoder or log line downstream can take it."""
    instance = _instance(schema) if isinstance(schema, type) else schema
    if payload is None:
        payload = {}
    unsafe = unsafe_strings(payload)
    if unsafe:
        raise ValidationError(f"invalid request: check {', '.join(sorted(unsafe))}", unsafe)
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
