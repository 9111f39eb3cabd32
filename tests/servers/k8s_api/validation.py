"""The API server's own rules for every object: metadata validation (422), decoding rules
(400), and the type-specific strategies (Secret, Namespace, Pod)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError, _cause
from .resources import NAMESPACES, Obj, ResourceType, _json_type

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
