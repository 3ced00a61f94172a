"""Schemathesis over the OpenAPI schema, against the real app, Redis and worker: every check passes.

Every operation gets generated valid and invalid requests, with and without a valid API key; the API
must never answer 5xx, must refuse what the schema forbids, must enforce auth, and its answers must
match the schema (status codes, content types, headers, bodies).
"""
from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from core.settings import Settings

API_KEY = "schemathesis-key"  # with keys configured, the auth checks also verify the 401s
CONFIG = f"""
[generation]
allow-extra-parameters = false

[auth.openapi.HTTPBearer]
bearer = "{API_KEY}"
"""
counted: Counter = Counter()


class SessionApp:
    """The ASGI app under test. The schema is read at import, before the session's Redis exists
    (``/openapi.json`` needs none); the fixture below then points this at the real app."""

    def __init__(self):
        self.app = create_app(Settings(redis_url="redis://127.0.0.1:9/0"))

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


session_app = SessionApp()
schema = schemathesis.openapi.from_asgi("/openapi.json", session_app, config=SchemathesisConfig.from_str(CONFIG))


@schema.hook
def after_validate(context, case, response, results):
    counted["checks"] += len(results)
    counted["failures"] += sum(r.failure is not None for r in results)


@pytest.fixture(scope="module", autouse=True)
def real_app(settings, worker):
    session_app.app = create_app(settings.model_copy(update={"rate_limit_submits": 0, "api_keys": API_KEY}))
    yield
    print(f"\nschemathesis: {counted['cases']} cases, {counted['checks']} checks run, {counted['failures']} failures")


@schema.parametrize()
@hypothesis_settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_and_never_answers_5xx(case):
    counted["cases"] += 1
    # A schema-valid upload may still be refused for its content (a 1x1 PNG is 400): the schema cannot say that.
    content_checked = case.method == "POST" and case.path == "/v1/jobs"
    case.call_and_validate(excluded_checks=[positive_data_acceptance] if content_checked else [])
