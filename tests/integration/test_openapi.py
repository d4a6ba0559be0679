"""The OpenAPI document stays true: schemathesis generates requests from it and the live
service must answer each with a documented status, content type and body shape."""
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

pytestmark = pytest.mark.integration
load_all_checks()
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_document_is_served_and_describes_the_api(service):
    doc = requests.get(service.base_url + "/api/v1/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/consoles", "/api/v1/consoles/{id}", "/api/v1/consoles/{id}/extend",
            "/api/v1/consoles/{id}/events", "/api/v1/consoles/{id}/recording/{part}/thumbnail",
            "/api/v1/consoles/{id}/output",
            "/api/v1/sessions", "/healthz", "/readyz",
            "/metrics"} <= set(doc["paths"])


def test_the_live_service_answers_as_its_openapi_document_says(service):
    doc = requests.get(service.base_url + "/api/v1/openapi.json", timeout=5).json()
    schema = schemathesis.openapi.from_dict(doc)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {service.api_key}"}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # Random cases from the schema, and the document's own examples.
        cases = st.one_of(operation.as_strategy(), *operation.get_strategies_from_examples())

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def check(case):
            response = case.call(base_url=service.base_url, session=session, headers=headers)
            assert response.status_code < 500 or response.status_code in (501, 502, 503, 504)
            case.validate_response(response, checks=CHECKS)
        try:
            check()
        except AssertionError as e:
            failures.append(f"{operation.label}: {str(e)[:500]}")
        except Exception as e:                       # schemathesis' own failure classes
            failures.append(f"{operation.label}: {type(e).__name__}: {str(e)[:500]}")
    assert not failures, "\n".join(failures)
    assert "Traceback" not in service.log_text()
