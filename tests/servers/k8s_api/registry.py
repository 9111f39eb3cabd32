"""The write pipeline every create, update, patch and delete goes through: decode rules,
structural schema, admission, validation, system metadata, field ownership, storage and
finalizers."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .admission import kserve_default, kserve_validate
from .errors import ApiError, _cause, _invalid, _not_found
from .field_manager import (
    _changed_paths,
    _Owner,
    _owner,
    _read_owners,
    _record_update,
    _store_owners,
)
from .request import Request, _check_dry_run, _manager_from, _Target
from .resources import INFERENCE_SERVICES, NAMESPACES, RESOURCE_TYPES, Obj, ResourceType, _now
from .schema import _apply_defaults, _CrdSchema, _prune, _schema_causes, _schema_for
from .storage import _Key, _key, _stamp, _Store
from .validation import _STRATEGIES, _check_string_maps, _metadata_causes


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


class _Registry:
    """The write pipeline, shared by the verbs and the Python-side API (``KubeApiServer``)."""

    server: Any  # the KubeApiServer (server.py): its switches are read at each write
    store: _Store
    write_counts: Counter[_Key]

    def _require_namespace(self, target: _Target) -> None:
        if (
            target.rtype.namespaced
            and self.store.get(_key(NAMESPACES, None, target.namespace or "")) is None
        ):
            raise _not_found(NAMESPACES, target.namespace)

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
        if not self.server.validate_schema:
            return None
        return _schema_for(rt, self.server.crd_dir)

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
