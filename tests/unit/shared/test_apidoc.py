"""Every status a service answers is in its OpenAPI document: what the fuzzing of
each API found undocumented (401 and 403 from the token check, 400 for a body that
is not JSON, 413 for one too large, 404 for an unknown id, /metrics as plain text,
the audit's CSV and NDJSON exports) stays documented."""

import pytest

from devtools.configdoc import openapi_documents
from shared.apidoc import with_errors

DOCUMENTS = openapi_documents()


def operations(service: str):
    for path, ops in DOCUMENTS[service]["paths"].items():
        for method, op in ops.items():
            yield path, method, op


@pytest.mark.parametrize("service", sorted(DOCUMENTS))
def test_every_operation_documents_the_errors_it_can_meet(service):
    for path, method, op in operations(service):
        answers = set(op["responses"])
        where = f"{service} {method.upper()} {path}"
        if path.startswith("/v1/calendars/"):
            assert "security" not in op, (
                where
            )  # the key in the address is the credential
        elif path.startswith("/v1/"):
            assert {"401", "403"} <= answers, where
        if "requestBody" in op:
            assert {"400", "413"} <= answers, where
        if "{" in path:
            assert "404" in answers, where


def test_an_error_answer_is_documented_as_a_problem_with_its_detail():
    document = {
        "paths": {
            "/v1/things/{id}": {
                "post": {"security": [{"HTTPBearer": []}], "requestBody": {}}
            }
        }
    }
    with_errors(document)
    answers = document["paths"]["/v1/things/{id}"]["post"]["responses"]
    assert sorted(answers) == ["400", "401", "403", "404", "413"]
    schema = answers["401"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}
    assert document["components"]["schemas"]["Problem"]["required"] == ["detail"]


def test_what_is_not_json_is_documented_with_its_own_type():
    intake = DOCUMENTS["intake"]["paths"]
    assert "text/plain" in intake["/metrics"]["get"]["responses"]["200"]["content"]
    audit = DOCUMENTS["audit"]["paths"]
    for path in ("/v1/audit/entries", "/v1/audit/compliance"):
        content = audit[path]["get"]["responses"]["200"]["content"]
        assert {"application/json", "text/csv", "application/x-ndjson"} <= set(content)
    key = audit["/v1/audit/public-key"]["get"]["responses"]["200"]["content"]
    assert "application/x-pem-file" in key


def test_a_conflict_the_fuzz_met_is_documented():
    complete = DOCUMENTS["followup"]["paths"]["/v1/prompts/{prompt_id}/complete"]
    assert "409" in complete["post"]["responses"]
