"""A simulation of the KServe controller, driving InferenceServices in the Kubernetes API test
server the way KServe does (DESIGN.md §3).

On every new generation of an InferenceService it:
1. records ``observedGeneration`` with Ready=Unknown (InProgress), as KServe does first;
2. selects the ServingRuntime from KServe's real runtime definitions in ../shared/kserve/runtimes
   (modelFormat + protocolVersion, autoSelect, priority), or fails with NoSupportingRuntime;
3. runs the "storage initializer": reads the predictor's ServiceAccount and its Secret, and
   downloads the storageUri from S3 with those credentials and the Secret's endpoint annotations;
4. pulls the image (tests decide which images exist; a missing one gives a pod in
   ImagePullBackOff and no progress, like a real cluster);
5. loads the model the way the selected runtime does, through a ``serve`` callback (the real
   local model server, in the end-to-end tests) that returns the URL it answers on;
6. sets Ready=True with ``url`` — or a failure with ``modelStatus.lastFailureInfo``.

Along the way it reports what KServe's PropagateModelStatus reports
(pkg/apis/serving/v1beta1/inference_service_status.go): ``modelStatus.states.targetModelState``
Pending while there is no pod, Loading while the storage-initializer init container runs,
Pending while the kserve-container starts, Loaded when Ready; in Knative mode (the default
deployment mode of KServe's configmap, "Serverless") ``components.predictor.latestCreatedRevision``;
and the predictor pod's container states as the kubelet sets them.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .k8s_api import CRD_DIR, KubeApiServer
from .storage_initializer import download

log = logging.getLogger(__name__)

RUNTIMES_FILE = CRD_DIR.parent / "runtimes" / "release-v0.20.0_clusterservingruntimes.yaml"
# The legacy fields KServe's webhook rewrites, and model formats, map to runtimes by format name.
Serve = Callable[[str, Path, str, dict[str, Any], dict[str, Any]], str]
"""serve(runtime name, downloaded model dir, model name, isvc, runtime object) -> base URL;
raises on load failure."""


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
        self.runtimes = load_runtimes()
        self.reconciled: dict[tuple[str, str, str], int] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="kserve-sim-"))

    def attach(self) -> KServeController:
        self.api.on_write(self._on_write)
        return self

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- reconcile -------------------------------------------------------------------------

    def _on_write(self, plural: str, namespace: str, name: str, obj: dict[str, Any] | None) -> None:
        if plural != "inferenceservices" or obj is None:
            return
        generation = int(obj["metadata"].get("generation") or 1)
        key = (namespace, name, obj["metadata"].get("uid", ""))  # a re-created object starts over
        if self.reconciled.get(key, 0) >= generation:
            return  # our own status writes, or a no-op
        self.reconciled[key] = generation
        try:
            self._reconcile(namespace, name, obj, generation)
        except Exception as e:  # a bug in the simulation must show up as a failure, not hang
            log.exception("controller simulation failed")
            self._fail(namespace, name, generation, "InternalError", f"simulation error: {e}")

    def _reconcile(self, namespace: str, name: str, isvc: dict[str, Any], generation: int) -> None:
        revision = _revision(isvc, generation)
        components = (
            {"components": {"predictor": {"latestCreatedRevision": revision}}} if revision else {}
        )
        self._status(
            namespace,
            name,
            generation,
            ready="Unknown",
            transition="InProgress",
            reason="InProgress",
            extra={"modelStatus": {"states": _states("Pending")}, **components},
        )
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
                generation,
                "NoSupportingRuntime",
                f"No runtime found to support predictor with model type: {fmt} and protocol {protocol}",
                transition="InvalidSpec",
            )
            return
        gpus = ((model.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu")
        if gpus and not self.gpu_nodes:  # the scheduler cannot place the predictor pod
            self._unschedulable(
                namespace,
                name,
                "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes "
                "are available: 1 No preemption victims found for incoming pod.",
            )
            return  # a real cluster keeps the pod Pending; the isvc stays InProgress
        container = runtime["spec"]["containers"][0]
        image = (
            container["image"].rsplit(":", 1)[0] + ":" + model["runtimeVersion"]
            if model.get("runtimeVersion")
            else container["image"]
        )
        if not self.image_exists(image):
            self._pod(
                namespace,
                name,
                "kserve-container",
                {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{image}"',
                    }
                },
            )
            return  # a real cluster keeps retrying the pull; the isvc stays InProgress
        # The pod is created with its init container not started yet, then the storage
        # initializer runs (KServe: Loading); the kubelet starts the model server after it.
        pod = _PredictorPod(namespace, name, revision)
        self.api.put_object("pods", pod.manifest(init={"waiting": {"reason": "PodInitializing"}}))
        self.api.put_object("pods", pod.manifest(init={"running": {}}))
        self._progress(namespace, name, generation, "Loading", components)
        try:
            folder = self._storage_initializer(namespace, isvc, model["storageUri"], generation)
        except Exception as e:
            self._pod(
                namespace,
                name,
                "storage-initializer",
                {"terminated": {"reason": "Error", "exitCode": 1, "message": str(e)[:300]}},
                init=True,
            )
            self._fail(
                namespace,
                name,
                generation,
                "ModelLoadFailed",
                f"storage initializer: {e}",
                exit_code=1,
            )
            return
        done = {"terminated": {"reason": "Completed", "exitCode": 0}}
        self.api.put_object("pods", pod.manifest(init=done, server={"running": {}}))
        self._progress(namespace, name, generation, "Pending", components)
        try:
            url = self.serve(runtime["metadata"]["name"], folder, name, isvc, runtime)
        except Exception as e:
            self._pod(
                namespace,
                name,
                "kserve-container",
                {"terminated": {"reason": "Error", "exitCode": 1, "message": str(e)[:300]}},
            )
            self._fail(namespace, name, generation, "ModelLoadFailed", str(e)[:500], exit_code=1)
            return
        self.api.put_object("pods", pod.manifest(init=done, server={"running": {}}, ready=True))
        self._ready(namespace, name, generation, url, components)

    def _storage_initializer(
        self, namespace: str, isvc: dict[str, Any], uri: str, generation: int
    ) -> Path:
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
        target = self.workdir / namespace / isvc["metadata"]["name"] / str(generation)
        download(client, uri, target)  # KServe's prefix rules, zero-byte objects skipped
        return target

    # --- status writes ---------------------------------------------------------------------

    def _status(
        self,
        namespace: str,
        name: str,
        generation: int,
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
            "observedGeneration": generation,
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
        self.api.update_status("inferenceservices", namespace, name, status)

    def _progress(
        self, namespace: str, name: str, generation: int, state: str, extra: dict[str, Any]
    ) -> None:
        """InProgress with the model state KServe derives from the pod."""
        self._status(
            namespace,
            name,
            generation,
            ready="Unknown",
            transition="InProgress",
            reason="InProgress",
            extra={"modelStatus": {"states": _states(state)}, **extra},
        )

    def _fail(
        self,
        namespace: str,
        name: str,
        generation: int,
        reason: str,
        message: str,
        transition: str = "BlockedByFailedLoad",
        exit_code: int | None = None,
    ) -> None:
        failure: dict[str, Any] = {"reason": reason, "message": message}
        if exit_code is not None:
            failure["exitCode"] = exit_code
        predictor = {
            "type": "PredictorReady",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        self._status(
            namespace,
            name,
            generation,
            ready="False",
            transition=transition,
            reason=reason,
            extra={"conditions": [predictor], "modelStatus": {"lastFailureInfo": failure}},
        )

    def _ready(
        self,
        namespace: str,
        name: str,
        generation: int,
        url: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        # KServe's default domain template: {{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}
        external = f"http://{name}-{namespace}.{self.domain}"
        internal = f"http://{name}-predictor.{namespace}.svc.cluster.local"
        if self.default_install:
            internal = url or internal
        else:
            external = url or external
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            for t in ("IngressReady", "PredictorReady")
        ]
        status = {
            "observedGeneration": generation,
            "url": external,
            "address": {"url": internal},
            "conditions": [
                *conditions,
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ],
            "modelStatus": {
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            },
            **(extra or {}),
        }
        self.api.update_status("inferenceservices", namespace, name, status)

    def _unschedulable(self, namespace: str, name: str, message: str) -> None:
        """A Pending pod the scheduler could not place, as the scheduler reports it."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-predictor-00001-deployment-abc12",
                "namespace": namespace,
                "labels": {"serving.kserve.io/inferenceservice": name},
            },
            "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        }
        self.api.put_object("pods", pod)

    def _pod(
        self, namespace: str, name: str, container: str, state: dict[str, Any], init: bool = False
    ) -> None:
        statuses = [
            {
                "name": container,
                "state": state,
                "ready": False,
                "restartCount": 1,
                "image": "x",
                "imageID": "",
            }
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-predictor-00001-deployment-abc12",
                "namespace": namespace,
                "labels": {"serving.kserve.io/inferenceservice": name},
            },
            "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
            "status": {
                "phase": "Pending",
                ("initContainerStatuses" if init else "containerStatuses"): statuses,
            },
        }
        self.api.put_object("pods", pod)


RAW_MODES = {"RawDeployment", "Standard"}
"""serving.kserve.io/deploymentMode values without Knative (no revisions)."""


def _revision(isvc: dict[str, Any], generation: int) -> str:
    """The Knative revision KServe's Knative service gets for this spec ('' in Standard mode):
    ``<name>-predictor-<5-digit configuration generation>``."""
    mode = (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode")
    if mode in RAW_MODES:
        return ""
    return f"{isvc['metadata']['name']}-predictor-{generation:05d}"


def _states(target: str) -> dict[str, str]:
    """modelStatus.states as UpdateModelRevisionStates writes them: the active state is set
    only once a model is Loaded ('' until then; the field has no omitempty)."""
    return {"activeModelState": "Loaded" if target == "Loaded" else "", "targetModelState": target}


class _PredictorPod:
    """The predictor pod as the kubelet reports it: a storage-initializer init container and
    the kserve-container, in the states they pass through."""

    def __init__(self, namespace: str, name: str, revision: str) -> None:
        self.namespace, self.name, self.revision = namespace, name, revision

    def manifest(
        self,
        init: dict[str, Any],
        server: dict[str, Any] | None = None,
        ready: bool = False,
    ) -> dict[str, Any]:
        labels = {"serving.kserve.io/inferenceservice": self.name}
        if self.revision:
            labels["serving.knative.dev/revision"] = self.revision
        # Until its init containers finish, the kubelet reports the main containers waiting
        # with reason PodInitializing.
        server = server or {"waiting": {"reason": "PodInitializing"}}

        def container(name: str, state: dict[str, Any], is_ready: bool) -> dict[str, Any]:
            return {
                "name": name,
                "state": state,
                "ready": is_ready,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
            }

        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{self.revision or self.name + '-predictor'}-deployment-abc12",
                "namespace": self.namespace,
                "labels": labels,
            },
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
