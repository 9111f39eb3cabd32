"""The command line: parse, build settings, call the library, map errors to exit codes.

Nothing below this module prints; this module alone writes to stdout/stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import KservePredictorError
from .redact import RedactingFormatter, Redactor

log = logging.getLogger("kserve_predictor")

Handler = Callable[[argparse.Namespace, Redactor], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    redactor = Redactor()
    _configure_logging(args.verbose, redactor)
    handler: Handler = args.handler
    try:
        return handler(args, redactor)
    except KservePredictorError as e:
        return _fail(redactor, str(e), e.exit_code)
    except KeyboardInterrupt:
        return _fail(redactor, "interrupted", 130)
    except Exception as e:  # a bug: say so in one line; the traceback only in verbose logs
        log.debug("unexpected error", exc_info=True)
        return _fail(redactor, f"internal error ({type(e).__name__}: {e}); please report it", 1)


def _fail(redactor: Redactor, message: str, code: int) -> int:
    print(f"error: {redactor(message)}", file=sys.stderr)
    return code


def _configure_logging(verbose: bool, redactor: Redactor) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(redactor, "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:  # boto3 and urllib3 debug logs carry signed headers: keep them at INFO
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.INFO)


def _emit(args: argparse.Namespace, redactor: Redactor, data: dict[str, Any], human: str) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) if args.output == "json" else human
    print(redactor(text))


# --- commands ---------------------------------------------------------------------------


def _location(url: str, redactor: Redactor) -> Any:
    from .modelurl import resolve
    from .settings import S3Settings

    s3 = S3Settings.from_env()
    for secret in s3.secrets():
        redactor.add(secret)
    return resolve(url, s3)


def cmd_detect(args: argparse.Namespace, redactor: Redactor) -> int:
    from .detect import detect

    detection = detect(_location(args.model_url, redactor), args.predictor, args.runtime_version)
    data = detection.as_dict()
    _emit(args, redactor, data, _human_detection(data))
    return 0


def _human_detection(d: dict[str, Any]) -> str:
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
        ]
    )


def cmd_convert(args: argparse.Namespace, redactor: Redactor) -> int:
    from .convert import convert
    from .detect import detect

    detection = detect(_location(args.model_url, redactor), args.predictor, args.runtime_version)
    result = convert(detection.location, detection.info, detection.require_engine(), args.name)
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
    _emit(args, redactor, data, "\n".join(lines))
    return 0


# --- parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from .engines import AUTO, ENGINES

    parser = argparse.ArgumentParser(
        prog="kserve-predictor",
        description="Deploy MLflow models to KServe (the FuseML KServe predictor step).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=_env_verbose(),
        help="debug logs (secrets redacted)",
    )
    common.add_argument(
        "--output", choices=("human", "json"), default="human", help="output format"
    )
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "model_url",
        metavar="URL",
        help="s3://bucket/path, a local folder, models:/name/version or runs:/id/path",
    )
    model.add_argument(
        "--predictor", default=AUTO, help=f"{AUTO} (default) or one of: {', '.join(ENGINES)}"
    )
    model.add_argument(
        "--runtime-version",
        default=None,
        help="runtime image tag (default: from the model, or the runtime's)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "detect", parents=[common, model], help="say what a model is and which engine serves it"
    )
    p.set_defaults(handler=cmd_detect)
    p = sub.add_parser(
        "convert", parents=[common, model], help="write the layout the engine's runtime loads"
    )
    p.add_argument(
        "--name",
        default="model",
        help="model name, used by Triton's repository layout (default: model)",
    )
    p.set_defaults(handler=cmd_convert)
    return parser


def _env_verbose() -> bool:
    return os.environ.get("FUSEML_VERBOSE", "").strip().lower() == "true"


if __name__ == "__main__":
    sys.exit(main())
