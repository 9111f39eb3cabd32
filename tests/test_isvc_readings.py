"""The one reading of each: the prediction path (both targets and the model server), the
address to reach a service at (in a pod or not), and whether this process is in a pod."""

from __future__ import annotations

from typing import Any

import pytest

from kserve_predictor.engines import ENGINES, prediction_path
from kserve_predictor.kserve import pod
from kserve_predictor.kserve.isvc import reachable_base, served_prediction_url


def _isvc(protocol: str = "", internal: str = "") -> dict[str, Any]:
    model: dict[str, Any] = {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/m"}
    if protocol:
        model["protocolVersion"] = protocol
    status: dict[str, Any] = {"url": "http://iris.team.example.com"}
    if internal:
        status["address"] = {"url": internal}
    return {"metadata": {"name": "iris"}, "spec": {"predictor": {"model": model}}, "status": status}


def test_one_prediction_path_per_protocol() -> None:
    assert prediction_path("v1", "iris") == "/v1/models/iris:predict"
    assert prediction_path("v2", "iris") == "/v2/models/iris/infer"
    sklearn = ENGINES["sklearn"]
    assert sklearn.prediction_path("iris") == prediction_path(sklearn.protocol, "iris")
    assert sklearn.prediction_path("iris", "v2") == "/v2/models/iris/infer"


def test_the_model_server_names_the_same_path() -> None:
    pytest.importorskip("kserve")
    from kserve_predictor.errors import WrongProtocolError
    from kserve_predictor.modelserver import protocol
    from kserve_predictor.modelserver.server import decode

    style = next(s for s, speaks in protocol.PROTOCOLS.items() if speaks == ("v1",))
    with pytest.raises(WrongProtocolError, match=r"POST /v1/models/iris:predict$"):
        decode(style, {}, True, None, "iris")  # type: ignore[arg-type]


def test_the_reachable_address_is_cluster_local_only_in_a_pod() -> None:
    internal = "http://iris.team.svc.cluster.local"
    assert reachable_base(_isvc(internal=internal)) == "http://iris.team.example.com"
    assert reachable_base(_isvc(internal=internal), in_pod=True) == internal
    assert reachable_base(_isvc(), in_pod=True) == "http://iris.team.example.com"
    assert served_prediction_url(_isvc(internal=internal), in_pod=True) == (
        f"{internal}/v1/models/iris:predict"
    )


def test_the_prediction_url_follows_the_protocol_the_spec_names() -> None:
    assert served_prediction_url(_isvc()).endswith("/v1/models/iris:predict")
    assert served_prediction_url(_isvc("v2")).endswith("/v2/models/iris/infer")
    unknown = _isvc()
    unknown["spec"]["predictor"]["model"]["modelFormat"]["name"] = "no-such-format"
    assert served_prediction_url(unknown) == ""  # no engine, no path: not status.url alone


def test_in_a_pod_is_the_kubelets_variable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert pod.in_pod({"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert not pod.in_pod({})
    monkeypatch.setattr(pod, "NAMESPACE_FILE", str(tmp_path / "absent"))
    assert pod.pod_namespace() == ""
    (tmp_path / "namespace").write_text("team-a\n")
    monkeypatch.setattr(pod, "NAMESPACE_FILE", str(tmp_path / "namespace"))
    assert pod.pod_namespace() == "team-a"
