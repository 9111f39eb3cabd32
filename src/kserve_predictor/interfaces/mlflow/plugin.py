"""The MLflow deployments plugin, target ``kserve``: ``mlflow deployments create -t kserve ...``.

Registered through the ``mlflow.deployments`` entry point and loaded only by MLflow, so this
module may import MLflow; ``import kserve_predictor`` never does. Every operation is the
library's own (ops.deploy, ops.lifecycle status/delete, local.deploy_local): there is no second
deploy path. An endpoint is a Kubernetes namespace.

Errors leave as ``KServeDeploymentError``, an MlflowException that is also a click exception, so
the ``mlflow`` CLI prints its one line (``Error: ...``) instead of a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse

from kserve_predictor.errors import DeploymentNotFound, UsageError
from kserve_predictor.interfaces.mlflow import config as mlflow_config
from kserve_predictor.interfaces.mlflow.edge import mlflow_errors
from kserve_predictor.kserve.client import Cluster
from kserve_predictor.kserve.connection import connect
from kserve_predictor.kserve.isvc import engine_of, served_prediction_url
from kserve_predictor.kserve.pod import in_pod
from kserve_predictor.naming import check_app_name
from kserve_predictor.settings import build, table
from kserve_predictor.settings.groups import DeploySettings, S3Settings

log = logging.getLogger("kserve_predictor.mlflow_deployments")  # stable log channel, not the path
F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["KServeDeploymentClient", "run_local", "target_help"]


def _s3() -> S3Settings:
    return S3Settings.from_env()


class KServeDeploymentClient(BaseDeploymentClient):
    """Deployments are InferenceServices made by kserve-predictor; endpoints are namespaces."""

    @mlflow_errors
    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)
        self.context = mlflow_config.kube_context(target_uri)
        kubeconfig = table.from_env(("kubeconfig",))["kubeconfig"]
        self.cluster_settings = build.cluster(kubeconfig, self.context)
        self._cluster: Cluster | None = None

    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = connect(self.cluster_settings)
        return self._cluster

    def _namespace(self, namespace: str | None) -> str:
        return namespace or self.cluster().default_namespace

    # --- deployments ------------------------------------------------------------------------

    @mlflow_errors
    def create_deployment(
        self,
        name: str,
        model_uri: str,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Deploy ``model_uri`` as InferenceService ``name``; returns when it answers. A
        deployment of that name must not exist (update changes one)."""
        app, namespace = mlflow_config.split_name(name, endpoint)
        settings = self._settings(
            app, model_uri, mlflow_config.deploy_config(config, flavor, namespace)
        )
        _check_in_s3(model_uri)  # a local path fails for what it is, whatever the cluster
        cluster = self.cluster()
        settings = replace(settings, namespace=self._namespace(settings.namespace))
        if cluster.get("InferenceService", settings.namespace, settings.app_name) is not None:
            raise UsageError(
                f"deployment {settings.app_name} already exists in {settings.namespace}; "
                "change it with `mlflow deployments update`"
            )
        return self._deploy(settings, cluster)

    @mlflow_errors
    def update_deployment(
        self,
        name: str,
        model_uri: str | None = None,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Deploy again with the new model and/or config; without a model URI, the model
        folder the service serves now, with the predictor it serves it with."""
        from kserve_predictor.layouts.gc import layout_source

        app, namespace = mlflow_config.split_name(name, endpoint)
        chosen = mlflow_config.deploy_config(config, flavor, namespace)
        if model_uri:
            _check_in_s3(model_uri)
        cluster = self.cluster()
        namespace = self._namespace(chosen.namespace)
        isvc = cluster.get("InferenceService", namespace, check_app_name(app, "--name"))
        if isvc is None:
            raise DeploymentNotFound(
                f"no deployment {app} in {namespace}; make it with `mlflow deployments create`"
            )
        if not model_uri:
            engine, _, storage_uri = engine_of(isvc)
            source = layout_source(storage_uri)
            if source is None:
                raise UsageError(
                    f"deployment {app} serves {storage_uri or 'no storageUri'}, not a layout "
                    "kserve-predictor wrote; give the model with -m"
                )
            model_uri = source[0]
            if engine is not None and chosen.predictor == "auto":
                chosen = replace(chosen, predictor=engine.name)
        settings = self._settings(app, model_uri, replace(chosen, namespace=namespace))
        return self._deploy(settings, cluster)

    def _settings(
        self, app: str, model_uri: str, chosen: mlflow_config.DeployConfig
    ) -> DeploySettings:
        values = {
            name: getattr(chosen, name) for name in build.DEPLOY_NAMES if hasattr(chosen, name)
        }
        return build.deploy(
            {**values, "model_url": model_uri},
            app_name=check_app_name(app, "--name"),
            namespace=chosen.namespace,
            options=chosen.options,
            s3=_s3(),
            cluster=self.cluster_settings,
        )

    def _deploy(self, settings: DeploySettings, cluster: Cluster) -> dict[str, Any]:
        from kserve_predictor.ops.deploy import deploy

        result = deploy(settings, cluster)
        log.info("%s ready in %s: %s", result.app_name, result.namespace, result.prediction_url)
        return {"name": result.app_name, "flavor": result.engine, **result.as_dict()}

    @mlflow_errors
    def delete_deployment(
        self, name: str, config: dict[str, Any] | None = None, endpoint: str | None = None
    ) -> None:
        """Delete what kserve-predictor made for ``name`` (its InferenceService, Secret and
        ServiceAccount); refuses what it did not make unless force=true; idempotent."""
        from kserve_predictor.ops.lifecycle import KSERVE, delete

        app, namespace = mlflow_config.split_name(name, endpoint)
        namespace, force = mlflow_config.delete_config(config, namespace)
        removed = delete(
            check_app_name(app, "--name"),
            KSERVE,
            namespace,
            self.cluster_settings,
            None,
            force=force,
        )
        for item in removed:
            log.info("deleted %s", item)

    @mlflow_errors
    def list_deployments(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """kserve-predictor's InferenceServices in the namespace (``endpoint``, default the
        context's), each with name, namespace, ready, engine and prediction_url."""
        from kserve_predictor.kserve.ownership import is_managed
        from kserve_predictor.ops.lifecycle import service_status

        namespace = self._namespace(endpoint)
        items = self.cluster().list_inference_services(namespace)
        if items is None:
            raise UsageError(
                f"this identity may not list InferenceServices in {namespace}; grant list "
                "(deploy/rbac.yaml) or choose another namespace with --endpoint"
            )
        pods = self.cluster().pods(namespace)  # one read for all: grouped by their label
        return [
            _summary(service_status(isvc, namespace, isvc["metadata"]["name"], None, pods))
            for isvc in items
            if is_managed(isvc)
        ]

    @mlflow_errors
    def get_deployment(self, name: str, endpoint: str | None = None) -> dict[str, Any]:
        """The InferenceService's state: ready, url, prediction_url, engine, protocol,
        storage_uri, and the problem when it is not ready."""
        return self._status(name, endpoint)[0]

    def _status(self, name: str, endpoint: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        from kserve_predictor.ops.lifecycle import service_status

        app, namespace = mlflow_config.split_name(name, endpoint)
        namespace = self._namespace(namespace)
        isvc = self.cluster().get("InferenceService", namespace, check_app_name(app, "--name"))
        if isvc is None:
            raise DeploymentNotFound(
                f"no deployment {app} in {namespace}; check the name and --endpoint"
            )
        pods = self.cluster().pods(namespace, app)
        status = service_status(isvc, namespace, app, None, pods)
        return {**status, "flavor": status["engine"]}, isvc

    @mlflow_errors
    def predict(
        self, deployment_name: str | None = None, inputs: Any = None, endpoint: str | None = None
    ) -> PredictionsResponse:
        """Send ``inputs`` to the deployment's prediction URL in its protocol; a dict holding
        ``instances`` or ``inputs`` is sent as the request body it already is."""
        from kserve_predictor.interfaces.mlflow import predict as mlflow_predict

        if not deployment_name:
            raise UsageError(
                "predict needs --name (NAME or NAMESPACE/NAME); an endpoint is a namespace, "
                "not a service"
            )
        local = self._local(deployment_name, endpoint)
        if local is not None:
            return self._predict_local(local, inputs)
        info, isvc = self._status(deployment_name, endpoint)
        if not info["prediction_url"]:
            raise UsageError(
                f"deployment {info['name']} in {info['namespace']} has no prediction URL yet"
                + (f" ({info['problem']})" if info["problem"] else "")
            )
        url = served_prediction_url(isvc, in_pod())  # in a pod, the cluster-local address
        body, _ = mlflow_predict.request_body(
            inputs, info["protocol"], lambda: self._model_info(info)
        )
        answer = mlflow_predict.send(url, body)
        return PredictionsResponse(mlflow_predict.predictions_of(answer, info["protocol"], url))

    def _local(self, name: str, endpoint: str | None) -> Any:
        """The ``run-local`` deployment called ``name``, when no namespace is named and the
        name is not (also) an InferenceService: found as `kserve-predictor status` finds it."""
        from kserve_predictor.ops.lifecycle import AUTO, LOCAL, find

        app, namespace = mlflow_config.split_name(name, endpoint)
        if namespace is not None:
            return None
        found = find(check_app_name(app, "--name"), AUTO, None, self.cluster_settings)
        if found.cluster is not None:
            self._cluster = found.cluster
        return found.local if found.target == LOCAL else None

    def _predict_local(self, local: Any, inputs: Any) -> PredictionsResponse:
        from kserve_predictor.interfaces.mlflow import predict as mlflow_predict
        from kserve_predictor.model.mlmodel import read_model
        from kserve_predictor.model.urls import resolve

        body, _ = mlflow_predict.request_body(
            inputs, local.protocol, lambda: read_model(resolve(local.model, _s3()))
        )
        answer = mlflow_predict.send(local.prediction_url, body)
        return PredictionsResponse(
            mlflow_predict.predictions_of(answer, local.protocol, local.prediction_url)
        )

    def _model_info(self, info: dict[str, Any]) -> Any:
        """The served model's MLmodel (V2 requests name their tensor after its signature)."""
        from kserve_predictor.layouts.gc import layout_source
        from kserve_predictor.model.mlmodel import read_model
        from kserve_predictor.model.urls import resolve

        source = layout_source(info["storage_uri"])
        if source is None:
            raise UsageError(
                f"deployment {info['name']} serves {info['storage_uri']}, whose model signature "
                "is unknown; send a ready V2 body ({'inputs': [...]})"
            )
        return read_model(resolve(source[0], _s3()))

    # --- endpoints: namespaces --------------------------------------------------------------

    @mlflow_errors
    def create_endpoint(self, name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        raise UsageError(_NO_NAMESPACE_WRITES.format(what="created", name=name))

    @mlflow_errors
    def update_endpoint(self, endpoint: str, config: dict[str, Any] | None = None) -> None:
        raise UsageError(_NO_NAMESPACE_WRITES.format(what="changed", name=endpoint))

    @mlflow_errors
    def delete_endpoint(self, endpoint: str) -> None:
        raise UsageError(_NO_NAMESPACE_WRITES.format(what="deleted", name=endpoint))

    @mlflow_errors
    def get_endpoint(self, endpoint: str) -> dict[str, Any]:
        """The namespace and the names of kserve-predictor's deployments in it."""
        if self.cluster().namespace_exists(endpoint) is False:
            raise DeploymentNotFound(
                f"no namespace {endpoint}; endpoints are namespaces of the cluster"
            )
        names = [d["name"] for d in self.list_deployments(endpoint)]
        return {"name": endpoint, "deployments": names}

    @mlflow_errors
    def list_endpoints(self) -> list[dict[str, Any]]:
        """The namespaces holding kserve-predictor's deployments (a cluster-wide list)."""
        from kserve_predictor.kserve.ownership import is_managed

        items = self.cluster().list_inference_services(None)
        if items is None:
            raise UsageError(
                "this identity may not list InferenceServices cluster-wide; grant it "
                "(deploy/rbac.yaml) or look at one namespace with get-endpoint --endpoint NS"
            )
        namespaces: dict[str, list[str]] = {}
        for isvc in items:
            if is_managed(isvc):
                meta = isvc["metadata"]
                namespaces.setdefault(meta["namespace"], []).append(meta["name"])
        return [{"name": ns, "deployments": sorted(n)} for ns, n in sorted(namespaces.items())]


_NO_NAMESPACE_WRITES = (
    "endpoint {name} cannot be {what} here: kserve endpoints are Kubernetes namespaces, which "
    "are the cluster admin's (kubectl create namespace {name}); deploy into one with --endpoint"
)


def _check_in_s3(model_uri: str) -> None:
    """KServe's storage initializer downloads from S3: refuse any other model location here,
    before the cluster's configuration is read."""
    from kserve_predictor.model.urls import resolve
    from kserve_predictor.ops.deploy_checks import require_s3

    require_s3(model_uri, resolve(model_uri, _s3()).url, run_local=True)


def _summary(status: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "namespace", "ready", "engine", "protocol", "prediction_url")
    return {key: status[key] for key in keys}


@mlflow_errors
def run_local(
    name: str, model_uri: str, flavor: str | None = None, config: dict[str, Any] | None = None
) -> None:
    """``mlflow deployments run-local``: a managed local model server (the embedded runtime),
    started in the background; `kserve-predictor delete NAME --target local` stops it.

    MLflow calls ``plugin.run_local(name, model_uri, flavor, config)`` (mlflow/deployments/
    interface.py), without the target that base.py's documentation lists first."""
    from kserve_predictor.local.target import deploy_local
    from kserve_predictor.settings.groups import DEFAULT_START_TIMEOUT, LocalSettings

    chosen = mlflow_config.local_config(config, flavor)
    result = deploy_local(
        LocalSettings(
            model_url=model_uri,
            app_name=check_app_name(name, "--name"),
            predictor=chosen.predictor,
            host=chosen.host,
            port=chosen.port,
            timeout=chosen.timeout or DEFAULT_START_TIMEOUT,
            s3=_s3(),
        )
    )
    app = result.app
    log.info(
        "%s serving locally (pid %d, %s): %s; stop it with `kserve-predictor delete %s --target local`",
        app.name, app.pid, app.engine, app.prediction_url, app.name,
    )  # fmt: skip


def target_help() -> str:
    return mlflow_config.target_help()
