"""The CRDs' structural schemas: load, prune unknown fields, apply defaults, validate (422)."""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import _cause
from .resources import _YAML_LOADER, Obj, ResourceType, _join, _json_type, _resource_type

# The KServe CRDs are shared data next to the repository (see ../shared/kserve/SOURCE.md);
# KSERVE_CRD_DIR points elsewhere when the checkout lives somewhere else.
CRD_DIR = Path(
    os.environ.get("KSERVE_CRD_DIR", Path(__file__).resolve().parents[4] / "shared/kserve/crd")
)
CRD_PATH = CRD_DIR / "serving.kserve.io_inferenceservices.yaml"


def crd_available() -> bool:
    """True when the InferenceService CRD file is present, so schema validation is active."""
    return CRD_PATH.is_file()


# --------------------------------------------------------------------------------------------
# CRD structural schema: pruning, defaults, validation


@dataclass(frozen=True)
class _CrdSchema:
    root: Obj  # the openAPIV3Schema, with the root metadata kept as ObjectMeta is
    validator: Any  # jsonschema.Draft7Validator


def _schema_for(rt: ResourceType, crd_dir: Path | None = None) -> _CrdSchema | None:
    """rt's CRD schema from crd_dir (None: ``CRD_DIR``, read at each use); None without one."""
    if not rt.crd_file:
        return None
    return _crd_schema(str((crd_dir or CRD_DIR) / rt.crd_file), rt.version)


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
    schema = _schema_for(_resource_type(plural))
    if schema is None:
        return []
    pruned = _prune(obj, schema.root, "", [])
    _apply_defaults(pruned, schema.root)
    return _schema_causes(schema, pruned)
