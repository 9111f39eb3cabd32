"""Label and field selectors for list, watch and deletecollection."""

from __future__ import annotations

import re
from collections.abc import Callable

from .errors import ApiError
from .resources import _MISSING, Obj, ResourceType, _get_path

# --------------------------------------------------------------------------------------------
# Selectors

_SELECTOR_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_LABEL_REQUIREMENT = re.compile(
    rf"^\s*(?P<key>{_SELECTOR_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>[-A-Za-z0-9_.]*)"
    rf"|\s+(?P<set_op>in|notin)\s*\((?P<values>[^()]*)\))?\s*$"
)
_LABEL_ABSENT = re.compile(rf"^\s*!\s*(?P<key>{_SELECTOR_KEY})\s*$")


def _split_selector(text: str) -> list[str]:
    """Split on the commas that separate requirements, not those inside ``in (a,b)``."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def parse_label_selector(text: str) -> Callable[[dict[str, str]], bool]:
    """A predicate over labels for a label selector (equality, existence and set forms)."""
    checks = [_label_requirement(part) for part in _split_selector(text)]
    return lambda labels: all(check(labels) for check in checks)


def _label_requirement(text: str) -> Callable[[dict[str, str]], bool]:
    absent = _LABEL_ABSENT.match(text)
    if absent:
        missing_key = absent["key"]
        return lambda labels: missing_key not in labels
    match = _LABEL_REQUIREMENT.match(text)
    if not match:
        raise ApiError(400, f"unable to parse requirement: {text.strip()!r}")
    key = match["key"]
    if match["op"] in ("=", "=="):
        return lambda labels: labels.get(key) == match["value"]
    if match["op"] == "!=":
        return lambda labels: labels.get(key) != match["value"]
    if match["set_op"]:
        values = {value.strip() for value in match["values"].split(",")}
        if match["set_op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels


# Field selectors: every type supports name and namespace; a few core types add their own.
_FIELD_LABELS = {
    "secrets": {"type"},
    "pods": {"status.phase", "spec.nodeName", "spec.restartPolicy"},
    "namespaces": {"status.phase"},
}
_FIELD_REQUIREMENT = re.compile(r"^\s*(?P<key>[A-Za-z.]+)\s*(?P<op>==|!=|=)\s*(?P<value>.*?)\s*$")


def parse_field_selector(text: str, rt: ResourceType) -> Callable[[Obj], bool]:
    checks = [_field_requirement(part, rt) for part in text.split(",") if part.strip()]
    return lambda obj: all(check(obj) for check in checks)


def _field_requirement(text: str, rt: ResourceType) -> Callable[[Obj], bool]:
    match = _FIELD_REQUIREMENT.match(text)
    if not match:
        raise ApiError(400, f"invalid selector: {text!r}")
    key, wanted, negate = match["key"], match["value"], match["op"] == "!="
    if key not in {"metadata.name", "metadata.namespace"} | _FIELD_LABELS.get(rt.plural, set()):
        raise ApiError(400, f'field label not supported: "{key}"')
    path = tuple(key.split("."))

    def check(obj: Obj) -> bool:
        value = _get_path(obj, path)
        return (("" if value is _MISSING else str(value)) == wanted) != negate

    return check
