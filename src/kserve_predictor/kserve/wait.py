"""Waiting until a rollout serves: a watch on the one InferenceService, resumed when the stream
ends, judged on each new state by the readiness rule (readiness.py) with the pods that carry the
rollout's id, until it serves, fails for good, or the deadline passes. Every request made while
waiting is bounded by that deadline, so a server that stops answering cannot stretch it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from kserve_predictor.errors import ClusterError, NotReady, ReadyTimeout
from kserve_predictor.kserve.api_errors import api_error, transient
from kserve_predictor.kserve.readiness import (
    READING_PODS,
    Expectation,
    describe_status,
    judge,
    of_rollout,
    pod_failure,
    ready_condition,
)
from kserve_predictor.kserve.stages import StageLog
from kserve_predictor.retry import RetryPolicy

log = logging.getLogger("kserve_predictor.cluster")  # stable log channel, not the path

_DIAGNOSIS_SECONDS = 2.0


class Watched(Protocol):
    """What the wait needs of the API client (client.Cluster)."""

    host: str
    policy: RetryPolicy

    def list_one(
        self, namespace: str, name: str, deadline: float
    ) -> tuple[dict[str, Any] | None, str]: ...

    def pods_until(
        self, namespace: str, name: str, deadline: float
    ) -> list[dict[str, Any]] | None: ...

    def list_isvc(self, namespace: str, **kwargs: Any) -> Any: ...


def wait_ready(
    cluster: Watched,
    namespace: str,
    name: str,
    expect: Expectation,
    timeout: float,
    poll: float = 10.0,
) -> dict[str, Any]:
    """Watch the InferenceService until the rollout ``expect`` describes serves (see
    readiness.py: the status, the revisions and the pods that carry its rollout id, never
    observedGeneration alone); return it.

    Raises NotReady as soon as KServe or this rollout's pods report a terminal failure,
    and ReadyTimeout with what is still missing at the deadline, which holds even when the
    API server stops answering.
    """
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    missing = ""
    api_problem = ""
    stages = StageLog(f"{namespace}/{name}", log)
    # While only the pods are missing, look at them often: a pod turning Ready changes
    # nothing in the InferenceService that a watch would see (Standard mode).
    interval = [poll]
    try:
        for isvc in _states(cluster, namespace, name, deadline, lambda: interval[0]):
            pods: list[dict[str, Any]] | None = None
            if isvc is None:  # a quiet interval: look at the pods
                if last is None:
                    continue
                isvc = last
                pods = cluster.pods_until(namespace, name, deadline)
                failure = pod_failure(of_rollout(pods, expect))
                if failure:
                    raise NotReady(f"InferenceService {namespace}/{name} cannot start: {failure}")
            last = isvc
            verdict = judge(isvc, expect, pods)
            if verdict.failure:
                raise NotReady(f"InferenceService {namespace}/{name} failed: {verdict.failure}")
            if pods is None:  # a new state: the pods decide, and tell the stage
                pods = cluster.pods_until(namespace, name, deadline)
                if pods is None and verdict.waiting == READING_PODS:
                    raise NotReady(
                        f"cannot read the pods of {namespace}/{name}, which tell whether the "
                        "new model serves; grant list on pods (deploy/rbac.yaml)"
                    )
                verdict = judge(isvc, expect, pods)
            if verdict.ready:
                stages.update(isvc, expect, None, "")
                return isvc
            missing = verdict.waiting
            interval[0] = min(poll, 1.0) if ready_condition(isvc) else poll
            stages.update(isvc, expect, pods, missing)
    except ClusterError as e:
        # Retries bounded by the deadline gave up as it came: a timeout, said as one.
        if isinstance(e, NotReady) or deadline - time.monotonic() > cluster.policy.max_delay:
            raise
        api_problem = str(e)
    cause = _timeout_cause(last, missing) if last else "it was never seen"
    if api_problem:
        cause += f" (the API kept failing: {api_problem})"
    stuck = pod_failure(
        of_rollout(
            cluster.pods_until(namespace, name, time.monotonic() + _DIAGNOSIS_SECONDS), expect
        ),
        terminal_only=False,
    )
    raise ReadyTimeout(
        f"InferenceService {namespace}/{name} not ready after {timeout:.0f} s: {cause}"
        + (f"; pods: {stuck}" if stuck else "")
        + "; check `kubectl describe inferenceservice "
        + f"{name} -n {namespace}` or raise --timeout"
    )


def _states(
    cluster: Watched, namespace: str, name: str, deadline: float, poll: Callable[[], float]
) -> Iterator[dict[str, Any] | None]:
    """The object's states as they change; None after each quiet ``poll()`` interval.

    The watch resumes from the last resourceVersion it saw (objects and bookmarks) when
    the server ends or drops it; when that version is too old (410 Gone), it starts again
    from a fresh list's resourceVersion. Failures back off with jitter.
    """
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    resource_version: str | None = None
    failures = 0
    while time.monotonic() < deadline:
        if resource_version is None:
            current, resource_version = cluster.list_one(namespace, name, deadline)
            if current is None:
                raise NotReady(f"InferenceService {namespace}/{name} was deleted while waiting")
            yield current
        left = deadline - time.monotonic()
        seconds = max(1, int(min(poll(), left)))
        # A read timeout a little past the server's own end of the stream, and never past
        # the deadline: a stream that goes silent fails instead of hanging.
        read_timeout = max(0.5, min(seconds + 2.0, left + 0.5))
        saw_event = False
        try:
            stream = watch.Watch().stream(
                cluster.list_isvc,
                namespace=namespace,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=seconds,
                allow_watch_bookmarks=True,
                _request_timeout=(min(cluster.policy.connect_timeout, left), read_timeout),
            )
            for event in stream:
                obj = event["raw_object"]
                resource_version = obj["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK":  # progress without a change
                    continue
                if event["type"] == "DELETED":
                    raise NotReady(f"InferenceService {namespace}/{name} was deleted while waiting")
                saw_event = True
                yield obj
            failures = 0
        except ApiException as e:
            if e.status == 410:
                log.debug("watch: resourceVersion %s expired; listing afresh", resource_version)
                resource_version = None
            elif not transient(e):
                raise api_error(
                    f"watch InferenceService {namespace}/{name}", e, cluster.host
                ) from e
            else:
                failures += 1
        except Exception as e:
            if not transient(e):
                raise
            log.debug("watch failed (%s); resuming", type(e).__name__)
            failures += 1
        if failures:
            time.sleep(max(0.0, min(cluster.policy.delay(failures), deadline - time.monotonic())))
        if not saw_event:
            yield None


def _timeout_cause(isvc: dict[str, Any], missing: str) -> str:
    """What the status says at the deadline, and what the rollout still lacked."""
    described = describe_status(isvc)
    if missing and described == "no condition reported yet":
        return missing
    return f"{missing}; {described}" if missing else described
