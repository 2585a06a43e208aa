"""Every answer a route can give, in its OpenAPI document: the errors that our
middleware and dependencies answer for every route (a body that is not JSON, one too
large, a missing token, a missing role, an unknown id) are added to each operation
that can meet them, so that a client (and schemathesis, in the tests) finds every
status it is answered with documented. Worked on the built document: an operation
that needs a token has ``security``, one with a body ``requestBody``."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class Problem(BaseModel):
    """An error answer: what happened and what to do next."""

    detail: str


PROBLEM = Problem.model_json_schema()
AUTH_ERRORS = {
    "401": "No valid bearer token (the answer says why)",
    "403": "The token lacks a role this needs",
}
BODY_ERRORS = {
    "400": "The body is not valid JSON",
    "413": "The body is larger than the service's MAX_MESSAGE_BYTES setting",
}
NOT_FOUND = {"404": "Not found (or not in the caller's counties)"}


def document_errors(app: FastAPI) -> None:
    """Add the shared error answers to each operation of the built document."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            with_errors(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_errors(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", PROBLEM)
    problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            errors: dict[str, str] = {}
            if operation.get("security"):
                errors |= AUTH_ERRORS
            if "requestBody" in operation:
                errors |= BODY_ERRORS
            if "{" in path:
                errors |= NOT_FOUND
            answers = operation.setdefault("responses", {})
            for status, description in errors.items():
                answers.setdefault(
                    status, {"description": description, "content": problem}
                )
