"""The CLI's output: every command's result as text (human), JSON or YAML, redacted.

Nothing below the CLI prints; this module alone writes results to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from kserve_predictor.kserve.isvc import describe_split
from kserve_predictor.redact import Redactor

log = logging.getLogger("kserve_predictor")


def emit(args: argparse.Namespace, redactor: Redactor, data: dict[str, Any], human: str) -> None:
    if args.output == "json":
        text = json.dumps(data, indent=2, sort_keys=True)
    elif args.output == "yaml":
        import yaml

        text = yaml.safe_dump(data, sort_keys=True).rstrip("\n")
    else:
        text = human
    print(redactor(text))


def progress(args: argparse.Namespace) -> Any:
    """Copy progress on stderr when it is a terminal and the output is not JSON."""
    from kserve_predictor.progress import for_terminal

    return for_terminal(sys.stderr, wanted=args.output != "json")


def detection(d: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(d["library_versions"].items()))
    return "\n".join(
        [
            f"model:            {d['url']}",
            f"format:           {d['format']} ({d['model_path']}"
            + (f", {d['serialization']})" if d["serialization"] else ")"),
            f"engine:           {d['engine']} (runtime {d['runtime']}, protocol {d['protocol']})"
            if d["engine"]
            else f"engine:           none: {d['problem']}",
            f"engines:          {', '.join(d['engines']) or 'none'}",
            f"runtime version:  {d['runtime_version'] or 'the runtime default'}",
            f"libraries:        {versions or 'not recorded'}",
            f"signature:        {len(d['signature']['inputs'])} inputs, {len(d['signature']['outputs'])} outputs",
            f"input example:    {'yes' if d['input_example'] else 'no'}",
            *_compatibility(d),
        ]
    )


def _compatibility(d: dict[str, Any]) -> list[str]:
    c = d.get("compatibility")
    if not c:
        return []
    source = d.get("runtime_source") or "defaults"
    where = "this cluster" if source.startswith("cluster") else "KServe's v0.20.0 default runtimes"
    lines = [
        f"runtime:          {c['runtime'] or 'none'} ({c['image'] or 'no image'}; from {where})",
        f"compatibility:    {c['status']}",
    ]
    lines += [f"  - {problem}" for problem in c["problems"]]
    if d.get("choice"):
        lines.append(f"choice:           {d['choice']}")
    return lines


def conversion(result: Any) -> tuple[dict[str, Any], str]:
    data = {
        "engine": result.engine,
        "location": result.location,
        "copied": result.copied,
        "written": result.written,
        "skipped": result.skipped,
        "deleted": result.deleted,
        "bytes_copied": result.bytes_copied,
    }
    summary = (
        f"{len(result.copied)} copied, {len(result.written)} written, "
        f"{len(result.skipped)} up to date, {len(result.deleted)} removed"
    )
    lines = [f"converted for {result.engine}: {result.location}", summary]
    lines += [f"  copied   {f}" for f in result.copied] + [
        f"  written  {f}" for f in result.written
    ]
    lines += [f"  kept     {f}" for f in result.skipped] + [
        f"  removed  {f}" for f in result.deleted
    ]
    return data, "\n".join(lines)


def deployment(command: str, settings: Any, result: Any) -> str:
    """``deploy``'s summary; the step (``run``) prints only the prediction URL."""
    human = str(result.prediction_url)
    if command != "run":
        human = (
            f"{result.app_name} ready in {result.namespace} ({result.engine}, {result.protocol}); "
            f"changed: {', '.join(result.changed) or 'nothing'}\n{result.prediction_url}"
        )
        if result.protocol == "grpc-v2":
            from kserve_predictor.ops.deploy_plan import GRPC_METHOD

            human += f"\ngRPC: call {GRPC_METHOD} with model_name {result.app_name}"
        if settings.options.canary_traffic_percent is not None:
            human += f"\ntraffic: {describe_split(result.split)}"
    return human


def dry_run(args: argparse.Namespace, redactor: Redactor, settings: Any, result: Any) -> None:
    """The plan and the manifests: human (the plan as YAML comments, then the manifests), json,
    or yaml (only the manifests, one multi-document stream for a GitOps repository; the plan
    goes to stderr). Secret values are redacted unless --show-secrets asked for them."""
    from kserve_predictor.kserve.manifests import redacted, to_yaml

    show = bool(getattr(args, "show_secrets", False))
    shown = result.manifests if show else [redacted(m) for m in result.manifests]
    client = result.dry_run == "client"
    plan = (
        f"# plan: deploy {settings.model_url} as {result.app_name} in {result.namespace}\n"
        f"# engine {result.engine} (protocol {result.protocol}), spec style {result.spec_style}\n"
        f"# converted layout: {result.storage_uri}\n"
        + _plan_compatibility(result.compatibility)
        + _plan_options(settings.options)
        + (
            "# dry run (client): rendered from the model's metadata; no kubeconfig read, no "
            "Kubernetes or FuseML request made\n"
            + "".join(f"# not checked: {item}\n" for item in result.not_checked)
            if client
            else "# dry run (server): checked by the cluster's dry-run apply\n"
        )
        + "# nothing was written (dry run)\n"
    )
    # Asked for explicitly, the Secret's values are printed; every other mask stays.
    mask = redactor.without(settings.secrets()) if show else redactor
    if args.output == "yaml":
        for line in plan.splitlines():
            log.info("%s", line.removeprefix("# "))
        print(mask(to_yaml(shown, redact_secrets=False).rstrip("\n")))
    elif args.output == "json":
        data = {**result.as_dict(), "manifests": shown}
        print(mask(json.dumps(data, indent=2, sort_keys=True)))
    else:
        print(mask(plan + to_yaml(shown, redact_secrets=False).rstrip("\n")))


def _plan_options(options: Any) -> str:
    from kserve_predictor.settings.serving import described

    given = described(options)
    return "".join(f"# {name}: {json.dumps(value)}\n" for name, value in given.items())


def _plan_compatibility(c: dict[str, Any] | None) -> str:
    if not c:
        return ""
    line = f"# compatibility: {c['status']} on {c['runtime']} ({c['image']})"
    return line + "".join(f"\n#   - {p}" for p in c["problems"]) + "\n"


def foreground(name: str, server: Any, data: dict[str, Any]) -> str:
    human = (
        f"serving {data['model']} as {name} ({data['engine']}, {data['protocol']}) "
        f"from {data['folder']}\nprediction URL: {server.url}"
    )
    if server.curl:
        human += "\ntry it:\n  " + server.curl
    return human


def local_deployment(name: str, result: Any) -> str:
    app = result.app
    human = f"{name} serving locally (pid {app.pid}, {app.engine}, {app.protocol})"
    if result.replaced is not None:
        human += f"; replaced pid {result.replaced}"
    if result.smoke_ms is not None:
        human += f"\nsmoke test: {result.smoke_rows} rows answered in {result.smoke_ms:.1f} ms"
    return human + "\n" + app.prediction_url


def local_list(apps: list[dict[str, Any]]) -> str:
    lines = [
        f"{a['name']:<24} {'running' if a['running'] else 'stopped':<8} {a['engine']:<10} {a['prediction_url']}"
        for a in apps
    ]
    return "\n".join(lines) or "no local deployments"


def status(info: dict[str, Any]) -> str:
    if info["target"] == "local":
        lines = [
            f"name:            {info['name']} (local, pid {info['pid']})",
            f"ready:           {info['running']}",
            f"engine:          {info['engine']} (protocol {info['protocol']})",
            f"workers:         {info['workers']}",
            f"model:           {info['model']}",
            f"prediction URL:  {info['prediction_url']}",
            f"log:             {info['log']}",
        ]
    else:
        lines = [
            f"name:            {info['name']} ({info['namespace']})",
            f"ready:           {info['ready']}"
            + (f" ({info['problem']})" if info["problem"] else ""),
            f"engine:          {info['engine'] or 'unknown'} (protocol {info['protocol']})",
            f"storage:         {info['storage_uri']}",
            f"mode:            {info['deployment_mode'] or 'not reported'}",
            f"prediction URL:  {info['prediction_url'] or '-'}",
            f"FuseML:          {info['fuseml'] or 'not registered'}",
        ]
        lines += _split(info.get("split"))
    return "\n".join(lines)


def _split(view: dict[str, Any] | None) -> list[str]:
    if not view:
        return []
    percent = view["canary_traffic_percent"]
    lines = [
        "canary:          "
        + (f"{percent}% asked (canaryTrafficPercent)" if percent is not None else "none"),
        f"revisions:       latest {view['latest_created_revision']}, ready "
        f"{view['latest_ready_revision'] or '-'}, rolled out {view['latest_rolledout_revision'] or '-'}",
        "traffic:" + ("" if view["traffic"] else "         none routed yet"),
    ]
    for t in view["traffic"]:
        lines.append(
            f"  {t['percent']:>3}% {t['revision']:<28} {t['role']:<9} "
            f"{'ready' if t['ready'] else 'not ready':<10}{t['storage_uri'] or '(model not recorded)'}"
        )
    if view["previous_storage_uri"]:
        lines.append(f"previous model:  {view['previous_storage_uri']}")
    return lines


def sync_states(states: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{s['namespace']}/{s['app']}: {s['model']}@{s['alias']} wanted {s['wanted'] or '-'}, "
        f"served {s['served'] or '-'}: {s['state']}"
        + (f" ({s['message']})" if s["message"] else "")
        for s in states
    )


def gc(result: Any) -> str:
    lines = [f"layouts of {result.model}:"] if result.layouts else []
    for use in result.layouts:
        verb = "remove" if use.remove else "keep"
        lines.append(f"  {verb:<7}{use.name + '/':<36}{use.reason}")
    if result.unchecked:
        lines.append(
            "cannot list InferenceServices in "
            + ", ".join(result.unchecked)
            + ": every layout kept; grant the ClusterRole fuseml-kserve-predictor-gc "
            "(deploy/rbac.yaml) or name the namespaces that may use the model with --namespace"
        )
    going = [u for u in result.layouts if u.remove]
    if result.dry_run:
        lines.append(f"would remove {len(going)} layout(s); nothing was removed (dry run)")
    else:
        lines.append(f"removed {len(result.removed)} layout(s)")
    return "\n".join(lines)


def deleted(name: str, removed: list[str]) -> str:
    return "\n".join(f"deleted {item}" for item in removed) or f"nothing named {name} to delete"
