"""Authorization: RBAC Roles bound to the server's one user, and the rules tests forbid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .request import Request, _Target
from .resources import Obj


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


class _Authorizer:
    """Authorizes each request as (API group, resource, verb) and records the check."""

    server: Any  # the KubeApiServer (server.py): its forbidden rules, role and user

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
