"""The command line: parse (parser.py), build settings and call one operation (commands.py),
render the result (render.py); errors become one line on stderr and an exit code here.

Nothing below the CLI prints; the CLI alone writes to stdout/stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from kserve_predictor.errors import KservePredictorError
from kserve_predictor.redact import RedactingFormatter, Redactor

log = logging.getLogger("kserve_predictor")

Handler = Callable[[argparse.Namespace, Redactor], int]

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from kserve_predictor.interfaces.cli.parser import build_parser

    args = build_parser().parse_args(argv)
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
    # Third-party chatter (urllib3 retry warnings, ...) stays out of normal output; our own
    # messages say what failed. Their debug logs carry signed headers: never below INFO.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)
