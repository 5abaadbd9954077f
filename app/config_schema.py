"""The config editor's form, described from the engine's pydantic models (no Qt here).

The form is generated, not hand-written: a key added to `engine.config.mode_models` shows up in the
editor with the right kind of input, its allowed range and its description (the model's field
description, shown as the tooltip), and can never drift from what the engine validates. Only two keys get special treatment: `mode` (fixed by the mode picker) and `share_class`
(a free string in the model, offered as the share-class files that exist).
"""
from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel

from app.config_help import SECTION_TITLES
from engine.config import CONFIG_ROOT, ModeConfig
from engine.config.paths import available_share_classes

Kind = Literal["bool", "choice", "float", "int", "text", "mapping", "fixed"]


@dataclass(frozen=True)
class Bounds:
    """Numeric limits of a field, as the model declares them (None = unbounded)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def describe(self) -> str:
        low = f"> {self.gt:g}" if self.gt is not None else (f">= {self.ge:g}" if self.ge is not None else "")
        high = f"< {self.lt:g}" if self.lt is not None else (f"<= {self.le:g}" if self.le is not None else "")
        return " and ".join(part for part in (low, high) if part) or "any number"


@dataclass(frozen=True)
class FieldSpec:
    """One editable key of a mode document."""

    path: tuple[str, ...]
    kind: Kind
    label: str
    help: str = ""
    choices: tuple[str, ...] = ()
    optional: bool = False            # null is allowed
    bounds: Bounds = field(default_factory=Bounds)
    mapping_keys: tuple[str, ...] = ()  # allowed keys of a mapping field
    mapping_value: FieldSpec | None = None

    @property
    def key(self) -> str:
        return ".".join(self.path)

    def allowed_text(self) -> str:
        """Human summary of what the field accepts (shown in its tooltip)."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of: " + ", ".join(self.choices)
        elif self.kind in ("float", "int"):
            text = ("a whole number " if self.kind == "int" else "a number ") + self.bounds.describe()
        elif self.kind == "mapping":
            value = self.mapping_value.allowed_text() if self.mapping_value else "a value"
            text = f"weights for {', '.join(self.mapping_keys)} ({value})"
        else:
            text = "text"
        return text + (" (or empty for null)" if self.optional else "")


@dataclass(frozen=True)
class SectionSpec:
    """A group of fields: the top-level keys, or one section model (lending, staking, ...)."""

    name: str            # "" for the top-level keys
    title: str
    help: str
    fields: tuple[FieldSpec, ...]


def mode_form(config_root: Path | None = None) -> tuple[SectionSpec, ...]:
    """Sections and fields of a mode document, in file order."""
    root = CONFIG_ROOT if config_root is None else Path(config_root)
    general: list[FieldSpec] = []
    sections: list[SectionSpec] = []
    for name, info in ModeConfig.model_fields.items():
        annotation = info.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            specs = tuple(_field_spec((name, sub), sub_info.annotation, sub_info.metadata, _describe(sub_info))
                          for sub, sub_info in annotation.model_fields.items())
            sections.append(SectionSpec(name, SECTION_TITLES.get(name, name.title()),
                                        _first_paragraph(annotation.__doc__), specs))
        elif name == "mode":
            general.append(FieldSpec((name,), "fixed", _label(name), _describe(info)))
        elif name == "share_class":
            general.append(FieldSpec((name,), "choice", "Share class", _describe(info),
                                     choices=tuple(available_share_classes(root))))
        else:
            general.append(_field_spec((name,), annotation, info.metadata, _describe(info)))
    return (SectionSpec("", "General", "Which mode this is and the currency it reports in.", tuple(general)),
            *sections)


def all_fields(sections: tuple[SectionSpec, ...]) -> dict[str, FieldSpec]:
    return {spec.key: spec for section in sections for spec in section.fields}


# --------------------------------------------------------------------------------------- internals
def _describe(info: Any) -> str:
    """A field's description from its model, on one line."""
    return " ".join((info.description or "").split())


def _field_spec(path: tuple[str, ...], annotation: Any, metadata: list[Any], help_text: str = "") -> FieldSpec:
    annotation, metadata, optional = _unwrap(annotation, list(metadata))
    label = _label(path[-1])
    if annotation is bool:
        return FieldSpec(path, "bool", label, help_text, optional=optional)
    if get_origin(annotation) is Literal:
        return FieldSpec(path, "choice", label, help_text, choices=tuple(str(a) for a in get_args(annotation)),
                         optional=optional)
    if annotation is int:
        return FieldSpec(path, "int", label, help_text, optional=optional, bounds=_bounds(metadata))
    if annotation is float:
        return FieldSpec(path, "float", label, help_text, optional=optional, bounds=_bounds(metadata))
    if get_origin(annotation) is dict:
        key_type, value_type = get_args(annotation)
        keys = tuple(str(a) for a in get_args(key_type)) if get_origin(key_type) is Literal else ()
        value = _field_spec((*path, "*"), value_type, [])
        return FieldSpec(path, "mapping", label, help_text, optional=optional, mapping_keys=keys,
                         mapping_value=value)
    return FieldSpec(path, "text", label, help_text, optional=optional)


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any], bool]:
    """Strip Optional[...] and Annotated[...] layers, collecting their constraints."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, metadata, optional
            annotation = args[0]
        elif origin is Annotated:
            base, *extras = get_args(annotation)
            for extra in extras:
                metadata.extend(getattr(extra, "metadata", [extra]))
            annotation = base
        else:
            return annotation, metadata, optional


def _bounds(metadata: list[Any]) -> Bounds:
    values: dict[str, float] = {}
    for item in metadata:
        for name, kind in (("gt", annotated_types.Gt), ("ge", annotated_types.Ge),
                           ("lt", annotated_types.Lt), ("le", annotated_types.Le)):
            if isinstance(item, kind):
                values[name] = float(getattr(item, name))
    return Bounds(**values)


def _label(name: str) -> str:
    special = {"ltv": "LTV", "hf": "HF", "usdt": "USDT", "eth": "ETH", "lst": "LST", "emode": "E-mode"}
    words = [special.get(word, word) for word in name.split("_")]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def _first_paragraph(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else ""
