"""Pod placement options in Kubernetes' own grammar (ValidateTolerations, label rules), so a
bad node selector or toleration fails when it is given, not when the pod is created."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from kserve_predictor.errors import UsageError

TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")


def structured(text: str, where: str, example: str) -> Any:
    """A YAML (or JSON, which YAML reads) value; a one-line error naming ``where`` otherwise."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise UsageError(f"{where} is not YAML or JSON; use e.g. {example}") from None


# Kubernetes' qualified name (label and taint keys) and label value grammars.
_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED = re.compile(
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$"
)
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")


def _qualified(key: str) -> bool:
    """IsQualifiedName: an optional DNS-subdomain prefix (<= 253) and a name of <= 63."""
    prefix, _, name = key.rpartition("/")
    return bool(_QUALIFIED.match(key)) and len(name) <= 63 and len(prefix) <= 253


def node_selector(text: str, where: str) -> dict[str, str]:
    example = "'{nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB}'"
    given = structured(text, where, example)
    if not isinstance(given, dict) or not given:
        raise UsageError(f"{where} is not a mapping of node labels; use e.g. {example}")
    selector: dict[str, str] = {}
    for key, value in given.items():
        value_text = "" if value is None else str(value)
        if (
            isinstance(value, (dict, list))
            or not _qualified(str(key))
            or not (len(value_text) <= 63 and _LABEL_VALUE.match(value_text))
        ):
            raise UsageError(
                f"{where}: {key}={json.dumps(value)} is not a node label (a qualified name and a "
                f"label value of at most 63 characters); use e.g. {example}"
            )
        selector[str(key)] = value_text
    return selector


def tolerations(text: str, where: str) -> list[dict[str, Any]]:
    example = "'[{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]'"
    given = structured(text, where, example)
    if isinstance(given, dict):
        given = [given]
    if not isinstance(given, list) or not given:
        raise UsageError(f"{where} is not a list of tolerations; use e.g. {example}")
    return [_toleration(item, f"{where}[{i}]") for i, item in enumerate(given)]


def _toleration(item: Any, where: str) -> dict[str, Any]:
    """Kubernetes' ValidateTolerations rules, so a bad one fails here, not at pod creation."""
    if not isinstance(item, dict):
        raise UsageError(f"{where} is not a toleration mapping (key, operator, value, effect)")
    unknown = sorted(set(map(str, item)) - set(TOLERATION_KEYS))
    if unknown:
        raise UsageError(
            f"{where}: {', '.join(unknown)} is not a toleration field; use {', '.join(TOLERATION_KEYS)}"
        )
    key, operator = str(item.get("key") or ""), str(item.get("operator") or "")
    value, effect = item.get("value"), str(item.get("effect") or "")
    if key and not _qualified(key):
        raise UsageError(f"{where}: key {key!r} is not a qualified name; use e.g. nvidia.com/gpu")
    if operator and operator not in TOLERATION_OPERATORS:
        raise UsageError(f"{where}: operator {operator!r} is not one of Equal, Exists")
    if not key and operator != "Exists":
        raise UsageError(
            f"{where}: operator must be Exists when key is empty (it matches every taint)"
        )
    if operator == "Exists" and value not in (None, ""):
        raise UsageError(f"{where}: value must be empty when operator is Exists")
    value_text = "" if value is None else str(value)
    if operator != "Exists" and not (len(value_text) <= 63 and _LABEL_VALUE.match(value_text)):
        raise UsageError(f"{where}: value {value_text!r} is not a label value")
    if effect and effect not in TAINT_EFFECTS:
        raise UsageError(f"{where}: effect {effect!r} is not one of {', '.join(TAINT_EFFECTS)}")
    seconds = item.get("tolerationSeconds")
    if seconds is not None:
        if effect != "NoExecute":
            raise UsageError(f"{where}: effect must be NoExecute when tolerationSeconds is set")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise UsageError(f"{where}: tolerationSeconds {seconds!r} is not a whole number")
    toleration: dict[str, Any] = {
        k: item[k] for k in TOLERATION_KEYS if item.get(k) not in (None, "")
    }
    if "value" in toleration:
        toleration["value"] = value_text
    return toleration
