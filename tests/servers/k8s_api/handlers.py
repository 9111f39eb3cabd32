"""The verbs: get, list, watch, create, update (PUT), patch (merge, JSON, strategic, apply),
delete and deletecollection, from a decoded request to a response."""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable
from typing import Any

import yaml

from .errors import ApiError, _cause, _invalid, _not_found
from .field_manager import server_side_apply
from .patch import _PatchError, json_patch, merge_patch
from .rbac import _Authorizer
from .registry import _check_preconditions, _check_resource_version, _Registry, _WriteContext
from .request import Request, Response, Stream, _check_dry_run, _Target
from .resources import _YAML_LOADER, NAMESPACES, PODS, Obj, ResourceType, _json_type, _without
from .selectors import parse_field_selector, parse_label_selector
from .storage import _key
from .validation import _decode_error, _secret_strategy
from .watch import _parse_revision, _Watches

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


class _Handlers(_Registry, _Watches, _Authorizer):
    """One method per verb; routing picks it."""

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

    # ---- writes

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
