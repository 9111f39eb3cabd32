"""Discovery documents: ``/version``, ``/api``, ``/apis``, ``/apis/<group>[/<version>]``."""

from __future__ import annotations

from .errors import _page_not_found
from .request import Request
from .resources import _VERBS, Obj, ResourceType, _without


class _Discovery:
    """The API's discovery documents for the groups and versions it serves."""

    served: dict[tuple[str, str], list[ResourceType]]

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
