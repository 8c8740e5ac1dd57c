"""Schemathesis against the published OpenAPI schema of a real stack: no 5xx, no drift.

All phases, stateful included: schemathesis infers the links between the stream operations
(open, push, read, close) from the schema and runs sequences of them (about 550 requests,
under 20 s on two cores), so it runs with ``make test``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import sidecar_url, start_stack_sidecar

from serving.launch import Service

pytestmark = pytest.mark.integration

# Checked: no server error, and every answer matches the schema (status code, content
# type, headers, body). Left out, with the reason:
# - positive_data_acceptance: a schema cannot say "a decodable JPEG", so schema-valid
#   random bytes are rightly refused with 400 bad_image;
# - negative_data_rejection: it counts unknown extra headers as invalid data;
# - allow_header_conformance: Starlette's 405 lists the methods of one route only.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,missing_required_header,"
    "unsupported_method,use_after_free,ensure_resource_availability"
)


@pytest.fixture(scope="module")
def fuzzed(
    triton: Service, redis_server: Service, tiny_repository: Path, service_logs: Path
) -> Iterator[Service]:
    """A sidecar of its own: the fuzzer's refusals stay out of the other tests' metrics."""
    service = start_stack_sidecar(
        triton, redis_server, tiny_repository, service_logs, redis_prefix="fuzz:"
    )
    yield service
    service.stop()


def test_schemathesis_finds_no_server_error(fuzzed: Service, tmp_path: Path) -> None:
    st = Path(sys.executable).parent / "st"
    argv = [str(st), "run", f"{sidecar_url(fuzzed)}/openapi.json", "--checks", CHECKS]
    argv += ["--max-examples", "100", "--workers", "1", "--seed", "1"]
    argv += ["--phases", "examples,coverage,fuzzing,stateful"]
    run = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "No issues found" in run.stdout or "passed" in run.stdout, report
    assert "Stateful" in run.stdout and "Scenarios:" in run.stdout, report
