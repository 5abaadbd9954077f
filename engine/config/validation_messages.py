"""Turn pydantic validation errors into operator-facing `ConfigIssue`s.

pydantic's own messages ("Input should be a valid number") name neither the allowed values nor the
expected type in YAML terms. This module walks the model types along each error's location to say
what the key expects, which keys are allowed where an unknown key appears, and which values a
choice accepts.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .errors import ConfigIssue
from .sources import SourceMap
from .yaml_io import KeyPath

_UNRESOLVED = object()

#: Keys older files may still carry, with what replaced them (named in the "unknown key" message).
RENAMED_KEYS: dict[str, str] = {
    "staking.rewards": "staking.rewards_mode (base_only | base_eigen | base_eigen_seasonal)",
}


def issues_from_validation_error(
    exc: ValidationError, root: Any, sources: SourceMap, prefix: KeyPath = ()
) -> list[ConfigIssue]:
    """One issue per pydantic error; `root` is the type validated at `prefix` in the document."""
    issues: list[ConfigIssue] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc and loc[-1] == "[key]":
            path = (*prefix, *(str(p) for p in loc[:-1]))
            message = _dict_key_message(error, root, loc[:-1])
        else:
            path = (*prefix, *(str(p) for p in loc))
            message = _message(error, root, loc, renamed=RENAMED_KEYS.get(".".join(path)))
        issues.append(sources.issue(path, message))
    return issues


def describe_type(annotation: Any) -> str:
    """Human description of what a YAML value must look like for `annotation`."""
    annotation = _strip_annotated(annotation)
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return "null"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "text"
    if origin is typing.Literal:
        return "one of " + _choices(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in typing.get_args(annotation))
    if origin is dict or annotation is dict:
        return "a mapping"
    if origin is list or annotation is list:
        return "a list"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "a mapping with keys " + ", ".join(annotation.model_fields)
    return getattr(annotation, "__name__", str(annotation))


def show(value: Any) -> str:
    """A value as it would be written in YAML (true, null, 'text', 0.5)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value)


def yaml_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _message(error: Mapping[str, Any], root: Any, loc: tuple, renamed: str | None = None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        owner = _resolve(root, loc[:-1])
        allowed = _model_keys(owner)
        hint = f"; it was replaced by {renamed}" if renamed else ""
        return f"unknown key {loc[-1]!r}{hint} (allowed: {allowed})"
    annotation = _resolve(root, loc)
    expected = describe_type(annotation) if annotation is not _UNRESOLVED else None
    if kind == "missing":
        return f"required key is missing (expected: {expected})" if expected else "required key is missing"
    if kind == "literal_error":
        choices = _choices(annotation) if annotation is not _UNRESOLVED else ctx.get("expected", "")
        return f"invalid value {show(value)} (allowed: {choices})"
    if kind in _BOUNDS:
        symbol, ctx_key = _BOUNDS[kind]
        allowed = (
            _range_text(annotation, str(loc[-1]) if loc else "value") if annotation is not _UNRESOLVED else ""
        )
        return f"{show(value)} is out of range (allowed: {allowed or f'{symbol} {ctx[ctx_key]}'})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        return f"invalid value {show(value)} (allowed: text matching {ctx.get('pattern')})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind.endswith("_type") or kind in ("model_type", "int_from_float", "dict_type", "list_type"):
        hint = _type_hint(value, annotation)
        got = (
            show(value)
            if value is None or isinstance(value, bool)
            else f"{yaml_type_name(value)} {show(value)}"
        )
        return f"expected {expected or kind}, got {got}{hint}"
    return f"{error['msg']} (got {show(value)})"


def _dict_key_message(error: Mapping[str, Any], root: Any, loc: tuple) -> str:
    mapping = _strip_annotated(_resolve(root, loc[:-1]))
    key_type = typing.get_args(mapping)[0] if typing.get_origin(mapping) is dict else None
    allowed = _choices(key_type) if key_type is not None else error["msg"]
    return f"unknown key {loc[-1]!r} (allowed: {allowed})"


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _range_text(annotation: Any, name: str) -> str:
    """'0 <= target_ltv < 1' from the annotated_types bounds attached to a field."""
    lower = upper = ""
    for item in _metadata(annotation):
        for attr, template in (("gt", "{} < "), ("ge", "{} <= ")):
            if getattr(item, attr, None) is not None:
                lower = template.format(getattr(item, attr))
        for attr, template in (("lt", " < {}"), ("le", " <= {}")):
            if getattr(item, attr, None) is not None:
                upper = template.format(getattr(item, attr))
    if lower and upper:
        return f"{lower}{name}{upper}"
    if lower:  # "0 < x" reads better as "x > 0"
        bound, op = lower.split(" ", 1)
        return f"{name} {op.strip().replace('<', '>')} {bound}"
    return f"{name}{upper}" if upper else ""


def _metadata(annotation: Any) -> list[Any]:
    items: list[Any] = []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else annotation
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        for item in args[1:]:
            # Field(ge=0) inside Annotated arrives as a FieldInfo holding the annotated_types bounds.
            items.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        annotation = args[0]
    return items


def _type_hint(value: Any, annotation: Any) -> str:
    if isinstance(value, str) and annotation is not _UNRESOLVED:
        try:
            float(value)
        except ValueError:
            return ""
        return " (YAML 1.1 reads numbers such as 1e-9 as text; write 1.0e-9 or remove the quotes)"
    return ""


def _resolve(root: Any, loc: Iterable[Any]) -> Any:
    """The annotation found by following `loc` from `root` (models, dicts, lists, optionals)."""
    current = root
    for part in loc:
        current = _strip_optional(_strip_annotated(current))
        origin = typing.get_origin(current)
        if inspect.isclass(current) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return _UNRESOLVED
            # pydantic moves Annotated[...] constraints into field.metadata; put them back.
            current = (
                typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
            )
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif origin is list:
            current = typing.get_args(current)[0]
        else:
            return _UNRESOLVED
    return current


def _model_keys(annotation: Any) -> str:
    model = _strip_optional(_strip_annotated(annotation))
    if inspect.isclass(model) and issubclass(model, BaseModel):
        return ", ".join(model.model_fields)
    return "none"


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip_annotated(args[0])
    return annotation


def _choices(annotation: Any) -> str:
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_choices(arg) for arg in typing.get_args(annotation)]
        return ", ".join(p for p in parts if p)
    if annotation is type(None):
        return "null"
    if typing.get_origin(annotation) is typing.Literal:
        return ", ".join(str(v) for v in typing.get_args(annotation))
    return describe_type(annotation)
