"""A simulation of the KServe controller, driving InferenceServices in the Kubernetes API test
server the way KServe does (DESIGN.md §3), including its unkind parts.

On every change of an InferenceService's spec, labels or annotations (KServe reconciles on any
change; labels and annotations reach the pod template without a new metadata.generation) that
changes its child — the Knative Service in Knative mode, the Deployment in Standard mode — it:
0. first writes the child's status from *before* the change (KServe's first reconcile copies
   it: reconcilers/knative/ksvc_reconciler.go returns the existing Service's status after its
   Update; reconcilers/deployment/deployment_reconciler.go "Use existingDep"), kept for
   ``stale_seconds``: Ready=True about the previous revision, if it was;
1. records ``observedGeneration`` from the child's own counter (PropagateStatus /
   PropagateRawStatus), which a ``drift`` switch moves ahead or behind as a KServe upgrade or an
   HPA does, with Ready=Unknown (InProgress) — in Standard mode, while an older ReplicaSet's
   pod serves, Ready=True on v0.14/v0.15 and v0.20+ (``kserve_version``), Unknown on v0.16 to v0.19;
2. selects the ServingRuntime from KServe's real runtime definitions in ../shared/kserve/runtimes
   (modelFormat + protocolVersion, autoSelect, priority), or fails with NoSupportingRuntime;
3. runs the "storage initializer": reads the predictor's ServiceAccount and its Secret, and
   downloads the storageUri from S3 with those credentials and the Secret's endpoint annotations;
4. pulls the image (tests decide which images exist; a missing one gives a pod in
   ImagePullBackOff and no progress, like a real cluster);
5. loads the model the way the selected runtime does, through a ``serve`` callback (the real
   local model server, in the end-to-end tests) that returns the URL it answers on;
6. sets Ready=True with ``url`` — or a failure with ``modelStatus.lastFailureInfo``. In Standard
   mode the older ReplicaSets' pods are deleted only then: until that moment they serve.

Pods carry the pod template's metadata as components/predictor.go builds it: the
InferenceService's and the predictor's labels and annotations (ServiceAnnotationDisallowedList
left out), ``serving.kserve.io/inferenceservice`` and ``component: predictor``, and in Knative
mode ``serving.knative.dev/revision``. A change the child does not see (the same template and
traffic) leaves the status, and its counter, as they are.

Every status write records ``status.deploymentMode`` as KServe >= 0.15 does (GetDeploymentMode):
the mode already recorded, else the ``serving.kserve.io/deploymentMode`` annotation (legacy
names mapped to Standard/Knative), else the inferenceservice-config default (``default_mode``).
In Knative (Serverless) mode, KServe's default, it also keeps what Knative and KServe keep for
canary rollouts (kserve pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
ksvc_reconciler.go createKnativeService, and pkg/apis/serving/v1beta1 PropagateStatus):
- a new Knative revision ``<name>-predictor-0000N`` only when the revision template changes
  (the predictor without ``canaryTrafficPercent``, the isvc's labels and annotations); a change
  of ``canaryTrafficPercent`` alone only moves traffic;
- the traffic targets KServe asks Knative for: with ``canaryTrafficPercent`` P and a rolled-out
  revision, ``latestRevision`` gets P and the last rolled-out revision (tag ``prev``) 100-P;
  otherwise the latest revision gets 100. Knative resolves ``latestRevision`` to the latest
  *ready* revision, so a new revision gets no traffic until it is ready, and one that fails
  leaves its share on the last ready one;
- ``status.components.predictor``: latestCreatedRevision, latestReadyRevision, traffic, and
  latestRolledoutRevision / previousRolledoutRevision moved as PropagateStatus moves them (a
  latest revision at 100% is rolled out; a rolled-out latest revision given less than 100%
  hands "rolled out" back to the previous one, which is how canaryTrafficPercent: 0 rolls back);
- requests to ``status.url`` split per connection by those percents between the revisions' model
  servers, each kept serving while it has traffic, as Knative's ingress splits them.
Standard (RawDeployment) mode has no revisions and no traffic split.
Along the way it reports what KServe's PropagateModelStatus reports
(pkg/apis/serving/v1beta1/inference_service_status.go): ``modelStatus.states.targetModelState``
Pending while there is no pod, Loading while the storage-initializer init container runs,
Pending while the kserve-container starts, Loaded when Ready; in Knative mode (the default
deployment mode of KServe's configmap, "Serverless") ``components.predictor.latestCreatedRevision``;
and the predictor pod's container states as the kubelet sets them.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .k8s_api import CRD_DIR, KubeApiServer
from .storage_initializer import download
from .tcp_proxy import TcpProxy

log = logging.getLogger(__name__)

RUNTIMES_FILE = CRD_DIR.parent / "runtimes" / "release-v0.20.0_clusterservingruntimes.yaml"
# The legacy fields KServe's webhook rewrites, and model formats, map to runtimes by format name.
Serve = Callable[[str, Path, str, dict[str, Any], dict[str, Any]], str]
"""serve(runtime name, downloaded model dir, model name, isvc, runtime object) -> base URL;
raises on load failure."""


# Labels/annotations KServe keeps off the revision template (constants.*DisallowedList).
_NOT_ON_REVISION = ("kubectl.kubernetes.io/last-applied-configuration",)


@dataclass
class Revision:
    """A Knative revision, or in Standard mode a ReplicaSet of the Deployment: one pod
    template, loaded once."""

    name: str
    template: str
    ready: bool = False
    url: str = ""
    failure: tuple[str, str, str, int | None] | None = None
    """(reason, message, transition, exit code) when it failed to load."""
    retired: bool = False
    """Standard mode: scaled down once the next ReplicaSet's pod was Ready."""
    pod: str = ""
    """Its pod's name."""
    routed: int = 0
    """Connections the route sent here (for tests)."""


@dataclass
class Child:
    """What KServe creates for one InferenceService's predictor: a Knative Service (Knative
    mode) or a Deployment (Standard mode), with the generation counter KServe copies into
    ``status.observedGeneration``."""

    knative: bool = True
    generation: int = 0
    """metadata.generation of the child: one more on each change of its spec."""
    spec: str = ""
    revisions: list[Revision] = field(default_factory=list)
    canary: int | None = None
    """The spec's canaryTrafficPercent."""
    latest_rolledout: str = ""
    previous_rolledout: str = ""
    traffic: list[dict[str, Any]] = field(default_factory=list)
    router: TcpProxy | None = None

    def latest_ready(self) -> Revision | None:
        return next((r for r in reversed(self.revisions) if r.ready), None)

    def by_name(self, name: str) -> Revision | None:
        return next((r for r in self.revisions if r.name == name), None)

    def choose(self) -> tuple[str, int] | None:
        """Knative's ingress: a backend per connection, weighted by the traffic percents. A
        Deployment's Service: any Ready pod of a ReplicaSet not scaled down (during a rolling
        update, the old one's and the new one's alike)."""
        if self.knative:
            weighted = [
                (self.by_name(t["revisionName"]), int(t.get("percent") or 0)) for t in self.traffic
            ]
        else:
            weighted = [(r, 1) for r in self.revisions if r.ready and not r.retired]
        weighted = [(r, w) for r, w in weighted if r is not None and r.url and w > 0]
        if not weighted:
            return None
        revision = random.choices([r for r, _ in weighted], [w for _, w in weighted])[0]
        revision.routed += 1
        parts = urlsplit(revision.url)
        return str(parts.hostname), int(parts.port or 80)


KnativeService = Child  # the name the tests knew it by


def revision_template(isvc: dict[str, Any]) -> str:
    """What makes a Knative revision: the predictor without the traffic setting, and the
    labels and annotations KServe copies onto the revision template."""
    predictor = {k: v for k, v in isvc["spec"]["predictor"].items() if k != "canaryTrafficPercent"}
    meta = isvc["metadata"]
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_ON_REVISION}
    return json.dumps([predictor, meta.get("labels") or {}, notes], sort_keys=True)


class LoadFailed(Exception):
    """The runtime could not load the model (reported as ModelLoadFailed)."""


def load_runtimes() -> list[dict[str, Any]]:
    return [
        d
        for d in yaml.safe_load_all(RUNTIMES_FILE.read_text())
        if d and d.get("kind") == "ClusterServingRuntime"
    ]


def supports(runtime: dict[str, Any], fmt: str, protocol: str) -> bool:
    spec = runtime["spec"]
    return protocol in spec.get("protocolVersions", ["v1"]) and any(
        f["name"] == fmt for f in spec.get("supportedModelFormats", [])
    )


def select_runtime(
    runtimes: list[dict[str, Any]], fmt: str, protocol: str, explicit: str | None
) -> dict[str, Any] | None:
    """KServe's choice: the named runtime (namespaced ServingRuntimes first, as KServe looks
    them up), if it supports the format and protocol; else the highest-priority autoSelect
    runtime that does."""
    if explicit:
        named = [r for r in runtimes if r["metadata"]["name"] == explicit]
        named.sort(key=lambda r: r["kind"] != "ServingRuntime")
        return next((r for r in named[:1] if supports(r, fmt, protocol)), None)
    best: tuple[int, dict[str, Any]] | None = None
    for runtime in runtimes:
        spec = runtime["spec"]
        if protocol not in spec.get("protocolVersions", ["v1"]):
            continue
        for supported in spec.get("supportedModelFormats", []):
            if supported["name"] == fmt and supported.get("autoSelect"):
                priority = int(supported.get("priority", 0))
                if best is None or priority > best[0]:
                    best = (priority, runtime)
    return best[1] if best else None


class KServeController:
    """Attach to a KubeApiServer with ``attach()``; it then reconciles in the server's callback thread."""

    def __init__(
        self,
        api: KubeApiServer,
        serve: Serve,
        image_exists: Callable[[str], bool] = lambda image: True,
        domain: str = "example.com",
        default_install: bool = False,
    ) -> None:
        self.api = api
        self.serve = serve
        self.image_exists = image_exists
        self.gpu_nodes = 0  # nodes with nvidia.com/gpu: none, like most clusters
        self.domain = domain
        self.default_install = default_install
        """Report URLs as a default KServe install does: status.url under the ingress domain
        (example.com: it does not resolve from outside the cluster) and the runtime's real
        address as the cluster-local address.url. Otherwise status.url is the runtime's address
        too, as with an ingress domain that resolves to the gateway."""
        self.default_mode = "Knative"
        """deploy.defaultDeploymentMode of ../shared/kserve/configmap ("Serverless" = Knative)."""
        self.kserve_version = (0, 20)
        """The KServe release whose rules apply where releases differ: in Standard mode v0.15
        and v0.20+ keep Ready=True for a whole rolling update (kserve#5703), v0.16 to v0.19
        report Unknown while the Deployment is Progressing."""
        self.drift = 0
        """How far the child's generation counter is ahead (> 0) or behind (< 0) of what its
        own changes made it: a KServe or runtime upgrade rewrites the Knative Service by itself
        (ahead); HPA or KEDA scaling moves a Deployment's (ahead). KServe copies it as it is."""
        self.stale_seconds = 0.5
        """How long the stale status copied on the first reconcile after a change stays before
        the child reports the change (KServe reconciles again on the child's status event)."""
        self.runtimes = load_runtimes()
        self.seen: dict[tuple[str, str, str], str] = {}
        self.children: dict[tuple[str, str, str], Child] = {}
        self._current: dict[tuple[str, str], Child] = {}
        """The child of the object now stored under (namespace, name)."""
        self.workdir = Path(tempfile.mkdtemp(prefix="kserve-sim-"))
        self._downloads = 0

    def attach(self) -> KServeController:
        self.api.on_write(self._on_write)
        return self

    def close(self) -> None:
        for svc in self.children.values():
            if svc.router is not None:
                svc.router.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- reconcile -------------------------------------------------------------------------

    def _on_write(self, plural: str, namespace: str, name: str, obj: dict[str, Any] | None) -> None:
        if plural != "inferenceservices" or obj is None:
            return
        meta = obj["metadata"]
        key = (namespace, name, meta.get("uid", ""))  # a re-created object starts over
        # KServe reconciles on every change, not only on a new generation: labels and
        # annotations (no new metadata.generation) reach the pod template too.
        seen = json.dumps(
            [obj.get("spec"), meta.get("labels"), meta.get("annotations")], sort_keys=True
        )
        if self.seen.get(key) == seen:
            return  # our own status writes, or a no-op
        self.seen[key] = seen
        knative = self._deployment_mode(namespace, name) in ("Knative", "Serverless")
        child = self.children.setdefault(key, Child(knative=knative))
        self._current[(namespace, name)] = child
        try:
            self._reconcile(namespace, name, obj, child)
        except Exception as e:  # a bug in the simulation must show up as a failure, not hang
            log.exception("controller simulation failed")
            self._fail(namespace, name, "InternalError", f"simulation error: {e}")

    def _observed(self, child: Child) -> int:
        """status.observedGeneration: the child's counter, never the InferenceService's
        (PropagateStatus / PropagateRawStatus, pkg/apis/serving/v1beta1/
        inference_service_status.go)."""
        return max(1, child.generation + self.drift)

    def _reconcile(self, namespace: str, name: str, isvc: dict[str, Any], child: Child) -> None:
        template = revision_template(isvc)
        canary = isvc["spec"]["predictor"].get("canaryTrafficPercent") if child.knative else None
        spec = json.dumps([template, canary])
        if spec == child.spec:
            return  # a change the child does not see: its status (and counter) stay as they are
        if child.spec:
            # The first reconcile after a change copies the child's status from before the
            # child saw it: Knative, reconcilers/knative/ksvc_reconciler.go (Update(existing),
            # then `return &existing.Status`); Standard, reconcilers/deployment/
            # deployment_reconciler.go ("Use existingDep ... before this spec update").
            self._stale_copy(namespace, name, child)
            time.sleep(self.stale_seconds)
        child.spec, child.canary = spec, canary
        child.generation += 1
        if child.knative and child.revisions and child.revisions[-1].template == template:
            self._settle(namespace, name, child.revisions[-1])
            return  # the route changes; Knative makes no revision
        number = len(child.revisions) + 1
        revision = Revision(
            f"{name}-predictor-{number:05d}" if child.knative else f"{name}-predictor-rs{number}",
            template,
        )
        child.revisions.append(revision)
        revision.pod = (
            f"{revision.name}-deployment-abc12" if child.knative else f"{revision.name}-abc12"
        )
        pod = _PredictorPod(namespace, revision.pod, revision.name if child.knative else "", isvc)
        self._progress(namespace, name, "Pending")
        model = isvc["spec"]["predictor"]["model"]
        fmt = model["modelFormat"]["name"]
        protocol = model.get("protocolVersion") or "v1"
        stored = self.api.list_objects("servingruntimes", namespace) + self.api.list_objects(
            "clusterservingruntimes"
        )
        runtimes = [r for r in stored if not r["spec"].get("disabled")] if stored else self.runtimes
        runtime = select_runtime(runtimes, fmt, protocol, model.get("runtime"))
        if runtime is None:
            self._fail(
                namespace,
                name,
                "NoSupportingRuntime",
                f"No runtime found to support predictor with model type: {fmt} and protocol {protocol}",
                transition="InvalidSpec",
            )
            return
        gpus = ((model.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu")
        if gpus and not self.gpu_nodes:  # the scheduler cannot place the predictor pod
            self.api.put_object(
                "pods",
                pod.unschedulable(
                    "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 "
                    "nodes are available: 1 No preemption victims found for incoming pod."
                ),
            )
            return  # a real cluster keeps the pod Pending; the isvc stays InProgress
        container = runtime["spec"]["containers"][0]
        image = (
            container["image"].rsplit(":", 1)[0] + ":" + model["runtimeVersion"]
            if model.get("runtimeVersion")
            else container["image"]
        )
        if not self.image_exists(image):
            self.api.put_object(
                "pods",
                pod.manifest(
                    init={"waiting": {"reason": "PodInitializing"}},
                    server={
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}"',
                        }
                    },
                    restarts=1,
                ),
            )
            return  # a real cluster keeps retrying the pull; the isvc stays InProgress
        # The pod is created with its init container not started yet, then the storage
        # initializer runs (KServe: Loading); the kubelet starts the model server after it.
        self.api.put_object("pods", pod.manifest(init={"waiting": {"reason": "PodInitializing"}}))
        self.api.put_object("pods", pod.manifest(init={"running": {}}))
        self._progress(namespace, name, "Loading")
        try:
            folder = self._storage_initializer(namespace, isvc, model["storageUri"])
        except Exception as e:
            failed = {"terminated": {"reason": "Error", "exitCode": 1, "message": str(e)[:300]}}
            self.api.put_object("pods", pod.manifest(init=failed, restarts=1))
            self._fail(namespace, name, "ModelLoadFailed", f"storage initializer: {e}", exit_code=1)
            return
        done = {"terminated": {"reason": "Completed", "exitCode": 0}}
        self.api.put_object("pods", pod.manifest(init=done, server={"running": {}}))
        self._progress(namespace, name, "Pending")
        try:
            url = self.serve(runtime["metadata"]["name"], folder, name, isvc, runtime)
        except Exception as e:
            failed = {"terminated": {"reason": "Error", "exitCode": 1, "message": str(e)[:300]}}
            self.api.put_object("pods", pod.manifest(init=done, server=failed, restarts=1))
            self._fail(namespace, name, "ModelLoadFailed", str(e)[:500], exit_code=1)
            return
        self.api.put_object("pods", pod.manifest(init=done, server={"running": {}}, ready=True))
        revision.ready, revision.url = True, url
        if not child.knative:  # the rolling update ends: the older ReplicaSets scale down
            for older in child.revisions[:-1]:
                if not older.retired:
                    older.retired = True
                    self.api.delete_object("pods", namespace, older.pod)
        self._ready(namespace, name, url)

    def _stale_copy(self, namespace: str, name: str, child: Child) -> None:
        """The status as it was, with the child's counter as it was (the copy KServe makes)."""
        isvc = self.api.get_object("inferenceservices", namespace, name) or {}
        status = dict(isvc.get("status") or {})
        if status:
            status["observedGeneration"] = self._observed(child)
            self.api.update_status("inferenceservices", namespace, name, status)

    def _settle(self, namespace: str, name: str, latest: Revision) -> None:
        """A change with the same revision template: the latest revision's state again,
        with the route recomputed."""
        if latest.ready:
            self._ready(namespace, name, latest.url)
        elif latest.failure is not None:
            reason, message, transition, exit_code = latest.failure
            self._fail(namespace, name, reason, message, transition, exit_code)
        else:
            self._status(
                namespace, name, ready="Unknown", transition="InProgress", reason="InProgress"
            )

    # --- Knative routing (KServe's traffic targets, Knative's resolution) ------------------

    def _route(self, namespace: str, name: str, svc: Child) -> None:
        """Recompute the traffic as KServe reconciles it: targets from the rolled-out revisions,
        resolved by Knative, then PropagateStatus; again while that moves the rolled-out
        revisions (KServe reconciles once more on its own status change)."""
        for _ in range(3):
            targets: list[dict[str, Any]] = []
            if svc.canary is not None and svc.latest_rolledout:
                targets.append({"latestRevision": True, "percent": svc.canary})
                if svc.canary < 100:
                    targets.append(
                        {
                            "tag": "prev",
                            "revisionName": svc.latest_rolledout,
                            "latestRevision": False,
                            "percent": 100 - svc.canary,
                        }
                    )
            else:
                targets.append({"latestRevision": True, "percent": 100})
            ready = svc.latest_ready()
            traffic = []
            for target in targets if ready is not None else []:  # no ready revision: no route
                resolved = {"revisionName": ready.name if target["latestRevision"] else target["revisionName"], **target}  # fmt: skip
                if "tag" in resolved:
                    resolved["url"] = (
                        f"http://{resolved['tag']}-{name}-predictor-{namespace}.{self.domain}"
                    )
                traffic.append(resolved)
            svc.traffic = traffic
            if not self._propagate(svc):
                return

    @staticmethod
    def _propagate(svc: Child) -> bool:
        """KServe's PropagateStatus bookkeeping of rolled-out revisions; True if it moved."""
        ready = svc.latest_ready()
        if ready is None:
            return False
        created = svc.revisions[-1].name
        before = (svc.latest_rolledout, svc.previous_rolledout)
        per_revision: dict[str, int] = {}
        for t in svc.traffic:
            per_revision[t["revisionName"]] = per_revision.get(t["revisionName"], 0) + t["percent"]
        for t in svc.traffic:
            if t["revisionName"] != ready.name or not t["latestRevision"]:
                continue
            if svc.latest_rolledout != ready.name:
                if t["percent"] == 100:  # the latest ready revision is fully rolled out
                    svc.previous_rolledout, svc.latest_rolledout = svc.latest_rolledout, ready.name
            elif (
                ready.name == created
                and t["percent"] < 100
                and per_revision.get(t["revisionName"]) == 100
                and svc.previous_rolledout
            ):  # rolled out, then given less: "rolled out" goes back to the previous revision
                svc.latest_rolledout = svc.previous_rolledout
        return (svc.latest_rolledout, svc.previous_rolledout) != before

    def service(self, namespace: str, name: str) -> Child | None:
        """The child of an InferenceService (for tests)."""
        return self._current.get((namespace, name))

    def _router_url(self, svc: Child) -> str:
        if svc.router is None:
            svc.router = TcpProxy("127.0.0.1", 0, choose=svc.choose)
        return svc.router.url

    def _write(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Store a status with the child's counter as observedGeneration; in Knative mode with
        the predictor's revisions and traffic; with the URLs of the route (Knative's ingress,
        or the Deployment's Service), which answers while any revision or pod serves."""
        svc = self._current.get((namespace, name))
        routed = ""
        if svc is not None:
            status["observedGeneration"] = self._observed(svc)
        if svc is not None and svc.knative and svc.revisions:
            self._route(namespace, name, svc)
            ready = svc.latest_ready()
            component: dict[str, Any] = {"latestCreatedRevision": svc.revisions[-1].name}
            if ready is not None:
                component["latestReadyRevision"] = ready.name
            if svc.latest_rolledout:
                component["latestRolledoutRevision"] = svc.latest_rolledout
            if svc.previous_rolledout:
                component["previousRolledoutRevision"] = svc.previous_rolledout
            if svc.traffic:
                component["traffic"] = svc.traffic
                routed = self._router_url(svc)
            status["components"] = {"predictor": component}
        elif svc is not None and any(r.ready and not r.retired for r in svc.revisions):
            routed = self._router_url(svc)
        if routed:
            # KServe's default domain template: {{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}
            external = f"http://{name}-{namespace}.{self.domain}"
            internal = f"http://{name}-predictor.{namespace}.svc.cluster.local"
            if self.default_install:
                internal = routed
            else:
                external = routed
            status["url"], status["address"] = external, {"url": internal}
            if "components" in status:
                status["components"]["predictor"]["url"] = external
        status["deploymentMode"] = self._deployment_mode(namespace, name)
        self.api.update_status("inferenceservices", namespace, name, status)

    def _storage_initializer(self, namespace: str, isvc: dict[str, Any], uri: str) -> Path:
        """Download storageUri with the ServiceAccount's S3 Secret, as KServe's initializer does."""
        import boto3

        sa_name = isvc["spec"]["predictor"].get("serviceAccountName") or "default"
        account = self.api.get_object("serviceaccounts", namespace, sa_name)
        if account is None:
            raise RuntimeError(f'serviceaccount "{sa_name}" not found')
        secret = None
        for ref in account.get("secrets") or []:
            candidate = self.api.get_object("secrets", namespace, ref["name"])
            if candidate and "AWS_ACCESS_KEY_ID" in (candidate.get("data") or {}):
                secret = candidate
        if secret is None:
            raise RuntimeError("no S3 credentials attached to the service account")
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        notes = secret["metadata"].get("annotations") or {}
        scheme = "https" if notes.get("serving.kserve.io/s3-usehttps", "1") == "1" else "http"
        endpoint = notes.get("serving.kserve.io/s3-endpoint")
        client = boto3.client(
            "s3",
            endpoint_url=f"{scheme}://{endpoint}" if endpoint else None,
            aws_access_key_id=data["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=data["AWS_SECRET_ACCESS_KEY"],
            region_name=notes.get("serving.kserve.io/s3-region", "us-east-1"),
            verify=notes.get("serving.kserve.io/s3-verifyssl", "1") == "1",
        )
        self._downloads += 1
        target = self.workdir / namespace / isvc["metadata"]["name"] / str(self._downloads)
        download(client, uri, target)  # KServe's prefix rules, zero-byte objects skipped
        return target

    # --- status writes ---------------------------------------------------------------------

    def _deployment_mode(self, namespace: str, name: str) -> str:
        """GetDeploymentMode (pkg/controller/v1beta1/inferenceservice/utils/utils.go): the
        recorded status.deploymentMode, else the annotation if this release reads its name,
        else the configmap's default. v0.14 and v0.15 read only the legacy names (a
        ``Standard`` annotation falls back to the default) and record them; v0.16 and later
        map the legacy names to Standard/Knative."""
        isvc = self.api.get_object("inferenceservices", namespace, name) or {}
        recorded = (isvc.get("status") or {}).get("deploymentMode")
        if recorded:
            return str(recorded)
        annotation = ((isvc.get("metadata") or {}).get("annotations") or {}).get(
            "serving.kserve.io/deploymentMode", ""
        )
        if self.kserve_version < (0, 16):
            legacy = {"Standard": "RawDeployment", "Knative": "Serverless"}
            if annotation in ("RawDeployment", "Serverless", "ModelMesh"):
                return str(annotation)
            return legacy[self.default_mode]
        annotation = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(
            annotation, annotation
        )
        if annotation in ("Standard", "Knative", "ModelMesh"):
            return str(annotation)
        return self.default_mode

    def _status(
        self,
        namespace: str,
        name: str,
        *,
        ready: str,
        transition: str,
        reason: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        condition = {"type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"}
        if reason:
            condition["reason"] = reason
        status: dict[str, Any] = {
            "conditions": [condition],
            "modelStatus": {"transitionStatus": transition},
        }
        for key, value in (extra or {}).items():
            if key == "conditions":
                status["conditions"] = value + status["conditions"]
            elif key == "modelStatus":
                status["modelStatus"].update(value)
            else:
                status[key] = value
        self._write(namespace, name, status)

    def _progress(self, namespace: str, name: str, state: str) -> None:
        """InProgress with the model state KServe derives from the pod. In Standard mode,
        while an older ReplicaSet's pod still serves, v0.15 and v0.20+ report the Deployment
        Available, so Ready=True for the whole rolling update (PropagateRawStatus; v0.20:
        kserve#5703); v0.16 to v0.19 report Unknown while it is Progressing."""
        svc = self._current.get((namespace, name))
        serving = (
            svc is not None
            and not svc.knative
            and any(r.ready and not r.retired for r in svc.revisions[:-1])
        )
        minor = self.kserve_version[1]
        if serving and (minor <= 15 or minor >= 20):
            self._status(
                namespace,
                name,
                ready="True",
                transition="UpToDate",
                extra={
                    "conditions": [
                        {"type": "PredictorReady", "status": "True", "lastTransitionTime": _T0}
                    ],
                    "modelStatus": {"states": _states("Loaded")},
                },
            )
            return
        self._status(
            namespace,
            name,
            ready="Unknown",
            transition="InProgress",
            reason="Progressing" if serving else "InProgress",
            extra={"modelStatus": {"states": _states(state)}},
        )

    def _fail(
        self,
        namespace: str,
        name: str,
        reason: str,
        message: str,
        transition: str = "BlockedByFailedLoad",
        exit_code: int | None = None,
    ) -> None:
        failure: dict[str, Any] = {"reason": reason, "message": message}
        if exit_code is not None:
            failure["exitCode"] = exit_code
        svc = self._current.get((namespace, name))
        if svc is not None and svc.revisions:
            svc.revisions[-1].failure = (reason, message, transition, exit_code)
        predictor = {
            "type": "PredictorReady",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": _T0,
        }
        self._status(
            namespace,
            name,
            ready="False",
            transition=transition,
            reason=reason,
            extra={"conditions": [predictor], "modelStatus": {"lastFailureInfo": failure}},
        )

    def _ready(self, namespace: str, name: str, url: str) -> None:
        # KServe's default domain template: {{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}
        external = f"http://{name}-{namespace}.{self.domain}"
        internal = f"http://{name}-predictor.{namespace}.svc.cluster.local"
        if self.default_install:
            internal = url or internal
        else:
            external = url or external
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": _T0}
            for t in ("IngressReady", "PredictorReady", "Ready")
        ]
        status = {
            "url": external,
            "address": {"url": internal},
            "conditions": conditions,
            "modelStatus": {
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            },
        }
        self._write(namespace, name, status)


_T0 = "2026-01-01T00:00:00Z"


def _states(target: str) -> dict[str, str]:
    """modelStatus.states as UpdateModelRevisionStates writes them: the active state is set
    only once a model is Loaded ('' until then; the field has no omitempty)."""
    return {"activeModelState": "Loaded" if target == "Loaded" else "", "targetModelState": target}


# Annotations KServe keeps off the pod template (constants.ServiceAnnotationDisallowedList).
_NOT_ON_POD = _NOT_ON_REVISION


class _PredictorPod:
    """The predictor pod as the kubelet reports it: a storage-initializer init container and
    the kserve-container, in the states they pass through. Its metadata is the pod template's:
    the InferenceService's labels and annotations and the predictor's own (ComponentExtensionSpec
    labels/annotations), as components/predictor.go builds it, with the labels KServe adds."""

    def __init__(self, namespace: str, pod_name: str, revision: str, isvc: dict[str, Any]) -> None:
        self.namespace, self.pod_name = namespace, pod_name
        meta = isvc["metadata"]
        name = meta["name"]
        predictor = isvc["spec"]["predictor"]
        self.labels = {
            **(meta.get("labels") or {}),
            **(predictor.get("labels") or {}),
            "serving.kserve.io/inferenceservice": name,
            "component": "predictor",
        }
        if revision:
            self.labels["serving.knative.dev/revision"] = revision
        notes = {**(meta.get("annotations") or {}), **(predictor.get("annotations") or {})}
        self.annotations = {k: v for k, v in notes.items() if k not in _NOT_ON_POD}

    def _meta(self) -> dict[str, Any]:
        return {
            "name": self.pod_name,
            "namespace": self.namespace,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }

    def unschedulable(self, message: str) -> dict[str, Any]:
        """A Pending pod the scheduler could not place, as the scheduler reports it."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self._meta(),
            "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastTransitionTime": _T0,
                    }
                ],
            },
        }

    def manifest(
        self,
        init: dict[str, Any],
        server: dict[str, Any] | None = None,
        ready: bool = False,
        restarts: int = 0,
    ) -> dict[str, Any]:
        # Until its init containers finish, the kubelet reports the main containers waiting
        # with reason PodInitializing.
        server = server or {"waiting": {"reason": "PodInitializing"}}

        def container(name: str, state: dict[str, Any], is_ready: bool) -> dict[str, Any]:
            return {
                "name": name,
                "state": state,
                "ready": is_ready,
                "restartCount": restarts,
                "image": "x",
                "imageID": "",
            }

        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self._meta(),
            "spec": {
                "initContainers": [{"name": "storage-initializer", "image": "x"}],
                "containers": [{"name": "kserve-container", "image": "x"}],
            },
            "status": {
                "phase": "Running" if "running" in server else "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True" if ready else "False"},
                ],
                "initContainerStatuses": [
                    container("storage-initializer", init, "terminated" in init)
                ],
                "containerStatuses": [container("kserve-container", server, ready)],
            },
        }
