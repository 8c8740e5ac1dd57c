"""``python -m serving.sidecar``: run the sidecar with uvicorn.

Settings come from ``SIDECAR_*`` environment variables; the flags below override the
common ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from serving.sidecar.app import create_app
from serving.sidecar.http_limits import HttpLimits, guarded_protocol
from serving.sidecar.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    """Flags of ``python -m serving.sidecar``."""
    p = argparse.ArgumentParser(prog="python -m serving.sidecar", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--triton-url", default=None, help="Triton gRPC host:port")
    p.add_argument("--redis-url", default=None, help="redis://host:port/db")
    p.add_argument(
        "--contract-overrides",
        default=None,
        metavar="JSON",
        help="experiments only: replace fields of the served models' contracts, e.g. "
        '\'{"tracker": {"init_score_thr": 0.8}}\' (logged as a warning)',
    )
    p.add_argument("--print-openapi", action="store_true", help="print the OpenAPI JSON and exit")
    p.add_argument("--log-level", default="info")
    return p


#: Settings that moved into the model itself (its serving contract, per version).
RETIRED_VARIABLES = ("SIDECAR_IMG_SCALE", "SIDECAR_TRACKER", "SIDECAR_TRACKER_SETTINGS")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """``Settings()`` from the environment, overridden by the flags that were given.

    Raises:
        SystemExit: a retired variable is set (it would be ignored silently otherwise).
    """
    retired = [name for name in RETIRED_VARIABLES if name in os.environ]
    if retired:
        raise SystemExit(
            f"{', '.join(retired)}: no longer read. The resize rule and the tracker come from "
            "the served model's config (written by qdtrack export); to experiment with "
            "others set SIDECAR_CONTRACT_OVERRIDES, e.g. "
            '\'{"img_scale": [640, 640], "tracker": {"init_score_thr": 0.8}}\''
        )
    overrides: dict[str, Any] = {}
    if args.triton_url:
        overrides["triton_url"] = args.triton_url
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    if args.contract_overrides:
        overrides["contract_overrides"] = json.loads(args.contract_overrides)
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sidecar until interrupted."""
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    try:
        app = create_app(settings)
    except ValueError as exc:  # a setting that cannot work: say which, no traceback
        sys.stderr.write(f"python -m serving.sidecar: {exc}\n")
        return 2
    if args.print_openapi:
        sys.stdout.write(json.dumps(app.openapi(), indent=2) + "\n")
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    limits = HttpLimits(
        settings.max_header_bytes, settings.header_timeout_s, settings.body_timeout_s
    )
    cut = app.state.metrics.connections_cut
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        loop="asyncio",  # grpc.aio (the Triton client) runs on asyncio's own loop
        # httptools (the C parser: a fraction of h11's cost per request) with the limits
        http=guarded_protocol(limits, lambda reason: cut.labels(reason=reason).inc()),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
