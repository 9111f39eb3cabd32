"""Application names and FuseML labels.

The application name is also the InferenceService name, so it follows KServe's rule
``^[a-z]([-a-z0-9]*[a-z0-9])?$``, and the host names KServe builds from it must fit DNS's
63-character label limit. KServe renders its domain template ``{{ .Name }}-{{ .Namespace }}``
with the predictor's name ``<name>-predictor``, so in Standard (RawDeployment) mode the label is
``<name>-predictor-<namespace>``; in Knative (Serverless) mode the Knative service
``<name>-predictor`` must fit. The mode is a cluster setting the step cannot read, so the
stricter Standard rule is checked once the namespace is known (``check_host_names``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from kserve_predictor.errors import UsageError

APP_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL = 63
PREDICTOR_SUFFIX = "-predictor"
MAX_APP_NAME = DNS_LABEL - len(PREDICTOR_SUFFIX)
"""The longest name in any namespace: Knative's ``<name>-predictor`` service."""
MANAGED_BY = "kserve-predictor"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def max_app_name(namespace: str) -> int:
    """The longest name whose Standard-mode host label ``<name>-predictor-<namespace>`` fits."""
    return min(MAX_APP_NAME, DNS_LABEL - len(PREDICTOR_SUFFIX) - 1 - len(namespace))


def check_app_name(name: str, source: str = "app name") -> str:
    """An explicit application name: valid as is, or a usage error saying what to change."""
    if not name:
        raise UsageError(f"the {source} is empty; give a name like my-model")
    if len(name) > MAX_APP_NAME:
        raise UsageError(
            f"{source} {name!r} is {len(name)} characters; KServe's generated host names need "
            f"{MAX_APP_NAME} or fewer"
        )
    if not APP_NAME.match(name):
        raise UsageError(
            f"{source} {name!r} is not a valid InferenceService name; use lowercase letters, digits "
            "and '-', starting with a letter and ending with a letter or digit"
        )
    return name


def check_host_names(name: str, namespace: str) -> str:
    """The name, if the host name KServe builds from it in this namespace fits a DNS label."""
    host = f"{name}{PREDICTOR_SUFFIX}-{namespace}"
    limit = max_app_name(namespace)
    if len(host) > DNS_LABEL:
        raise UsageError(
            f"app name {name!r} in namespace {namespace!r} gives KServe the host name {host!r}, "
            f"{len(host)} characters (DNS allows {DNS_LABEL}); use an app name of {limit} or "
            "fewer characters, or a shorter namespace"
        )
    return name


def sanitize(text: str, limit: int = MAX_APP_NAME) -> str:
    """Turn free text into a valid name; overlong names keep a hash of the whole for uniqueness."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = "app-" + name
    if len(name) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:6]
        name = name[: limit - 7].rstrip("-") + "-" + digest
    return name.strip("-")


@dataclass(frozen=True)
class Origin:
    """Where a deployment comes from, for FuseML's labels: project, codeset and workflow."""

    workflow: str = ""
    project: str = ""
    codeset: str = ""

    @classmethod
    def from_codeset_dir(cls, workdir: Path, workflow: str) -> Origin:
        """FuseML writes the codeset's project and name into .fuseml/_org and .fuseml/_project."""

        def read(name: str) -> str:
            path = workdir / ".fuseml" / name
            return path.read_text().strip() if path.is_file() else ""

        return cls(workflow=workflow, project=read("_org"), codeset=read("_project"))

    def default_app_name(self, namespace: str = "default") -> tuple[str, bool]:
        """FuseML's default name, short enough for KServe's host names in ``namespace``, and
        whether it is stable across runs.

        ``<project>-<codeset>-<workflow>`` with a codeset; otherwise ``<workflow>-<random>``, which
        makes a new service on every run.
        """
        limit = max(max_app_name(namespace), 16)  # a hopeless namespace fails the deploy's check
        if self.project and self.codeset:
            full = f"{self.project}-{self.codeset}-{self.workflow or 'predictor'}"
            return sanitize(full, limit), True
        base = sanitize(self.workflow or "predictor", limit - 7)
        return f"{base}-{secrets.token_hex(3)}", False

    def labels(self, app_name: str) -> dict[str, str]:
        labels = {
            "fuseml/app-name": app_name,
            "fuseml/org": self.project,
            "fuseml/workflow": self.workflow,
            "fuseml/app-guid": f"{self.project}.{self.codeset}.{self.workflow}"
            if self.project or self.codeset
            else "",
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
        return {k: label_value(v) for k, v in labels.items() if label_value(v)}


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 characters of [A-Za-z0-9-_.], alphanumeric ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")
    return value if _LABEL_VALUE.match(value) else ""


def name_from_url(url: str) -> str:
    """A readable default model name: the registered name, else the model folder's name."""
    parts = [
        p for p in url.replace("models:/", "").split("@")[0].replace("\\", "/").split("/") if p
    ]
    if url.startswith("models:/") and parts:
        return sanitize(parts[0])
    parts = [
        p
        for p in parts
        if p not in ("artifacts", "model", "file:", "s3:") and not p.startswith("m-")
    ]
    return sanitize(parts[-1]) if parts else "model"


def deploy_name(given: str | None, origin: Origin, namespace: str | None) -> tuple[str, bool]:
    """``deploy``'s application name and whether it is stable: --app-name, else the codeset's
    name in a FuseML codeset; required outside one."""
    if given is not None:
        return check_app_name(given.strip(), "--app-name"), True
    if origin.project and origin.codeset:
        # Without --namespace the kubeconfig context decides it later: "" fits the name to the
        # longest namespace-free host, as the step does; deploy checks the host names then.
        return origin.default_app_name(namespace or "")
    raise UsageError("--app-name is required outside a FuseML codeset; e.g. --app-name iris")
