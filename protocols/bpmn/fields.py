"""Protocol fields on BPMN elements: the namespaces, and the generic codec that writes a model's fields that
have no BPMN element as extension attributes in the project's namespace (``esc:``) or, where a value is not
a word, number, yes/no or list of keys, as YAML in an ``esc:settings`` extension element."""

from __future__ import annotations

import re
import types
import typing
from typing import Any
from xml.etree import ElementTree as ET

import yaml
from pydantic import BaseModel

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ESC = "https://escalation-engine.example/schema/bpmn/1.0"
"""The project's own namespace: attributes and elements for what BPMN has no element for (docs/bpmn.md)."""
ZEEBE = "http://camunda.org/schema/zeebe/1.0"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"

PREFIXES = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI, "xsi": XSI, "esc": ESC, "zeebe": ZEEBE}
for _prefix, _uri in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

MARKERS = {
    "process",
    "step",
    "gate",
    "calendar",
    "outcome",
    "event",
    "path",
    "before_deadline",
    "approved_by",
}
"""``esc:`` attributes that mark what an element is (read by the importer itself), never model fields."""
WORD = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")


def q(ns: str, local: str) -> str:
    """An ElementTree qualified name."""
    return f"{{{ns}}}{local}"


def b(local: str) -> str:
    return q(BPMN, local)


def esc(local: str) -> str:
    return q(ESC, local)


def extension_elements(el: ET.Element) -> ET.Element:
    """The element's ``bpmn:extensionElements``, made where it has none (after any documentation)."""
    found = el.find(b("extensionElements"))
    if found is not None:
        return found
    ext = ET.Element(b("extensionElements"))
    at = 1 if len(el) and el[0].tag == b("documentation") else 0
    el.insert(at, ext)
    return ext


def encode(el: ET.Element, data: dict[str, Any]) -> None:
    """Write ``data`` (a model's fields) on ``el``: plain values as ``esc:`` attributes, the rest as YAML."""
    rest: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, bool):
            el.set(esc(name), "true" if value else "false")
        elif isinstance(value, int | str) and value is not None:
            el.set(esc(name), str(value))
        elif isinstance(value, list) and value and all(isinstance(v, str) and WORD.match(v) for v in value):
            el.set(esc(name), " ".join(value))
        else:
            rest[name] = value
    if rest:
        settings = ET.SubElement(extension_elements(el), esc("settings"))
        settings.text = yaml.safe_dump(rest, sort_keys=False, allow_unicode=True, width=10_000)


def _is_list(annotation: object) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_list(a) for a in typing.get_args(annotation))
    return False


def decode(el: ET.Element, model: type[BaseModel], where: str) -> dict[str, Any]:
    """The fields ``encode`` wrote on ``el`` for ``model`` (values still as text: the model converts them).

    Raises ValueError for an ``esc:`` attribute that is not a field of ``model``."""
    out: dict[str, Any] = {}
    for attr, value in el.attrib.items():
        if not attr.startswith(f"{{{ESC}}}"):
            continue
        name = attr.split("}", 1)[1]
        if name in MARKERS:
            continue
        field = model.model_fields.get(name)
        if field is None:
            raise ValueError(
                f"{where}: esc:{name} is not an extension attribute of this element; the ones it takes: "
                f"{', '.join(sorted(model.model_fields))}"
            )
        if _is_list(field.annotation):
            out[name] = value.split()
        elif field.annotation is not str and value.isdigit():
            out[name] = int(value)  # a Literal of numbers (schema_version) takes no text
        else:
            out[name] = value
    ext = el.find(b("extensionElements"))
    settings = ext.find(esc("settings")) if ext is not None else None
    if settings is not None and (settings.text or "").strip():
        try:
            loaded = yaml.safe_load(settings.text or "")
        except yaml.YAMLError as exc:
            raise ValueError(f"{where}: esc:settings is not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{where}: esc:settings must be a YAML mapping of field names to values")
        out.update(loaded)
    return out


def plain(model: BaseModel, skip: set[str]) -> dict[str, Any]:
    """``model``'s fields that differ from their defaults, as YAML would hold them, less ``skip``."""
    data = model.model_dump(mode="json", exclude_defaults=True)
    return {k: v for k, v in data.items() if k not in skip}
