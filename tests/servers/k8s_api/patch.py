"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as PATCH requests apply them."""

from __future__ import annotations

import copy
from typing import Any

from .resources import Obj


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class _PatchError(Exception):
    pass


def _pointer(text: Any) -> list[str]:
    if text == "":
        return []
    if not isinstance(text, str) or not text.startswith("/"):
        raise _PatchError(f"invalid JSON pointer {text!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/")]


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise _PatchError(f"path element {token!r} not found")


def _pointer_get(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        doc = _child(doc, token)
    return doc


def _pointer_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _pointer_get(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and (
        last == "-" or (last.isdigit() and int(last) <= len(parent))
    ):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        raise _PatchError(f"cannot add at {last!r}")
    return doc


def _pointer_remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _PatchError("cannot remove the whole document")
    parent, last = _pointer_get(doc, tokens[:-1]), tokens[-1]
    _child(parent, last)  # raises when absent
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[int(last)]
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test) applied to a copy of doc."""
    if not isinstance(operations, list):
        raise _PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict):
            raise _PatchError(f"invalid operation {op!r}")
        doc = _json_patch_op(doc, op)
    return doc


def _json_patch_op(doc: Any, op: Obj) -> Any:
    kind, path = op.get("op"), _pointer(op.get("path"))
    if kind == "add":
        return _pointer_add(doc, path, copy.deepcopy(op.get("value")))
    if kind == "remove":
        return _pointer_remove(doc, path)
    if kind == "replace":
        _pointer_get(doc, path)
        return _pointer_add(_pointer_remove(doc, path) if path else doc, path, op.get("value"))
    if kind in ("move", "copy"):
        source = _pointer(op.get("from"))
        value = copy.deepcopy(_pointer_get(doc, source))
        if kind == "move":
            doc = _pointer_remove(doc, source)
        return _pointer_add(doc, path, value)
    if kind == "test":
        if _pointer_get(doc, path) != op.get("value"):
            raise _PatchError(f"test operation failed at {op.get('path')!r}")
        return doc
    raise _PatchError(f"unknown operation {kind!r}")
