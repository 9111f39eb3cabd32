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

The package is split the way kube-apiserver is (imports only run down this list):

- ``server``: ``KubeApiServer``, what tests start, steer and inspect;
- ``http``: the entry point (authentication, injected faults, routing, Status errors, request
  records) and the HTTP handler; ``discovery``: the discovery documents;
- ``handlers``: one method per verb; ``rbac``: authorization (``Role``); ``watch``: watch streams;
- ``registry``: the write pipeline (identity, status subresource, decoding, schema, admission,
  validation, ownership, finalizers); ``admission``: KServe's webhooks; ``field_manager``:
  managedFields and server-side apply; ``validation``: metadata rules and type strategies;
- ``request``: requests and responses as the API sees them; ``storage``: objects,
  resourceVersion and event history; ``selectors``; ``patch``: merge and JSON patch;
  ``schema``: the CRDs' structural schemas;
- ``errors``: Status bodies; ``resources``: the served types and small JSON helpers.
"""

from __future__ import annotations

from .admission import kserve_default, kserve_validate
from .errors import ApiError, status_body
from .field_manager import server_side_apply
from .patch import json_patch, merge_patch
from .rbac import Role
from .request import Request, RequestRecord, Response, Stream
from .resources import (
    CLUSTER_SERVING_RUNTIMES,
    INFERENCE_SERVICES,
    KSERVE_GROUP,
    NAMESPACES,
    PODS,
    RESOURCE_TYPES,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVING_RUNTIMES,
    FieldPath,
    Obj,
    ResourceType,
)
from .schema import CRD_DIR, CRD_PATH, crd_available, validate_against_crd
from .selectors import parse_field_selector, parse_label_selector
from .server import KubeApiServer, WriteCallback
from .watch import AbruptClose

__all__ = [
    "CLUSTER_SERVING_RUNTIMES",
    "CRD_DIR",
    "CRD_PATH",
    "INFERENCE_SERVICES",
    "KSERVE_GROUP",
    "NAMESPACES",
    "PODS",
    "RESOURCE_TYPES",
    "SECRETS",
    "SERVICE_ACCOUNTS",
    "SERVING_RUNTIMES",
    "AbruptClose",
    "ApiError",
    "FieldPath",
    "KubeApiServer",
    "Obj",
    "Request",
    "RequestRecord",
    "ResourceType",
    "Response",
    "Role",
    "Stream",
    "WriteCallback",
    "crd_available",
    "json_patch",
    "kserve_default",
    "kserve_validate",
    "merge_patch",
    "parse_field_selector",
    "parse_label_selector",
    "server_side_apply",
    "status_body",
    "validate_against_crd",
]
