"""The settings table: every setting once, with its group, default, reader and its three
spellings — the CLI flag, the FuseML step's variable and the MLflow deployments config key — and
the one parser that reads any of them (as settings/serving.py reads the serving options).

A flag is parsed by argparse, whose definition takes the flag's name and default from here; a
variable or a config key is text, read by the setting's reader, which names the spelling the
user wrote in its one-line error. Empty text is unset: the default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kserve_predictor.errors import UsageError

FLAG, ENV, KEY = "flag", "env", "key"
"""The three spellings: ``--timeout``, ``FUSEML_TIMEOUT``, ``-C timeout=...``."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """A boolean value; anything unrecognized is a usage error naming where it was given."""
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return default if text == "" else False
    raise UsageError(f"{name}={value!r} is not a boolean; use true or false")


def positive_number(name: str, text: str, unit: str = "") -> float:
    """A positive number from a flag or variable; anything else is a usage error naming it."""
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise UsageError(
            f"{name}={text!r} is not a positive number" + (f" of {unit}" if unit else "")
        )
    return value


Reader = Callable[[str, str, Any], Any]
"""(text as given, where it was given, the default) -> the value."""


def text(value: str, where: str, default: Any) -> Any:
    return value.strip() or default


def boolean(value: str, where: str, default: Any) -> bool:
    return parse_bool(where, value, default)


def seconds(value: str, where: str, default: Any) -> float:
    return positive_number(where, value.strip(), "seconds")


def positive(value: str, where: str, default: Any) -> float:
    return positive_number(where, value.strip())


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the settings field, the argparse dest), its group and default,
    how its text is read, and how each interface spells it (None: not settable there)."""

    name: str
    group: str
    default: Any = None
    read: Reader = text
    flag: str | None = None
    env: str | None = None
    key: str | None = None
    flag_from_env: bool = False
    """The flag's default is the variable's value (the step's variables reach the CLI too)."""

    def spelled(self, source: str) -> str:
        if source == KEY:
            return f"config key {self.key}"
        spelling = self.flag if source == FLAG else self.env
        assert spelling is not None, f"{self.name} has no {source} spelling"
        return spelling


# fmt: off  (a table reads best one row per line)
TABLE: tuple[Setting, ...] = (
    # group model: what is deployed and what serves it
    Setting("model_url", "model", "", flag="--model", env="FUSEML_MODEL"),
    Setting(
        "predictor", "model", "auto", flag="--predictor", env="FUSEML_PREDICTOR", key="predictor"
    ),
    Setting(
        "runtime_version",
        "model",
        None,
        flag="--runtime-version",
        env="FUSEML_RUNTIME_VERSION",
        key="runtime_version",
    ),
    Setting(
        "runtime_libraries",
        "model",
        None,
        flag="--runtime-libraries",
        env="FUSEML_RUNTIME_LIBRARIES",
        key="runtime_libraries",
        flag_from_env=True,
    ),
    Setting(
        "allow_incompatible",
        "model",
        False,
        boolean,
        "--allow-incompatible",
        "FUSEML_ALLOW_INCOMPATIBLE",
        "allow_incompatible",
    ),
    # group deploy: the deployment itself
    Setting("app_name", "deploy", "", flag="--app-name", env="FUSEML_APP_NAME"),
    Setting(
        "resources_limits",
        "deploy",
        None,
        flag="--resources-limits",
        env="FUSEML_RESOURCES_LIMITS",
        key="resources_limits",
    ),
    Setting("timeout", "deploy", 600.0, seconds, "--timeout", "FUSEML_TIMEOUT", "timeout"),
    Setting("force", "deploy", False, boolean, "--force", "FUSEML_FORCE", "force"),
    Setting("smoke_test", "deploy", True, boolean, "--no-smoke-test", "FUSEML_SMOKE_TEST"),
    Setting("spec_style", "deploy", "auto", flag="--spec-style"),
    # group cluster: where, and how to reach the Kubernetes API
    Setting(
        "namespace",
        "cluster",
        None,
        flag="--namespace",
        env="FUSEML_ENV_WORKFLOW_NAMESPACE",
        key="namespace",
        flag_from_env=True,
    ),
    Setting("kubeconfig", "cluster", None, flag="--kubeconfig", env="KUBECONFIG"),
    Setting("context", "cluster", None, flag="--context"),
    Setting("k8s_verify_tls", "cluster", True, boolean, env="KSERVE_PREDICTOR_K8S_VERIFY_TLS"),
    Setting("retry_seconds", "cluster", 60.0, positive, env="KSERVE_PREDICTOR_RETRY_SECONDS"),
    # group fuseml: the FuseML server the service is registered with
    Setting(
        "fuseml_url", "fuseml", "", flag="--fuseml-url", env="FUSEML_SERVER_URL", flag_from_env=True
    ),
    Setting("fuseml_verify_tls", "fuseml", True, boolean, env="KSERVE_PREDICTOR_FUSEML_VERIFY_TLS"),
    Setting(
        "workflow",
        "fuseml",
        "",
        flag="--workflow",
        env="FUSEML_ENV_WORKFLOW_NAME",
        flag_from_env=True,
    ),
    # group local: the managed local model server (run-local's config keys)
    Setting("host", "local", "127.0.0.1", flag="--host", key="host"),
    Setting("port", "local", None, flag="--port", key="port"),
    Setting("workers", "local", None, flag="--workers"),
    # group s3: the artifact store, read by S3Settings.from_env (MLflow's own variable names)
    Setting("s3_verify_tls", "s3", True, boolean, env="KSERVE_PREDICTOR_S3_VERIFY_TLS"),
)
# fmt: on
BY_NAME: dict[str, Setting] = {s.name: s for s in TABLE}


def default(name: str) -> Any:
    """The setting's default: written once, in the table."""
    return BY_NAME[name].default


def flag_default(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The default argparse gives the flag: the variable's value for the flags the step's
    variables reach, else the setting's default."""
    setting = BY_NAME[name]
    env = os.environ if env is None else env
    if setting.flag_from_env and setting.env:
        return env.get(setting.env) or setting.default
    return setting.default


def parse(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The settings given in one spelling, by name, every one not given at its default.

    ``FLAG``: argparse's values, already typed and checked (None: not given). ``ENV`` and
    ``KEY``: text (None or blank: not given), read by each setting's reader, whose error names
    the variable or config key.
    """
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        setting = BY_NAME[name]
        if value is None or (source != FLAG and not str(value).strip()):
            parsed[name] = setting.default
        elif source == FLAG:
            parsed[name] = value
        else:
            parsed[name] = setting.read(str(value), setting.spelled(source), setting.default)
    return parsed


def from_env(names: Iterable[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The named settings from their variables."""
    env = os.environ if env is None else env
    return parse({n: env.get(BY_NAME[n].env or "") for n in names}, ENV)


def config_text(value: Any) -> str | None:
    """A config value as text: the MLflow CLI passes strings, its Python API may pass numbers
    or booleans, which read the same."""
    if value is None:
        return None
    text = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    return text or None


def from_config(names: Iterable[str], config: Mapping[str, Any]) -> dict[str, Any]:
    """The named settings from MLflow deployments config keys."""
    return parse({n: config_text(config.get(BY_NAME[n].key or "")) for n in names}, KEY)


def from_flags(names: Iterable[str], args: Any) -> dict[str, Any]:
    """The named settings from argparse's namespace (its dests are the settings' names)."""
    return parse({n: getattr(args, n, None) for n in names}, FLAG)
