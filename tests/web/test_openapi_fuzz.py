"""The REST API against its own OpenAPI document, driven by a schema-based fuzzer (Schemathesis).

Every operation the app documents gets generated requests — valid ones and, through Hypothesis,
odd ones (huge numbers, empty strings, unicode, missing fields) — sent with a real secret API key
to the app on a fresh data folder. What must hold for all of them: no 5xx (bad input is a 4xx
naming the field), and every answer with a documented status code matches its documented schema
and content type. Operations added later are covered without touching this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from dashboard_fixtures import Site
from wayline.api import create_app
from wayline.config import Settings

#: Examples per operation: enough to reach the validation edges of each parameter, few enough
#: for the whole document to run in a minute or two on a busy two-core machine.
EXAMPLES_PER_OPERATION = 12


def _rest_operations() -> list[tuple[str, str]]:
    # Read at collection time, so each operation is its own test (and its own line in a report).
    # Building the app opens nothing: the stores are opened by its lifespan, not run here.
    app = create_app(Settings(home=Path("unused-wayline-data")))
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    ]


def test_the_openapi_document_lists_the_rest_api(site: Site) -> None:
    # Guards the fuzzer below against fuzzing nothing: a broken document or an empty router.
    doc = site.client.get("/openapi.json").json()
    rest = [p for p in doc["paths"] if p.startswith("/api/v1/")]
    assert "/api/v1/api-keys" in rest
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary") or operation.get("description"), (method, path)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), _rest_operations())
def test_no_operation_fails_or_breaks_its_schema(method: str, path: str, site: Site) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", site.app)[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=site.a.headers)
        case.validate_response(
            response,
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        )

    check()
