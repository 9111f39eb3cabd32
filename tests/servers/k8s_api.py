"""A Kubernetes API test server that speaks the real REST protocol, on loopback.

The official ``kubernetes`` client talks to it unchanged: point a ``Configuration`` at
``KubeApiServer.start()`` (or use ``client_configuration()``). It serves core v1 namespaces,
secrets, serviceaccounts and pods, and KServe's ``serving.kserve.io`` InferenceServices (v1beta1)
and ServingRuntimes / ClusterServingRuntimes (v1alpha1).

What it copies from a real API server with KServe installed (DESIGN.md §3):

- discovery (``/api``, ``/apis``, ``/apis/<group>[/<version>]``, ``/version``);
- create (201, 409 AlreadyExists), get, list (label/field selectors, limit/continue), replace
  (PUT; custom resources need ``metadata.resourceVersion``: 422 without it, 409 when stale), patch
  (merge, JSON patch, strategic merge on core types only, server-side apply with field managers
  and conflicts), delete (finalizers honoured), deletecollection, and watch (chunked JSON lines,
  replay from a bounded history, 410 Expired when too old);
- bookkeeping: uid, creationTimestamp, a global resourceVersion, ``generation`` moving only on
  spec changes, no-op writes that keep the resourceVersion, ``status`` as a subresource,
  ``metadata.managedFields``, Secret ``stringData`` folded into base64 ``data``;
- CRD structural schema: unknown fields pruned with a ``Warning`` header (400 with
  ``fieldValidation=Strict``), schema defaults, 422 ``Invalid`` with one cause per field;
- KServe's webhooks: the InferenceService name rule and "exactly one predictor implementation"
  (403 admission denials), and legacy ``predictor.<framework>`` rewritten into ``predictor.model``.

Also: watch bookmarks (``allowWatchBookmarks``: 2 s before the watch's timeout and once a
minute), ``dryRun`` values checked (only "All"), the 500 "failed to create typed patch object"
for an apply of fields the CRD does not declare, an apply that creates authorized as create too,
an RBAC Role enforced when given, and every request recorded with the (group, resource, verb)
it was authorized as and its User-Agent.

Tests steer it with ``fail_next``, ``forbidden``, ``drop_watches``, ``freeze`` (a server that
stops answering without closing connections), ``on_write`` and ``update_status``; see
``KubeApiServer``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import logging
import os
import queue
import random
import re
import select
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from .tracking_http import TrackingHTTPServer, base_url, serve_in_thread, shut_down

_log = logging.getLogger(__name__)

KSERVE_GROUP = "serving.kserve.io"
# The KServe CRDs are shared data next to the repository (see ../shared/kserve/SOURCE.md);
# KSERVE_CRD_DIR points elsewhere when the checkout lives somewhere else.
CRD_DIR = Path(
    os.environ.get("KSERVE_CRD_DIR", Path(__file__).resolve().parents[3] / "shared/kserve/crd")
)
CRD_PATH = CRD_DIR / "serving.kserve.io_inferenceservices.yaml"

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MISSING: Any = object()

Obj = dict[str, Any]
FieldPath = tuple[str, ...]
WriteCallback = Callable[[str, str, str, "Obj | None"], None]


def crd_available() -> bool:
    """True when the InferenceService CRD file is present, so schema validation is active."""
    return CRD_PATH.is_file()


# --------------------------------------------------------------------------------------------
# Errors: every failure leaves as a ``Status`` body, like the real API server's.

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A ``meta/v1 Status`` failure body."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """A request failure, carrying the Status body the server answers with."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: Obj | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status_body(code, reason or _REASONS.get(code, "Unknown"), message, details)
        self.headers = list(headers)


def _cause(field_path: str, message: str, reason: str = "FieldValueInvalid") -> Obj:
    return {"reason": reason, "message": message, "field": field_path}


# --------------------------------------------------------------------------------------------
# Resource types


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    custom: bool = False  # CRD semantics: generation, PUT needs resourceVersion, no strategic merge
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    crd_file: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_ref(self) -> str:
        """How messages name the resource: ``secrets``, ``inferenceservices.serving.kserve.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_ref(self) -> str:
        """How ``Invalid`` messages name the kind: ``Secret``, ``InferenceService.serving...``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str | None) -> Obj:
        details: Obj = {"name": name, "kind": self.plural}
        if self.group:
            details["group"] = self.group
        return {k: v for k, v in details.items() if v}


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False, status_subresource=True)
SECRETS = ResourceType("", "v1", "secrets", "Secret", True)
SERVICE_ACCOUNTS = ResourceType(
    "", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)
)
PODS = ResourceType("", "v1", "pods", "Pod", True, status_subresource=True, short_names=("po",))
INFERENCE_SERVICES = ResourceType(
    KSERVE_GROUP,
    "v1beta1",
    "inferenceservices",
    "InferenceService",
    True,
    custom=True,
    status_subresource=True,
    short_names=("isvc",),
    crd_file="serving.kserve.io_inferenceservices.yaml",
)
SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "servingruntimes",
    "ServingRuntime",
    True,
    custom=True,
    crd_file="serving.kserve.io_servingruntimes.yaml",
)
CLUSTER_SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "clusterservingruntimes",
    "ClusterServingRuntime",
    False,
    custom=True,
    crd_file="serving.kserve.io_clusterservingruntimes.yaml",
)
RESOURCE_TYPES = {
    rt.plural: rt
    for rt in (
        NAMESPACES,
        SECRETS,
        SERVICE_ACCOUNTS,
        PODS,
        INFERENCE_SERVICES,
        SERVING_RUNTIMES,
        CLUSTER_SERVING_RUNTIMES,
    )
}
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _resource_type(plural: str) -> ResourceType:
    try:
        return RESOURCE_TYPES[plural]
    except KeyError:
        raise KeyError(f"unknown resource {plural!r}; known: {sorted(RESOURCE_TYPES)}") from None


# --------------------------------------------------------------------------------------------
# Small JSON helpers


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


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


def _get_path(obj: Any, path: FieldPath) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _remove_path(obj: Obj, path: FieldPath) -> None:
    """Delete the field at path, then any maps it leaves empty (but not top-level sections)."""
    parents: list[Obj] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append(node)
        node = node[key]
    if not isinstance(node, dict) or path[-1] not in node:
        return
    del node[path[-1]]
    for depth in range(len(path) - 1, 1, -1):
        parent, key = parents[depth - 1], path[depth - 1]
        if parent[key] == {}:
            del parent[key]


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


# --------------------------------------------------------------------------------------------
# CRD structural schema: pruning, defaults, validation


@dataclass(frozen=True)
class _CrdSchema:
    root: Obj  # the openAPIV3Schema, with the root metadata kept as ObjectMeta is
    validator: Any  # jsonschema.Draft7Validator


@functools.cache
def _crd_schema(path: str, version: str) -> _CrdSchema | None:
    """Load and compile one CRD version's schema, once per process (the file is ~39k lines)."""
    from jsonschema import Draft7Validator

    crd_file = Path(path)
    if not crd_file.is_file():
        return None
    crd = yaml.load(crd_file.read_text(), Loader=_YAML_LOADER)
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema = entry["schema"]["openAPIV3Schema"]
            break
    else:
        return None
    # The real server keeps the root's apiVersion, kind and all of ObjectMeta.
    root_props = {**schema.get("properties", {}), "apiVersion": {"type": "string"}}
    root_props["kind"] = {"type": "string"}
    root_props["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    root = {**schema, "properties": root_props}
    return _CrdSchema(root, Draft7Validator(_as_json_schema(root)))


def _as_json_schema(node: Any) -> Any:
    """Translate OpenAPI v3 extensions jsonschema does not know; other x-kubernetes-* are inert."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items()}
    if node.get("x-kubernetes-int-or-string") is True and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


def _prune(value: Any, schema: Obj, path: str, unknown: list[str]) -> Any:
    """Drop fields the schema does not declare, recording their paths, and non-nullable nulls."""
    if isinstance(value, dict):
        return _prune_object(value, schema, path, unknown)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [_prune(item, items, _join(path, i), unknown) for i, item in enumerate(value)]
    return value


def _prune_object(value: Obj, schema: Obj, path: str, unknown: list[str]) -> Obj:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True or extra is True
    out: Obj = {}
    for key, item in value.items():
        sub = props.get(key, extra if isinstance(extra, dict) else None)
        if item is None and not (sub or {}).get("nullable"):
            continue
        if sub is not None:
            out[key] = _prune(item, sub, _join(path, key), unknown)
        elif keep_unknown:
            out[key] = item
        else:
            unknown.append(_join(path, key))
    return out


def _apply_defaults(value: Any, schema: Obj) -> None:
    """Fill schema defaults into the objects that are present, as the API server does."""
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _apply_defaults(item, schema["items"])
        return
    if not isinstance(value, dict):
        return
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, sub in props.items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
    for key, item in value.items():
        sub = props.get(key, extra if isinstance(extra, dict) else None)
        if sub is not None:
            _apply_defaults(item, sub)


def _schema_causes(schema: _CrdSchema, obj: Obj) -> list[Obj]:
    causes: list[Obj] = []
    for error in schema.validator.iter_errors(obj):
        causes.extend(_causes_from_error(error))
    unique = {(c["field"], c["message"]): c for c in causes}
    return sorted(unique.values(), key=lambda c: c["field"])


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _causes_from_error(error: Any) -> list[Obj]:
    """Word a jsonschema error the way the API server words its field errors."""
    path = ""
    for key in error.absolute_path:
        path = _join(path, key)
    value = error.instance
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in value]
        return [_cause(_join(path, n), "Required value", "FieldValueRequired") for n in missing]
    if error.validator == "type":
        expected = error.validator_value
        message = (
            f'Invalid value: "{_json_type(value)}": {path} in body must be of type {expected}: '
            f"{json.dumps(value)}"
        )
        return [_cause(path, message, "FieldValueTypeInvalid")]
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        message = f"Unsupported value: {json.dumps(value)}: supported values: {allowed}"
        return [_cause(path, message, "FieldValueNotSupported")]
    return [_cause(path, f"Invalid value: {json.dumps(value)}: {error.message}")]


def validate_against_crd(obj: Obj, plural: str = "inferenceservices") -> list[Obj]:
    """Field causes for obj under its CRD schema (after pruning); [] when valid or no CRD file.

    Handy for unit tests of manifests without starting a server.
    """
    rt = _resource_type(plural)
    schema = _crd_schema(str(CRD_DIR / rt.crd_file), rt.version) if rt.crd_file else None
    if schema is None:
        return []
    pruned = _prune(obj, schema.root, "", [])
    _apply_defaults(pruned, schema.root)
    return _schema_causes(schema, pruned)


# --------------------------------------------------------------------------------------------
# Object metadata: the API server's own validation (422) and decoding rules (400)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    r"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


_KEY_LENGTH_MESSAGE = "name part must be no more than 63 characters and prefix a DNS subdomain"
_KEY_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character"
)


def _name_causes(rt: ResourceType, name: str) -> list[Obj]:
    if not name:
        return [_cause("metadata.name", "Required value: name or generateName is required")]
    if rt is NAMESPACES:
        valid, limit, rule = _DNS1123_LABEL.match(name), 63, _LABEL_MESSAGE
    else:
        valid, limit, rule = _DNS1123_SUBDOMAIN.match(name), 253, _SUBDOMAIN_MESSAGE
    if len(name) > limit:
        return [
            _cause(
                "metadata.name", f'Invalid value: "{name}": must be no more than {limit} characters'
            )
        ]
    return [] if valid else [_cause("metadata.name", f'Invalid value: "{name}": {rule}')]


def _key_causes(field_path: str, key: str) -> list[Obj]:
    prefix, _, name = key.rpartition("/")
    if (prefix and not _DNS1123_SUBDOMAIN.match(prefix)) or len(name) > 63:
        return [_cause(field_path, f'Invalid value: "{key}": {_KEY_LENGTH_MESSAGE}')]
    if not _QUALIFIED_NAME.match(name):
        return [_cause(field_path, f'Invalid value: "{key}": {_KEY_NAME_MESSAGE}')]
    return []


def _metadata_causes(rt: ResourceType, meta: Obj) -> list[Obj]:
    causes = _name_causes(rt, meta.get("name", ""))
    for key, value in (meta.get("labels") or {}).items():
        causes += _key_causes("metadata.labels", key)
        if len(value) > 63:
            causes.append(
                _cause(
                    "metadata.labels",
                    f'Invalid value: "{value}": must be no more than 63 characters',
                )
            )
        elif not _LABEL_VALUE.match(value):
            causes.append(
                _cause("metadata.labels", f'Invalid value: "{value}": {_LABEL_VALUE_MESSAGE}')
            )
    for key in meta.get("annotations") or {}:
        causes += _key_causes("metadata.annotations", key)
    return causes


def _unmarshal_error(rt: ResourceType, value: Any, go_field: str, go_type: str) -> ApiError:
    detail = f"cannot unmarshal {_json_type(value)} into Go struct field {go_field} of type"
    return _decode_error(rt, f"json: {detail} {go_type}")


def _decode_error(rt: ResourceType, detail: str) -> ApiError:
    return ApiError(
        400,
        f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}',
    )


def _check_string_maps(rt: ResourceType, obj: Obj) -> None:
    """Labels and annotations are map[string]string: a number there fails decoding (400)."""
    meta = obj["metadata"]
    for section in ("labels", "annotations"):
        values = meta.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            go_field = f"ObjectMeta.metadata.{section}"
            raise _unmarshal_error(rt, values, go_field, "map[string]string")
        for value in values.values():
            if not isinstance(value, str):
                raise _unmarshal_error(rt, value, f"ObjectMeta.metadata.{section}", "string")


# Type-specific strategies: each may rewrite the object and returns extra field causes.


_SECRET_KEY_MESSAGE = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def _secret_strategy(rt: ResourceType, obj: Obj) -> list[Obj]:
    """Fold stringData into base64 data (write-only field), check keys and base64."""
    data = dict(obj.get("data") or {})
    for key, value in data.items():
        if not isinstance(value, str):
            raise _unmarshal_error(rt, value, "Secret.data", "[]uint8")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _decode_error(rt, f"illegal base64 data at input byte 0 (key {key!r})") from None
    for key, value in (obj.pop("stringData", None) or {}).items():
        if not isinstance(value, str):
            raise _unmarshal_error(rt, value, "Secret.stringData", "string")
        data[key] = base64.b64encode(value.encode()).decode()
    if data:
        obj["data"] = data
    else:
        obj.pop("data", None)
    obj.setdefault("type", "Opaque")
    return [
        _cause(f"data[{key}]", f'Invalid value: "{key}": {_SECRET_KEY_MESSAGE}')
        for key in data
        if not _SECRET_KEY.match(key)
    ]


def _namespace_strategy(rt: ResourceType, obj: Obj) -> list[Obj]:
    name = obj["metadata"].get("name", "")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj.setdefault("status", {"phase": "Active"})
    return []


def _pod_strategy(rt: ResourceType, obj: Obj) -> list[Obj]:
    obj.setdefault("status", {"phase": "Pending"})
    return []


_STRATEGIES: dict[str, Callable[[ResourceType, Obj], list[Obj]]] = {
    "secrets": _secret_strategy,
    "namespaces": _namespace_strategy,
    "pods": _pod_strategy,
}


# --------------------------------------------------------------------------------------------
# KServe's admission webhooks for InferenceServices

_ISVC_VALIDATOR = "inferenceservice.kserve-webhook-server.validator"
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Legacy framework fields and the Go field names KServe's message lists.
_FRAMEWORKS = {
    "sklearn": "SKLearn",
    "xgboost": "XGBoost",
    "tensorflow": "Tensorflow",
    "pytorch": "PyTorch",
    "triton": "Triton",
    "onnx": "ONNX",
    "huggingface": "HuggingFace",
    "pmml": "PMML",
    "lightgbm": "LightGBM",
    "paddle": "Paddle",
}
_STORAGE_PREFIXES = (
    "gs://",
    "s3://",
    "pvc://",
    "file://",
    "https://",
    "http://",
    "hdfs://",
    "webhdfs://",
    "oci://",
    "hf://",
)


def _webhook_denied(message: str) -> ApiError:
    return ApiError(403, f'admission webhook "{_ISVC_VALIDATOR}" denied the request: {message}')


def _implementations(predictor: Obj) -> list[str]:
    return [key for key in (*_FRAMEWORKS, "model") if predictor.get(key) is not None]


def kserve_default(isvc: Obj, release: tuple[int, int] = (0, 20)) -> None:
    """KServe's defaulter: a lone legacy ``predictor.<framework>`` becomes ``predictor.model``;
    from v0.17 a legacy deployment mode name is rewritten to the current one
    (inference_service_defaults.go, kserve#5025)."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    mode = annotations.get("serving.kserve.io/deploymentMode")
    if release >= (0, 17) and mode in _LEGACY_MODES:
        annotations["serving.kserve.io/deploymentMode"] = _LEGACY_MODES[mode]
    predictor = (isvc.get("spec") or {}).get("predictor")
    if not isinstance(predictor, dict):
        return
    found = _implementations(predictor)
    if len(found) != 1 or found[0] == "model" or not isinstance(predictor[found[0]], dict):
        return
    legacy = predictor.pop(found[0])
    predictor["model"] = {"modelFormat": {"name": found[0]}, **legacy}


_AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")  # AutoscalerAllowedClassList
_LEGACY_MODES = {"RawDeployment": "Standard", "Serverless": "Knative"}


def kserve_validate(isvc: Obj, old: Obj | None = None, release: tuple[int, int] = (0, 20)) -> None:
    """KServe's validating webhook rules this server copies; raises a 403 denial."""
    name = isvc["metadata"]["name"]
    if not _ISVC_NAME.match(name):
        raise _webhook_denied(
            f'The InferenceService "{name}" is invalid: a InferenceService name must consist of '
            "lower case alphanumeric characters or '-', and must start with alphabetical "
            f'character. (e.g. "my-name" or "abc-123", regex used for validation is '
            f"'{_ISVC_NAME.pattern[1:-1]}')"
        )
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    found = _implementations(predictor)
    custom_container = not found and bool(predictor.get("containers"))
    if len(found) != 1 and not custom_container:
        names = ", ".join([*_FRAMEWORKS.values(), "Model", "PodSpec"])
        raise _webhook_denied(f"Exactly one of [{names}] must be specified in PredictorSpec")
    _validate_storage_uri((predictor.get(found[0]) or {}).get("storageUri") if found else None)
    _validate_replicas(predictor)
    annotations = isvc["metadata"].get("annotations") or {}
    autoscaler = annotations.get("serving.kserve.io/autoscalerClass")
    if autoscaler is not None and autoscaler not in _AUTOSCALER_CLASSES:
        raise _webhook_denied(f"[{autoscaler}] is not a supported autoscaler class type")
    if old is not None and not isvc["metadata"].get("deletionTimestamp"):
        _validate_deployment_mode(annotations, old, release)
    _validate_scaling(annotations, predictor)


def _validate_deployment_mode(
    annotations: dict[str, str], old: Obj, release: tuple[int, int]
) -> None:
    # validateDeploymentMode (inference_service_validation.go, v0.15.1 and later): the
    # annotation (as written, after the defaulter) against the recorded mode, which v0.19 and
    # later normalize (ParseDeploymentMode) and earlier releases compare as it is.
    recorded = str((old.get("status") or {}).get("deploymentMode") or "")
    if release >= (0, 19):
        recorded = _LEGACY_MODES.get(recorded, recorded)
    asked = annotations.get("serving.kserve.io/deploymentMode")
    if recorded and asked is not None and asked != recorded:
        raise _webhook_denied(
            f"update rejected: deploymentMode cannot be changed from '{recorded}' to '{asked}'"
        )


def _validate_scaling(annotations: dict[str, str], predictor: Obj) -> None:
    # validateAutoScalingCompExtension: Standard+hpa (cpu/memory, cpu target 1-100),
    # Standard+keda (no scaleMetric), anything else the Knative rules (concurrency/rps).
    mode = annotations.get("serving.kserve.io/deploymentMode")
    autoscaler = annotations.get("serving.kserve.io/autoscalerClass")
    knative_class = annotations.get("autoscaling.knative.dev/class")
    metric, target = predictor.get("scaleMetric"), predictor.get("scaleTarget")
    if mode == "Standard":
        if autoscaler == "hpa":
            _validate_hpa(metric, target)
        elif autoscaler == "keda" and metric is not None:
            raise _webhook_denied("ScaleMetric is not supported for KEDA")
        return
    if knative_class == "hpa.autoscaling.knative.dev":
        _validate_hpa(metric, target)
        return
    if predictor.get("deploymentStrategy") is not None:
        raise _webhook_denied(
            "customizing deploymentStrategy is only supported for raw deployment mode"
        )
    metric = metric or "concurrency"
    if metric not in ("concurrency", "rps"):
        raise _webhook_denied(f"[{metric}] is not a supported metric")
    if metric == "rps" and isinstance(target, int) and target < 1:
        raise _webhook_denied("the target for rps should be greater than 1")


def _validate_hpa(metric: Any, target: Any) -> None:
    metric = metric or "cpu"
    if metric not in ("cpu", "memory"):
        raise _webhook_denied(f"[{metric}] is not a supported metric")
    if isinstance(target, int) and ((metric == "cpu" and target < 1) or target > 100):
        raise _webhook_denied("the target utilization percentage should be a [1-100] integer")
    if isinstance(target, int) and metric == "memory" and target < 1:
        raise _webhook_denied("the target memory should be greater than 1 MiB")


def _validate_storage_uri(uri: Any) -> None:
    # KServe accepts local paths; a URI with a scheme must use one of its storage schemes.
    if isinstance(uri, str) and "://" in uri and not uri.startswith(_STORAGE_PREFIXES):
        raise _webhook_denied(
            f"storageUri, must be one of: [{', '.join(_STORAGE_PREFIXES)}] or match "
            "https://{}.blob.core.windows.net/{}/{} or be an absolute or relative local path. "
            f"StorageUri [{uri}] is not supported."
        )


def _validate_replicas(predictor: Obj) -> None:
    low, high = predictor.get("minReplicas"), predictor.get("maxReplicas") or 0
    if isinstance(low, int) and low < 0:
        raise _webhook_denied("MinReplicas cannot be less than 0.")
    if isinstance(high, int) and high < 0:
        raise _webhook_denied("MaxReplicas cannot be less than 0.")
    if isinstance(low, int) and isinstance(high, int) and high and low > high:
        raise _webhook_denied("MinReplicas cannot be greater than MaxReplicas.")


# --------------------------------------------------------------------------------------------
# Field ownership (a simplified server-side apply)
#
# A field is a path of map keys; lists and scalars are atomic leaves. Each manager owns a set of
# paths, rendered into metadata.managedFields as FieldsV1 ({"f:spec": {"f:x": {}}}).


@dataclass
class _Owner:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[FieldPath]


def _tracked_leaves(obj: Obj, rt: ResourceType) -> dict[FieldPath, Any]:
    """Leaf fields subject to ownership: everything but identity, system metadata and status."""
    leaves: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata") or (key == "status" and rt.status_subresource):
            continue
        _collect_leaves(value, (key,), leaves)
    meta = obj.get("metadata") or {}
    for key in ("labels", "annotations", "finalizers", "ownerReferences"):
        if key in meta:
            _collect_leaves(meta[key], ("metadata", key), leaves)
    return leaves


def _collect_leaves(value: Any, path: FieldPath, out: dict[FieldPath, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _collect_leaves(item, (*path, key), out)
    else:
        out[path] = value


def _related(a: FieldPath, b: FieldPath) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


def _read_owners(obj: Obj | None) -> list[_Owner]:
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [
        _Owner(
            e["manager"],
            e.get("operation", "Update"),
            e.get("apiVersion", ""),
            e.get("time", ""),
            _paths_from_fields(e.get("fieldsV1") or {}),
        )
        for e in entries
        if isinstance(e, dict) and e.get("manager")
    ]


def _paths_from_fields(fields: Obj, prefix: FieldPath = ()) -> set[FieldPath]:
    paths: set[FieldPath] = set()
    for key, sub in fields.items():
        if key == ".":
            paths.add(prefix)
        elif sub:
            paths |= _paths_from_fields(sub, (*prefix, key[2:]))
        else:
            paths.add((*prefix, key[2:]))
    return paths


def _fields_from_paths(paths: set[FieldPath]) -> Obj:
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    for path in paths:  # a path that also has owned children is marked with "."
        node = root
        for key in path:
            node = node[f"f:{key}"]
        if any(k != "." for k in node):
            node["."] = {}
    return root


def _owner(owners: list[_Owner], manager: str, operation: str, rt: ResourceType) -> _Owner:
    for owner in owners:
        if owner.manager == manager and owner.operation == operation:
            return owner
    owners.append(_Owner(manager, operation, rt.api_version, _now(), set()))
    return owners[-1]


def _changed_paths(before: Obj | None, after: Obj, rt: ResourceType) -> set[FieldPath]:
    old = _tracked_leaves(before, rt) if before else {}
    new = _tracked_leaves(after, rt)
    changed = {path for path, value in new.items() if old.get(path, _MISSING) != value}
    return changed | (old.keys() - new.keys())


def _record_update(
    owners: list[_Owner], manager: str, old: Obj | None, new: Obj, rt: ResourceType
) -> None:
    """A non-apply write: its manager takes every field it changed, away from the others."""
    changed = _changed_paths(old, new, rt)
    if not changed:
        return
    mine = _owner(owners, manager, "Update", rt)
    for owner in owners:
        if owner is not mine:
            owner.paths = {p for p in owner.paths if not any(_related(p, c) for c in changed)}
    mine.paths |= changed & _tracked_leaves(new, rt).keys()
    mine.time = _now()


def _apply_conflicts(
    others: list[_Owner], live: Obj, applied: Obj, wanted: dict[FieldPath, Any]
) -> list[tuple[_Owner, FieldPath]]:
    """Fields another manager owns that this apply would set to a different value."""
    found = []
    for owner in others:
        for owned in sorted(owner.paths):
            if any(_conflicts_at(owned, path, live, applied) for path in wanted):
                found.append((owner, owned))
    return found


def _conflicts_at(owned: FieldPath, path: FieldPath, live: Obj, applied: Obj) -> bool:
    if not _related(owned, path):
        return False
    if len(owned) < len(path):  # owned leaf above the applied field: only a type change conflicts
        return not isinstance(_get_path(live, owned), dict)
    return _get_path(live, path) != _get_path(applied, path)


def _apply_conflict_error(conflicts: list[tuple[_Owner, FieldPath]]) -> ApiError:
    causes = [
        _cause(
            "." + ".".join(path),
            f'conflict with "{owner.manager}" using {owner.api_version}',
            "FieldManagerConflict",
        )
        for owner, path in conflicts
    ]
    listed = "; ".join(f"{c['message']}: {c['field']}" for c in causes)
    plural = "s" if len(causes) > 1 else ""
    return ApiError(
        409,
        f"Apply failed with {len(causes)} conflict{plural}: {listed}",
        details={"causes": causes},
    )


def server_side_apply(
    live: Obj | None, applied: Obj, manager: str, force: bool, rt: ResourceType
) -> tuple[Obj, list[_Owner]]:
    """Merge an applied configuration into live: returns the object and updated owners.

    Fields this manager applied before but no longer sends are removed unless another manager
    owns them; fields owned by others with different values conflict (409) unless ``force``.
    """
    owners = _read_owners(live)
    base = live or {}
    wanted = _tracked_leaves(applied, rt)
    others = [owner for owner in owners if owner.manager != manager]
    conflicts = _apply_conflicts(others, base, applied, wanted)
    if conflicts and not force:
        raise _apply_conflict_error(conflicts)
    for owner, path in conflicts:
        owner.paths.discard(path)
    mine = _owner(owners, manager, "Apply", rt)
    merged = copy.deepcopy(base)
    for path in mine.paths - wanted.keys():
        if not any(_related(path, q) for owner in others for q in owner.paths):
            _remove_path(merged, path)
    merged = merge_patch(merged, applied)
    mine.paths, mine.time = set(wanted), _now()
    return merged, owners


def _store_owners(obj: Obj, owners: list[_Owner], rt: ResourceType) -> None:
    """Drop ownership of fields that no longer exist, then render managedFields."""
    present = set()
    for leaf in _tracked_leaves(obj, rt):
        present |= {leaf[:i] for i in range(1, len(leaf) + 1)}
    entries = []
    for owner in owners:
        owner.paths &= present
        if owner.paths:
            entries.append(
                {
                    "manager": owner.manager,
                    "operation": owner.operation,
                    "apiVersion": owner.api_version,
                    "time": owner.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_from_paths(owner.paths),
                }
            )
    if entries:
        obj["metadata"]["managedFields"] = entries
    else:
        obj["metadata"].pop("managedFields", None)


# --------------------------------------------------------------------------------------------
# Storage and history


@dataclass(frozen=True)
class _Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    plural: str
    namespace: str
    obj: Obj
    old: Obj | None


_Key = tuple[str, str, str]  # (plural, namespace or "", name)


def _key(rt: ResourceType, namespace: str | None, name: str) -> _Key:
    return (rt.plural, (namespace or "") if rt.namespaced else "", name)


def _comparable(obj: Obj) -> Obj:
    """The object without what a no-op write may still change (resourceVersion, timestamps)."""
    result = copy.deepcopy(obj)
    meta = result.get("metadata") or {}
    for key in ("resourceVersion", "generation"):
        meta.pop(key, None)
    for entry in meta.get("managedFields") or []:
        entry.pop("time", None)
    return result


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


class _Store:
    """Objects, the global resourceVersion and a bounded event history, behind one condition.

    Stored dicts are never mutated in place; writers always store a new dict.
    """

    def __init__(self, history_size: int, on_event: Callable[[_Event], None]) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.revision = 0
        self._objects: dict[_Key, Obj] = {}
        self._history: deque[_Event] = deque(maxlen=history_size)
        self._on_event = on_event

    def get(self, key: _Key) -> Obj | None:
        return self._objects.get(key)

    def items(self, plural: str, namespace: str | None) -> list[Obj]:
        keys = sorted(k for k in self._objects if k[0] == plural and namespace in (None, k[1]))
        return [self._objects[k] for k in keys]

    def save(self, rt: ResourceType, new: Obj, old: Obj | None) -> Obj:
        """Store new over old; returns old itself when nothing would change."""
        with self.cond:
            if old is not None and _comparable(old) == _comparable(new):
                return old
            self.revision += 1
            stored = _stamp(rt, new, old, self.revision)
            meta = stored["metadata"]
            self._objects[_key(rt, meta.get("namespace"), meta["name"])] = stored
            self._record("ADDED" if old is None else "MODIFIED", rt, stored, old)
            return stored

    def remove(self, rt: ResourceType, obj: Obj) -> Obj:
        with self.cond:
            self.revision += 1
            final = copy.deepcopy(obj)
            final["metadata"]["resourceVersion"] = str(self.revision)
            meta = final["metadata"]
            del self._objects[_key(rt, meta.get("namespace"), meta["name"])]
            self._record("DELETED", rt, final, obj)
            return final

    def events_after(self, revision: int) -> list[_Event] | None:
        """Events newer than revision, or None when the history no longer reaches back there."""
        if revision >= self.revision:
            return []
        if not self._history or self._history[0].revision > revision + 1:
            return None
        return [event for event in self._history if event.revision > revision]

    def oldest_revision(self) -> int:
        return self._history[0].revision - 1 if self._history else self.revision

    def _record(self, kind: str, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        namespace = obj["metadata"].get("namespace", "")
        event = _Event(self.revision, kind, rt.plural, namespace, obj, old)
        self._history.append(event)
        self._on_event(event)
        self.cond.notify_all()


def _stamp(rt: ResourceType, new: Obj, old: Obj | None, revision: int) -> Obj:
    """System metadata: uid, creationTimestamp, resourceVersion, generation (custom resources)."""
    obj = copy.deepcopy(new)
    meta = obj.setdefault("metadata", {})
    meta["resourceVersion"] = str(revision)
    if old is None:
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
    if rt.custom:
        # everything but metadata (and status, when it is a subresource) is "spec" here
        ignored = ("metadata", "status") if rt.status_subresource else ("metadata",)
        previous = (old or {}).get("metadata", {}).get("generation", 0)
        spec_changed = old is None or _without(old, *ignored) != _without(obj, *ignored)
        meta["generation"] = previous + 1 if spec_changed else previous
    return obj


# --------------------------------------------------------------------------------------------
# Requests


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_gone: Callable[[], bool] = lambda: False
    # (API group, resource, verb) for each authorization check, once routed
    access: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json").split(";")[0].strip().lower()

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, for assertions (``server.requests``)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    content_type: str | None
    access: tuple[tuple[str, str, str], ...] = ()
    """(API group, resource, verb) of each RBAC check the request needed (none for
    discovery; an apply that creates is also authorized as create)."""
    user_agent: str = ""


@dataclass
class Response:
    status: int
    body: Obj
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Stream:
    """A watch: events are written as chunked JSON lines as the iterator yields them."""

    events: Generator[Obj, None, None]


class AbruptClose(Exception):
    """Raised by a watch to make the server cut the connection without ending the stream."""


@dataclass(frozen=True)
class _Target:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def key(self) -> _Key:
        return _key(self.rtype, self.namespace, self.name or "")


@dataclass
class _Fault:
    method: str
    path_substring: str
    status: int
    times: int
    message: str | None
    reason: str | None
    retry_after: int | None
    watch: bool | None = None  # only watch requests (True), only others (False), or any


@dataclass
class _WriteContext:
    """How one write request wants to be handled."""

    manager: str
    operation: str = "Update"  # or "Apply"
    subresource: str | None = None
    field_validation: str = "Warn"
    dry_run: bool = False
    via_api: bool = True
    warnings: list[str] = field(default_factory=list)
    apply_owners: list[_Owner] | None = None
    apply_base: Obj | None = None

    @classmethod
    def from_request(
        cls, request: Request, target: _Target, operation: str = "Update"
    ) -> _WriteContext:
        _check_dry_run(request)
        return cls(
            manager=request.query.get("fieldManager") or _manager_from(request.headers),
            operation=operation,
            subresource=target.subresource,
            field_validation=request.query.get("fieldValidation", "Warn"),
            dry_run=bool(request.query.get("dryRun")),
        )

    def headers(self) -> list[tuple[str, str]]:
        return [("Warning", '299 - "{}"'.format(w.replace('"', '\\"'))) for w in self.warnings]


_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def _check_dry_run(request: Request) -> None:
    """Like the real server: ``dryRun`` may only be "All" (ValidateDryRun in apimachinery)."""
    value = request.query.get("dryRun")
    if value is None or value == "All":
        return
    kind = _OPTIONS_KIND.get(request.method, "DeleteOptions")
    message = f'Unsupported value: []string{{"{value}"}}: supported values: "All"'
    raise ApiError(
        422,
        f'{kind}.meta.k8s.io "" is invalid: dryRun: {message}',
        details={
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [_cause("dryRun", message, "FieldValueNotSupported")],
        },
    )


def _manager_from(headers: dict[str, str]) -> str:
    # Like the real server: the User-Agent up to its first "/" (the Python client sends
    # "OpenAPI-Generator/<version>/python").
    agent = headers.get("user-agent", "")
    return agent.split("/")[0][:128] or "unknown"


_JSON_TYPES = {"application/json", "application/yaml", "application/x-yaml", "*/*"}
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"
_APPLY = "application/apply-patch+yaml"


def _decode(request: Request, rt: ResourceType, yaml_ok: bool = False) -> Any:
    text = request.body.decode("utf-8", errors="replace")
    try:
        if yaml_ok or "yaml" in request.content_type:
            return yaml.load(text, Loader=_YAML_LOADER)
        return json.loads(text)
    except (ValueError, yaml.YAMLError) as err:
        raise ApiError(400, f"couldn't get version/kind; json parse error: {err}") from None


def _object_body(request: Request, rt: ResourceType, yaml_ok: bool = False) -> Obj:
    if not yaml_ok and request.content_type not in _JSON_TYPES:
        raise _unsupported_media(["application/json", "application/yaml"])
    body = _decode(request, rt, yaml_ok)
    if not isinstance(body, dict):
        raise _decode_error(
            rt, f"json: cannot unmarshal {_json_type(body)} into Go value of type {rt.kind}"
        )
    body = copy.deepcopy(body)
    if not isinstance(body.setdefault("metadata", {}), dict):
        raise _decode_error(rt, "json: cannot unmarshal metadata into Go struct field ObjectMeta")
    return body


# --------------------------------------------------------------------------------------------
# The API: routing, verbs, admission, watch


class _Api:
    """Everything a request needs; the HTTP layer only moves bytes."""

    def __init__(self, owner: KubeApiServer, history_size: int) -> None:
        self.server = owner
        self.store = _Store(history_size, owner._on_event)
        self.write_counts: Counter[_Key] = Counter()
        self.faults: list[_Fault] = []
        self.records: list[RequestRecord] = []
        self.watch_epoch = 0
        self.abrupt_drop = False
        self.frozen = False
        self.active_watches = 0
        self.stopping = False
        self.served = self._served_types()

    def _served_types(self) -> dict[tuple[str, str], list[ResourceType]]:
        served = {("", "v1"): [NAMESPACES, SECRETS, SERVICE_ACCOUNTS, PODS]}
        if self.server.inference_service_api:
            served[(KSERVE_GROUP, "v1beta1")] = [INFERENCE_SERVICES]
        if self.server.serving_runtime_api:
            served[(KSERVE_GROUP, "v1alpha1")] = [SERVING_RUNTIMES, CLUSTER_SERVING_RUNTIMES]
        return served

    # ---- entry point

    def handle(self, request: Request) -> Response | Stream:
        self._wait_while_frozen(request)
        try:
            self._authenticate(request)
            self._inject_fault(request)
            result = self._route(request)
        except ApiError as err:
            result = Response(err.code, err.status, err.headers)
        except Exception as err:  # a server bug must still answer like a server
            _log.exception("k8s test server failed on %s %s", request.method, request.path)
            result = Response(500, status_body(500, "InternalError", f"test server error: {err}"))
        status = result.status if isinstance(result, Response) else 200
        record = RequestRecord(
            request.method,
            request.path,
            dict(request.query),
            status,
            request.headers.get("content-type"),
            tuple(request.access),
            request.headers.get("user-agent", ""),
        )
        with self.store.cond:
            self.records.append(record)
        return result

    def _wait_while_frozen(self, request: Request) -> None:
        """A frozen server reads requests and never answers them (the connection stays open)
        until it thaws or stops, like an API server whose etcd stopped answering."""
        with self.store.cond:
            while self.frozen and not self.stopping and not request.client_gone():
                self.store.cond.wait(0.25)

    def _authenticate(self, request: Request) -> None:
        token = self.server.token
        if token and request.headers.get("authorization") != f"Bearer {token}":
            raise ApiError(401, "Unauthorized")

    def _inject_fault(self, request: Request) -> None:
        with self.store.cond:
            fault = next((f for f in self.faults if _fault_matches(f, request)), None)
            if fault is None:
                return
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
        message = fault.message or f"injected failure for {request.method} {request.path}"
        headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
        raise ApiError(fault.status, message, reason=fault.reason, headers=headers)

    # ---- routing

    def _route(self, request: Request) -> Response | Stream:
        parts = [part for part in request.path.split("/") if part]
        if parts == ["version"]:
            return Response(200, _version_doc())
        if parts[:1] == ["api"]:
            if len(parts) == 1:
                return Response(200, self._core_versions_doc(request))
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                return Response(200, self._group_list_doc())
            if len(parts) == 2:
                return Response(200, self._group_doc(parts[1]))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _page_not_found()
        types = self.served.get((group, version))
        if types is None:
            raise _page_not_found()
        if not rest:
            return Response(200, _resource_list_doc(group, version, types))
        return self._serve(request, _resolve_target(types, rest))

    def _serve(self, request: Request, target: _Target) -> Response | Stream:
        verb = _verb(request, target)
        self._authorize(request, verb, target)
        handlers: dict[str, Callable[[Request, _Target], Response | Stream]] = {
            "get": self._get,
            "list": self._list,
            "watch": self._watch,
            "create": self._create,
            "update": self._replace,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }
        return handlers[verb](request, target)

    def _authorize(self, request: Request, verb: str, target: _Target) -> None:
        resource = target.rtype.plural + (f"/{target.subresource}" if target.subresource else "")
        request.access.append((target.rtype.group, resource, verb))
        self._check_forbidden(verb, target)

    def _check_forbidden(self, verb: str, target: _Target) -> None:
        rt = target.rtype
        resource = rt.plural + (f"/{target.subresource}" if target.subresource else "")
        # Like RBAC, a rule on "inferenceservices" does not cover "inferenceservices/status".
        # A rule (verb, resource) holds everywhere; (verb, resource, scope) only in the namespace
        # ``scope``, or, with scope "", at the cluster scope (a list across all namespaces).
        rules = set(self.server.forbidden)
        denied = any(
            rule[0] in (verb, "*")
            and rule[1] in (resource, "*")
            and (len(rule) == 2 or rule[2] == (target.namespace or ""))
            for rule in rules
        )
        role = self.server.role
        if role is not None:  # a Role bound in one namespace: nothing elsewhere
            granted = role.allows(rt.group, resource, verb, target.namespace)
            denied = denied or not granted
        if not denied:
            return
        subject = f'{rt.resource_ref} "{target.name}"' if target.name else rt.resource_ref
        scope = (
            f' in the namespace "{target.namespace}"'
            if target.namespace
            else " at the cluster scope"
        )
        message = (
            f'{subject} is forbidden: User "{self.server.user}" cannot {verb} resource '
            f'"{resource}" in API group "{rt.group}"{scope}'
        )
        raise ApiError(403, message, details=rt.details(target.name))

    # ---- discovery

    def _core_versions_doc(self, request: Request) -> Obj:
        address = request.headers.get("host", "127.0.0.1")
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    def _group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, version in self.served:
            if group:
                groups.setdefault(group, []).append(version)
        return groups

    def _group_doc(self, group: str) -> Obj:
        versions = self._group_versions().get(group)
        if not versions:
            raise _page_not_found()
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def _group_list_doc(self) -> Obj:
        groups = [
            _without(self._group_doc(g), "kind", "apiVersion") for g in self._group_versions()
        ]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    # ---- reads

    def _get(self, request: Request, target: _Target) -> Response:
        obj = self.store.get(target.key)
        if obj is None:
            raise _not_found(target.rtype, target.name)
        return Response(200, obj)

    def _list(self, request: Request, target: _Target) -> Response:
        with self.store.cond:
            items = self._matching(request, target)
            revision = self.store.revision
        items, meta = _paginate(items, request.query)
        rt = target.rtype
        if not rt.custom:  # built-in lists carry kind/apiVersion only on the list itself
            items = [_without(item, "kind", "apiVersion") for item in items]
        meta["resourceVersion"] = str(revision)
        return Response(
            200,
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": items,
            },
        )

    def _matcher(self, request: Request, target: _Target) -> Callable[[Obj], bool]:
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""), target.rtype)
        return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)

    def _matching(self, request: Request, target: _Target) -> list[Obj]:
        matches = self._matcher(request, target)
        return [
            obj for obj in self.store.items(target.rtype.plural, target.namespace) if matches(obj)
        ]

    # ---- watch

    def _watch(self, request: Request, target: _Target) -> Stream:
        matches = self._matcher(request, target)
        start = request.query.get("resourceVersion", "")
        start_at = None if start in ("", "0") else _parse_revision(start)
        timeout = float(request.query.get("timeoutSeconds") or 0)
        bookmarks = request.flag("allowWatchBookmarks")
        return Stream(self._watch_events(target, matches, start_at, timeout, request, bookmarks))

    def _watch_events(
        self,
        target: _Target,
        matches: Callable[[Obj], bool],
        start_at: int | None,
        timeout: float,
        request: Request,
        bookmarks: bool = False,
    ) -> Generator[Obj, None, None]:
        """Without a resourceVersion: ADDED for what exists, then changes; with one: replay.

        With ``allowWatchBookmarks``, a BOOKMARK carrying the current resourceVersion is sent
        like the real watch cache sends it: once a minute, and 2 s before the watch's timeout.
        """
        deadline = time.monotonic() + timeout if timeout else None
        bookmark_at = _next_bookmark(deadline) if bookmarks else None
        with self.store.cond:
            if start_at is None:
                cursor = self.store.revision
                current = self.store.items(target.rtype.plural, target.namespace)
                initial = [obj for obj in current if matches(obj)]
            else:
                cursor, initial = start_at, []
            epoch = self.watch_epoch
            self.active_watches += 1
            self.store.cond.notify_all()
        try:
            for obj in initial:
                yield {"type": "ADDED", "object": obj}
            while True:
                events = self._next_events(cursor, epoch, deadline, request, bookmark_at)
                if events is None:
                    return
                if isinstance(events, str):  # time for a bookmark
                    yield self._bookmark(target.rtype)
                    bookmark_at = time.monotonic() + 60
                    continue
                if isinstance(events, dict):  # expired history
                    yield events
                    return
                for event in events:
                    cursor = event.revision
                    view = _watch_view(event, target, matches)
                    if view is not None:
                        yield view
        finally:
            with self.store.cond:
                self.active_watches -= 1
                self.store.cond.notify_all()

    def _bookmark(self, rt: ResourceType) -> Obj:
        with self.store.cond:
            revision = self.store.revision
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": rt.kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(revision)},
            },
        }

    def _next_events(
        self,
        cursor: int,
        epoch: int,
        deadline: float | None,
        request: Request,
        bookmark_at: float | None = None,
    ) -> list[_Event] | Obj | str | None:
        """Block until events after cursor exist; None ends the stream, a dict is an ERROR,
        "BOOKMARK" says a bookmark is due."""
        with self.store.cond:
            while True:
                if self.stopping:
                    return None
                if self.frozen:  # a hung server: no events, no end, whatever the timeout
                    if request.client_gone():
                        return None
                    self.store.cond.wait(0.25)
                    continue
                if self.watch_epoch != epoch:
                    if self.abrupt_drop:
                        raise AbruptClose
                    return None
                events = self.store.events_after(cursor)
                if events is None:
                    message = f"too old resource version: {cursor} ({self.store.oldest_revision()})"
                    return {"type": "ERROR", "object": status_body(410, "Expired", message)}
                if events:
                    return events
                if bookmark_at is not None and time.monotonic() >= bookmark_at:
                    return "BOOKMARK"
                remaining = deadline - time.monotonic() if deadline else 0.25
                if remaining <= 0 or request.client_gone():
                    return None
                self.store.cond.wait(min(remaining, 0.25))

    # ---- writes

    def _require_namespace(self, target: _Target) -> None:
        if (
            target.rtype.namespaced
            and self.store.get(_key(NAMESPACES, None, target.namespace or "")) is None
        ):
            raise _not_found(NAMESPACES, target.namespace)

    def _create(self, request: Request, target: _Target) -> Response:
        rt = target.rtype
        body = _object_body(request, rt)
        ctx = _WriteContext.from_request(request, target)
        meta = body["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choices("bcdfghjklmnpqrstvwxz2456789", k=5)
            )
        name = meta.get("name", "")
        with self.store.cond:
            self._require_namespace(target)
            new = self.prepare(target, name, body, None, ctx)
            if self.store.get(_key(rt, target.namespace, name)) is not None:
                raise ApiError(
                    409,
                    f'{rt.resource_ref} "{name}" already exists',
                    reason="AlreadyExists",
                    details=rt.details(name),
                )
            stored = self.save(rt, new, None, ctx)
        return Response(201, stored, ctx.headers())

    def _replace(self, request: Request, target: _Target) -> Response:
        rt, name = target.rtype, target.name or ""
        body = _object_body(request, rt)
        ctx = _WriteContext.from_request(request, target)
        with self.store.cond:
            old = self.store.get(target.key)
            if old is None:
                raise _not_found(rt, name)
            _check_resource_version(rt, name, body, old, required=rt.custom)
            new = self.prepare(target, name, body, old, ctx)
            stored = self.save(rt, new, old, ctx)
        return Response(200, stored, ctx.headers())

    def _patch(self, request: Request, target: _Target) -> Response:
        rt, name, kind = target.rtype, target.name or "", request.content_type
        if kind not in (_MERGE, _JSON_PATCH, _STRATEGIC, _APPLY) or (
            kind == _STRATEGIC and rt.custom
        ):
            raise _unsupported_patch(rt)
        if kind == _APPLY:
            return self._apply(request, target)
        ctx = _WriteContext.from_request(request, target)
        patch = _decode(request, rt)
        with self.store.cond:
            old = self.store.get(target.key)
            if old is None:
                raise _not_found(rt, name)
            patched = _patched(old, patch, kind)
            _check_resource_version(rt, name, patched, old, required=False)
            new = self.prepare(target, name, patched, old, ctx)
            stored = self.save(rt, new, old, ctx)
        return Response(200, stored, ctx.headers())

    def _apply(self, request: Request, target: _Target) -> Response:
        rt, name = target.rtype, target.name or ""
        applied = _apply_configuration(request, rt)
        if rt.plural == "secrets" and not target.subresource:
            # The real server folds write-only stringData into data before merging, so the
            # applier owns data.<key> and a repeated apply is a no-op.
            causes = _secret_strategy(rt, applied)
            if causes:
                raise _invalid(rt, name, causes)
        ctx = _WriteContext.from_request(request, target, operation="Apply")
        self._check_declared(rt, applied, target, ctx)
        with self.store.cond:
            old = self.store.get(target.key)
            if old is None and target.subresource:
                raise _not_found(rt, name)
            if old is None:  # a patch that creates needs create permission too
                self._authorize(request, "create", target)
                self._require_namespace(target)
            else:
                _check_resource_version(rt, name, applied, old, required=False)
            if target.subresource:  # status: a plain merge, ownership is not tracked there
                merged = merge_patch(old or {}, applied)
            else:
                merged, owners = server_side_apply(
                    old, applied, ctx.manager, request.flag("force"), rt
                )
                ctx.apply_owners, ctx.apply_base = owners, merged
            new = self.prepare(target, name, merged, old, ctx)
            stored = self.save(rt, new, old, ctx)
        return Response(201 if old is None else 200, stored, ctx.headers())

    def _delete(self, request: Request, target: _Target) -> Response:
        rt, name = target.rtype, target.name or ""
        options = _decode(request, rt) if request.body.strip() else {}
        with self.store.cond:
            old = self.store.get(target.key)
            if old is None:
                raise _not_found(rt, name)
            _check_preconditions(rt, name, old, (options or {}).get("preconditions") or {})
            _check_dry_run(request)
            if request.query.get("dryRun"):
                return Response(200, old)
            result = self.delete(rt, old, via_api=True)
            pending = self.store.get(target.key) is not None  # finalizers still to run
        if pending or rt.custom or rt in (PODS, NAMESPACES):
            return Response(200, result)
        # built-in types without graceful deletion answer with a Status
        details = {**rt.details(name), "uid": old["metadata"].get("uid")}
        return Response(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            },
        )

    def _delete_collection(self, request: Request, target: _Target) -> Response:
        with self.store.cond:
            for obj in self._matching(request, target):
                self.delete(target.rtype, obj, via_api=True)
        return Response(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    # ---- the write pipeline, shared with the Python-side API

    def prepare(
        self, target: _Target, name: str, incoming: Obj, old: Obj | None, ctx: _WriteContext
    ) -> Obj:
        """Turn a request body into the object to store, in the API server's order:
        decode rules, structural schema (prune, default), mutating admission, validation,
        validating admission, then system metadata and field ownership."""
        rt = target.rtype
        obj = _with_identity(rt, target.namespace, name, incoming)
        obj = _status_rules(rt, obj, old, ctx.subresource)
        _check_string_maps(rt, obj)
        causes = _STRATEGIES.get(rt.plural, lambda _rt, _obj: [])(rt, obj)
        schema = self._schema(rt)
        if schema is not None:
            obj = self._structural(rt, schema, obj, ctx)
        admitting = (
            ctx.subresource is None and self.server.kserve_webhooks and rt is INFERENCE_SERVICES
        )
        if admitting:
            kserve_default(obj, self.server.kserve_version)
        causes += _metadata_causes(rt, obj["metadata"])
        if schema is not None:
            causes += _schema_causes(schema, obj)
        if causes:
            raise _invalid(rt, name, causes)
        if admitting:
            kserve_validate(obj, old, self.server.kserve_version)
        _carry_system_metadata(obj, old)
        self._record_ownership(rt, obj, old, ctx)
        return obj

    def _check_declared(
        self, rt: ResourceType, applied: Obj, target: _Target, ctx: _WriteContext
    ) -> None:
        """Server-side apply builds a typed object from the CRD schema before anything else:
        a field the schema does not declare fails that step, and the real server answers 500
        (not the prune-and-warn of create/update)."""
        schema = self._schema(rt)
        if schema is None or target.subresource:
            return
        unknown: list[str] = []
        _prune(copy.deepcopy(applied), schema.root, "", unknown)
        if unknown:
            fields = "\n".join(f".{path}: field not declared in schema" for path in unknown)
            raise ApiError(
                500,
                f"failed to create typed patch object ({rt.api_version}, Kind={rt.kind}): {fields}",
            )

    def _schema(self, rt: ResourceType) -> _CrdSchema | None:
        if not (self.server.validate_schema and rt.crd_file):
            return None
        return _crd_schema(str((self.server.crd_dir or CRD_DIR) / rt.crd_file), rt.version)

    def _structural(
        self, rt: ResourceType, schema: _CrdSchema, obj: Obj, ctx: _WriteContext
    ) -> Obj:
        unknown: list[str] = []
        obj = _prune(obj, schema.root, "", unknown)
        if unknown and ctx.field_validation == "Strict":
            listed = ", ".join(f'unknown field "{path}"' for path in unknown)
            raise ApiError(400, f"strict decoding error: {listed}")
        if ctx.field_validation != "Ignore":
            ctx.warnings += [f'unknown field "{path}"' for path in unknown]
        _apply_defaults(obj, schema.root)
        return obj

    def _record_ownership(
        self, rt: ResourceType, obj: Obj, old: Obj | None, ctx: _WriteContext
    ) -> None:
        if ctx.subresource is not None or not ctx.via_api:
            previous = ((old or {}).get("metadata") or {}).get("managedFields")
            if previous:
                obj["metadata"]["managedFields"] = copy.deepcopy(previous)
            else:
                obj["metadata"].pop("managedFields", None)
            return
        if ctx.operation == "Apply" and ctx.apply_owners is not None:
            owners = ctx.apply_owners
            mine = _owner(owners, ctx.manager, "Apply", rt)
            # what admission and defaulting changed belongs to the applier too
            mine.paths |= _changed_paths(ctx.apply_base, obj, rt)
        else:
            owners = _read_owners(old)
            _record_update(owners, ctx.manager, old, obj, rt)
        _store_owners(obj, owners, rt)

    def save(self, rt: ResourceType, new: Obj, old: Obj | None, ctx: _WriteContext) -> Obj:
        if ctx.dry_run:
            return _stamp(rt, new, old, self.store.revision)
        stored = self.store.save(rt, new, old)
        if stored is not old and ctx.via_api:
            meta = stored["metadata"]
            self.write_counts[_key(rt, meta.get("namespace"), meta["name"])] += 1
        if stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers"):
            return self.store.remove(rt, stored)  # the last finalizer is gone: finish the delete
        return stored

    def delete(self, rt: ResourceType, obj: Obj, via_api: bool) -> Obj:
        """Delete, or mark for deletion while finalizers remain (returns the marked object)."""
        meta = obj["metadata"]
        key = _key(rt, meta.get("namespace"), meta["name"])
        if via_api:
            self.write_counts[key] += 1
        if meta.get("finalizers") and rt is not NAMESPACES:
            if meta.get("deletionTimestamp"):
                return obj
            marked = copy.deepcopy(obj)
            marked["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
            return self.store.save(rt, marked, obj)
        if rt is NAMESPACES:  # the namespace controller's job, done at once
            for plural, other in RESOURCE_TYPES.items():
                if other.namespaced:
                    for item in self.store.items(plural, meta["name"]):
                        self.store.remove(other, item)
        return self.store.remove(rt, obj)


# ---- pure request helpers


def _apply_configuration(request: Request, rt: ResourceType) -> Obj:
    """The body of an apply request, after the checks the API server makes first."""
    if not request.query.get("fieldManager"):
        message = "Required value: is required for apply patch"
        cause = _cause("fieldManager", message, "FieldValueRequired")
        raise ApiError(
            422,
            f'PatchOptions.meta.k8s.io "" is invalid: fieldManager: {message}',
            details={"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]},
        )
    applied = _object_body(request, rt, yaml_ok=True)
    for key, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
        if applied.get(key) != expected:
            got = applied.get(key)
            raise ApiError(
                400, f"{key} must be {expected!r} in an apply configuration, not {got!r}"
            )
    return applied


def _page_not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def _not_found(rt: ResourceType, name: str | None) -> ApiError:
    return ApiError(404, f'{rt.resource_ref} "{name}" not found', details=rt.details(name))


def _invalid(rt: ResourceType, name: str, causes: list[Obj]) -> ApiError:
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {"name": name, "kind": rt.kind, "causes": causes}
    if rt.group:
        details["group"] = rt.group
    return ApiError(422, f'{rt.kind_ref} "{name}" is invalid: {summary}', details=details)


def _unsupported_patch(rt: ResourceType) -> ApiError:
    if rt.custom:
        return _unsupported_media([_JSON_PATCH, _MERGE, _APPLY])
    return _unsupported_media([_JSON_PATCH, _MERGE, _STRATEGIC, _APPLY])


def _unsupported_media(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def _resolve_target(types: list[ResourceType], rest: list[str]) -> _Target:
    by_plural = {rt.plural: rt for rt in types}
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in by_plural:
        rt, namespace, tail = by_plural[rest[2]], rest[1], rest[3:]
        if not rt.namespaced:
            raise _page_not_found()
    elif rest[0] in by_plural:
        rt, namespace, tail = by_plural[rest[0]], None, rest[1:]
        if rt.namespaced and tail:
            raise _page_not_found()
    else:
        raise _page_not_found()
    if len(tail) > 2 or (len(tail) == 2 and not (tail[1] == "status" and rt.status_subresource)):
        raise _page_not_found()
    name = tail[0] if tail else None
    return _Target(rt, namespace, name, tail[1] if len(tail) == 2 else None)


def _verb(request: Request, target: _Target) -> str:
    method = request.method
    if target.name is None:
        verbs = {
            "GET": "watch" if request.flag("watch") else "list",
            "POST": "create",
            "DELETE": "deletecollection",
        }
    else:
        verbs = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs or (target.subresource and verbs[method] == "delete"):
        raise ApiError(405, "the server does not allow this method on the requested resource")
    return verbs[method]


def _next_bookmark(deadline: float | None) -> float:
    """When the watch cache sends the next bookmark: in a minute, or 2 s before the end."""
    heartbeat = time.monotonic() + 60
    return heartbeat if deadline is None else min(heartbeat, deadline - 2)


def _fault_matches(fault: _Fault, request: Request) -> bool:
    method_ok = fault.method in ("*", request.method.upper())
    kind_ok = fault.watch is None or fault.watch == request.flag("watch")
    return method_ok and kind_ok and fault.path_substring in request.path


def _parse_revision(text: str) -> int:
    if not text.isdigit():
        raise ApiError(400, f'invalid resource version "{text}"')
    return int(text)


def _paginate(items: list[Obj], query: dict[str, str]) -> tuple[list[Obj], Obj]:
    """``limit``/``continue``: the token is the last returned (namespace, name), base64 JSON."""
    token = query.get("continue")
    if token:
        try:
            after = tuple(json.loads(base64.urlsafe_b64decode(token)))
        except ValueError:
            raise ApiError(410, "the provided continue parameter is too old or invalid") from None
        items = [
            i for i in items if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > after
        ]
    limit = int(query.get("limit") or 0)
    if not limit or len(items) <= limit:
        return items, {}
    last = items[limit - 1]["metadata"]
    next_token = base64.urlsafe_b64encode(
        json.dumps([last.get("namespace", ""), last["name"]]).encode()
    )
    return items[:limit], {
        "continue": next_token.decode(),
        "remainingItemCount": len(items) - limit,
    }


def _watch_view(event: _Event, target: _Target, matches: Callable[[Obj], bool]) -> Obj | None:
    """The event as this watch sees it; objects moving in or out of a selector appear as
    ADDED or DELETED, like the real watch cache."""
    if event.plural != target.rtype.plural or target.namespace not in (None, event.namespace):
        return None
    now = event.type != "DELETED" and matches(event.obj)
    before = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        kind = "DELETED" if before else None
    elif now:
        kind = "MODIFIED" if before else "ADDED"
    else:
        kind = "DELETED" if before else None
    return None if kind is None else {"type": kind, "object": event.obj}


def _patched(old: Obj, patch: Any, kind: str) -> Obj:
    if kind == _JSON_PATCH:
        try:
            result = json_patch(old, patch)
        except _PatchError as err:
            raise ApiError(
                422, f"the server rejected our request due to an error in our request: {err}"
            ) from None
    else:  # merge patch; strategic merge on core types is treated as a merge patch here
        if not isinstance(patch, dict):
            raise ApiError(400, "a merge patch must be a JSON object")
        result = merge_patch(old, patch)
    if not isinstance(result, dict):
        raise ApiError(422, "the patched document is not an object")
    return result


def _check_resource_version(
    rt: ResourceType, name: str, body: Obj, old: Obj, required: bool
) -> None:
    """Optimistic concurrency: a stale resourceVersion conflicts (409); a PUT of a custom
    resource must carry one (422)."""
    given = (body.get("metadata") or {}).get("resourceVersion")
    if not given:
        if required:
            message = "Invalid value: 0x0: must be specified for an update"
            raise _invalid(rt, name, [_cause("metadata.resourceVersion", message)])
        return
    if given != old["metadata"]["resourceVersion"]:
        raise _conflict(rt, name)


def _conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {rt.resource_ref} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details=rt.details(name),
    )


def _check_preconditions(rt: ResourceType, name: str, obj: Obj, preconditions: Obj) -> None:
    for key in ("uid", "resourceVersion"):
        wanted = preconditions.get(key)
        if wanted and wanted != obj["metadata"].get(key):
            raise _conflict(rt, name)


def _with_identity(rt: ResourceType, namespace: str | None, name: str, incoming: Obj) -> Obj:
    """A copy of the body with kind, apiVersion, name and namespace checked against the URL."""
    obj = copy.deepcopy(incoming)
    for key, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
        if obj.get(key) not in (None, "", expected):
            raise ApiError(
                400,
                f"the {key} in the data ({obj[key]}) does not match the expected {key} "
                f"({expected})",
            )
        obj[key] = expected
    meta = obj.setdefault("metadata", {})
    if meta.get("name") not in (None, "", name):
        raise ApiError(
            400,
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})",
        )
    meta["name"] = name
    if rt.namespaced:
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError(
                400,
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    return obj


def _status_rules(rt: ResourceType, obj: Obj, old: Obj | None, subresource: str | None) -> Obj:
    """``status`` is a subresource: writes to the main resource keep the stored status, and
    writes to ``/status`` keep everything else."""
    if not rt.status_subresource:
        return obj
    if subresource == "status":
        result = copy.deepcopy(old or obj)
        if obj.get("status") is None:
            result.pop("status", None)
        else:
            result["status"] = obj["status"]
        return result
    if old is not None and "status" in old:
        obj["status"] = copy.deepcopy(old["status"])
    else:
        obj.pop("status", None)
    return obj


def _carry_system_metadata(obj: Obj, old: Obj | None) -> None:
    meta = obj["metadata"]
    for key in (
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ):
        if old is not None and key in old["metadata"]:
            meta[key] = old["metadata"][key]
        else:
            meta.pop(key, None)


def _version_doc() -> Obj:
    return {
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0+kserve-predictor-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _resource_list_doc(group: str, version: str, types: list[ResourceType]) -> Obj:
    resources = []
    for rt in types:
        entry: Obj = {
            "name": rt.plural,
            "singularName": rt.kind.lower(),
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": _VERBS,
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        resources.append(entry)
        if rt.status_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


# --------------------------------------------------------------------------------------------
# HTTP


class _HttpServer(TrackingHTTPServer):
    api: _Api

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        super().__init__(address, _Handler, api)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watch streams
    # Headers and body leave in separate writes; without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every request on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=url.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            client_gone=self._peer_closed,
        )
        response = self.server.api.handle(request)
        if isinstance(response, Stream):
            self._send_stream(response.events)
        else:
            self._send_json(response)

    def _send_json(self, response: Response) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers:
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. frozen)
            self.close_connection = True

    def _send_stream(self, events: Generator[Obj, None, None]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                self._write_chunk(json.dumps(event).encode() + b"\n")
            self._write_chunk(b"")
        except AbruptClose:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            events.close()  # runs the watch's cleanup when the client went away mid-stream

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _peer_closed(self) -> bool:
        """True once the client hung up (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


# --------------------------------------------------------------------------------------------
# Callbacks run on their own thread so a slow controller never blocks a request.


class _Dispatcher:
    def __init__(self) -> None:
        self.callbacks: list[WriteCallback] = []
        self.errors: list[BaseException] = []
        self._queue: queue.Queue[tuple[str, str, str, Obj | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="k8s-api-callbacks", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="k8s-api-callbacks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def submit(self, item: tuple[str, str, str, Obj | None]) -> None:
        if self.callbacks:
            self._queue.put(item)

    def wait_idle(self, timeout: float) -> bool:
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(
                lambda: not self._queue.unfinished_tasks, timeout
            )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                for callback in list(self.callbacks):
                    try:
                        callback(*item)
                    except Exception as err:  # reported through server.callback_errors
                        _log.exception("on_write callback failed")
                        self.errors.append(err)
            finally:
                self._queue.task_done()


# --------------------------------------------------------------------------------------------
# The public server


@dataclass(frozen=True)
class Role:
    """RBAC for the server's one user: a Role bound in ``namespace``, plus the rules of a
    ClusterRole bound cluster-wide (ClusterRoleBinding), which hold in every namespace and at
    the cluster scope."""

    namespace: str
    rules: tuple[tuple[frozenset[str], frozenset[str], frozenset[str]], ...]
    """(apiGroups, resources, verbs) per rule; "*" matches anything."""
    cluster_rules: tuple[tuple[frozenset[str], frozenset[str], frozenset[str]], ...] = ()

    @classmethod
    def from_manifest(cls, role: Obj, cluster_role: Obj | None = None) -> Role:
        return cls(
            role["metadata"]["namespace"],
            _rules(role),
            _rules(cluster_role) if cluster_role else (),
        )

    def allows(self, group: str, resource: str, verb: str, namespace: str | None = None) -> bool:
        """Granted in ``namespace`` (None: at the cluster scope)?"""
        rules = self.cluster_rules + (self.rules if namespace == self.namespace else ())
        return any(
            (group in groups or "*" in groups)
            and (resource in resources or "*" in resources)
            and (verb in verbs or "*" in verbs)
            for groups, resources, verbs in rules
        )

    def grants(self) -> set[tuple[str, str, str]]:
        """Every (group, resource, verb) the rules name."""
        return {
            (g, r, v) for groups, resources, verbs in self.rules + self.cluster_rules
            for g in groups for r in resources for v in verbs
        }  # fmt: skip


def _rules(role: Obj) -> tuple[tuple[frozenset[str], frozenset[str], frozenset[str]], ...]:
    return tuple(
        (
            frozenset(rule.get("apiGroups") or []),
            frozenset(rule.get("resources") or []),
            frozenset(rule.get("verbs") or []),
        )
        for rule in role.get("rules") or []
    )


class KubeApiServer:
    """A Kubernetes API server for tests, on 127.0.0.1, with KServe's CRDs and webhooks.

    Args:
        serving_runtime_api: serve ``serving.kserve.io/v1alpha1`` (ServingRuntimes); the product
            probes discovery for it.
        inference_service_api: serve ``serving.kserve.io/v1beta1`` (False: KServe not installed).
        validate_schema: prune/default/validate custom resources against the CRD files (skipped
            anyway for a CRD file that is absent; see ``crd_available()``).
        kserve_webhooks: apply KServe's InferenceService defaulter and validator rules.
        namespaces: namespaces that exist from the start.
        history_size: events kept for watch resumption; older resourceVersions get 410.
        user: the user named in 403 Forbidden messages.
        token: when set, requests need ``Authorization: Bearer <token>`` (else 401).
        host, port: where to listen (port 0: any free port).
        role: an RBAC Role (e.g. deploy/rbac.yaml's) bound to the user: requests it does not
            grant, and any outside its namespace, answer 403 as RBAC does.
        crd_dir: where the CRD files are (default ../shared/kserve/crd): an older or edited
            CRD stands for another installed KServe version.

    Steering and inspection from tests (all thread-safe; objects returned are copies):
        ``fail_next``, ``forbidden``, ``drop_watches``, ``on_write``, ``wait_for_callbacks``,
        ``update_status``, ``put_object``, ``delete_object``, ``get_object``, ``list_objects``,
        ``write_count``, ``requests``, ``active_watches``, ``resource_version``.
    """

    def __init__(
        self,
        *,
        serving_runtime_api: bool = True,
        inference_service_api: bool = True,
        validate_schema: bool = True,
        kserve_webhooks: bool = True,
        namespaces: Iterable[str] = ("default",),
        history_size: int = 1000,
        user: str = "system:serviceaccount:default:default",
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        role: Role | None = None,
        crd_dir: str | Path | None = None,
    ) -> None:
        self.crd_dir = Path(crd_dir) if crd_dir else None  # None: CRD_DIR, read at each use
        self.serving_runtime_api = serving_runtime_api
        self.inference_service_api = inference_service_api
        self.validate_schema = validate_schema
        self.kserve_webhooks = kserve_webhooks
        self.kserve_version = (0, 20)
        """The KServe release whose webhooks admit InferenceServices, where releases differ
        (the deployment mode's names); the controller simulation has its own."""
        self.user = user
        self.token = token
        # (verb, resource) pairs answered with 403, e.g. ("get", "inferenceservices") or
        # ("patch", "inferenceservices/status"); "*" matches any verb or resource. A third item
        # limits the rule to one namespace, or with "" to the cluster scope, as RBAC grants
        # differ: ("list", "inferenceservices", "") refuses only the cluster-wide list.
        self.forbidden: set[tuple[str, ...]] = set()
        # A Role bound to the user in one namespace (RBAC): everything else is forbidden.
        self.role: Role | None = role
        self._address = (host, port)
        self._dispatcher = _Dispatcher()
        self._api = _Api(self, history_size)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        for namespace in namespaces:
            self.add_namespace(namespace)

    # ---- lifecycle

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL."""
        if self._httpd is not None:
            return self.url
        self._api.stopping = False
        self._httpd = _HttpServer(self._address, self._api)
        self._thread = serve_in_thread(self._httpd, "k8s-api")
        self._dispatcher.start()
        return self.url

    def stop(self) -> None:
        """Stop serving: ends watch streams, closes connections, stops callbacks."""
        if self._httpd is None:
            return
        with self._api.store.cond:
            self._api.stopping = True
            self._api.store.cond.notify_all()
        shut_down(self._httpd, self._thread)
        self._dispatcher.stop()
        self._httpd = None

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return base_url(self._httpd)

    def client_configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointed at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        if self.token:
            # v36 looks the prefix up under "BearerToken" only; "authorization" would send the
            # bare token.
            configuration.api_key = {"BearerToken": self.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return configuration

    def kubeconfig(self, namespace: str = "default") -> Obj:
        """A kubeconfig document for code that loads one (``config.load_kube_config``)."""
        user: Obj = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": user}],
            "contexts": [
                {
                    "name": "test",
                    "context": {"cluster": "test", "user": "test", "namespace": namespace},
                }
            ],
            "current-context": "test",
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace)))
        return path

    # ---- fault injection

    def fail_next(
        self,
        method: str,
        path_substring: str,
        status: int,
        times: int = 1,
        *,
        message: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
        watch: bool | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose method matches (``"*"``: any) and whose path
        contains ``path_substring`` with ``status`` and a Status body.

        ``retry_after`` adds a Retry-After header; note urllib3 (under the kubernetes client)
        then silently retries GET/PUT/DELETE answered 429/503, up to 3 times. ``watch``: only
        watch requests (True) or only the others (False).
        """
        fault = _Fault(
            method.upper(), path_substring, status, times, message, reason, retry_after, watch
        )
        with self._api.store.cond:
            self._api.faults.append(fault)

    def drop_watches(self, abrupt: bool = False) -> int:
        """End every open watch stream; returns how many were open.

        Clean (default): the chunked stream ends, and ``kubernetes.watch.Watch`` reconnects from
        its last resourceVersion. Abrupt: the connection is cut mid-stream, so the client raises
        (urllib3 ProtocolError) instead.
        """
        with self._api.store.cond:
            self._api.watch_epoch += 1
            self._api.abrupt_drop = abrupt
            self._api.store.cond.notify_all()
            return self._api.active_watches

    def freeze(self) -> None:
        """Hang: from now on requests are read and never answered, and open watches send
        nothing and ignore their timeouts; connections stay open (no error, no close)."""
        with self._api.store.cond:
            self._api.frozen = True
            self._api.store.cond.notify_all()

    def thaw(self) -> None:
        with self._api.store.cond:
            self._api.frozen = False
            self._api.store.cond.notify_all()

    def used_access(self, user_agent_prefix: str = "") -> set[tuple[str, str, str]]:
        """(API group, resource, verb) of every request whose User-Agent starts so."""
        return {
            access
            for r in self.requests
            if r.user_agent.startswith(user_agent_prefix)
            for access in r.access
        }

    @property
    def active_watches(self) -> int:
        return self._api.active_watches

    def wait_for_watches(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` watch streams are open."""
        with self._api.store.cond:
            return self._api.store.cond.wait_for(lambda: self._api.active_watches >= count, timeout)

    # ---- controller hooks

    def on_write(self, callback: WriteCallback) -> None:
        """Call ``callback(plural, namespace, name, obj)`` after each change of a namespaced
        object (``obj`` is None when it was deleted), on a background thread, in order."""
        self._dispatcher.callbacks.append(callback)

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued callback (and what they triggered) has run."""
        return self._dispatcher.wait_idle(timeout)

    @property
    def callback_errors(self) -> list[BaseException]:
        return list(self._dispatcher.errors)

    def _on_event(self, event: _Event) -> None:
        if event.namespace:
            obj = None if event.type == "DELETED" else copy.deepcopy(event.obj)
            self._dispatcher.submit(
                (event.plural, event.namespace, event.obj["metadata"]["name"], obj)
            )

    def update_status(self, plural: str, namespace: str | None, name: str, status: Obj) -> Obj:
        """Replace an object's status as a controller does (validated against the CRD).

        A status equal to the stored one changes nothing (no new resourceVersion, no event).
        Raises LookupError when the object is absent, ApiError when the status is invalid.
        """
        rt = _resource_type(plural)
        target = _Target(rt, namespace, name, "status" if rt.status_subresource else None)
        ctx = _WriteContext(
            manager="kserve-controller", subresource=target.subresource, via_api=False
        )
        with self._api.store.cond:
            old = self._api.store.get(target.key)
            if old is None:
                raise LookupError(f"{plural} {namespace}/{name} does not exist")
            new = self._api.prepare(
                target, name, {**old, "status": copy.deepcopy(status)}, old, ctx
            )
            return copy.deepcopy(self._api.save(rt, new, old, ctx))

    # ---- direct access to the stored objects

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> Obj:
        obj = {"metadata": {"name": name, "labels": dict(labels or {})}}
        return self.put_object("namespaces", obj)

    def put_object(self, plural: str, obj: Obj) -> Obj:
        """Store obj as is (no admission or schema validation), creating or replacing it."""
        rt = _resource_type(plural)
        meta = obj.get("metadata") or {}
        if rt.namespaced and not meta.get("namespace"):
            raise ValueError(f"{plural} are namespaced: set metadata.namespace")
        target = _Target(rt, meta.get("namespace"), meta.get("name"), None)
        body = _with_identity(rt, target.namespace, meta.get("name", ""), obj)
        _STRATEGIES.get(rt.plural, lambda _rt, _obj: [])(rt, body)
        with self._api.store.cond:
            old = self._api.store.get(target.key)
            _carry_system_metadata(body, old)
            return copy.deepcopy(self._api.store.save(rt, body, old))

    def delete_object(self, plural: str, namespace: str | None, name: str) -> bool:
        """Delete at once, ignoring finalizers; False when it did not exist."""
        rt = _resource_type(plural)
        with self._api.store.cond:
            old = self._api.store.get(_key(rt, namespace, name))
            if old is None:
                return False
            self._api.store.remove(rt, old)
            return True

    def get_object(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        with self._api.store.cond:
            obj = self._api.store.get(_key(_resource_type(plural), namespace, name))
            return copy.deepcopy(obj)

    def list_objects(self, plural: str, namespace: str | None = None) -> list[Obj]:
        with self._api.store.cond:
            return copy.deepcopy(self._api.store.items(_resource_type(plural).plural, namespace))

    def write_count(self, plural: str, namespace: str | None, name: str) -> int:
        """How many API requests changed this object (no-op writes and update_status excluded)."""
        return self._api.write_counts[_key(_resource_type(plural), namespace, name)]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._api.store.cond:
            return list(self._api.records)

    @property
    def resource_version(self) -> int:
        return self._api.store.revision
