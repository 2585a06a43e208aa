"""The console app in-process, without a session: where people are sent, and the
headers every answer carries. (The pages themselves run against the real stack in
tests/e2e/test_console.py.)"""

import pytest
from fastapi.testclient import TestClient

from console.bootstrap import create_app
from tests.unit.console.test_signin import settings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(settings()), follow_redirects=False) as client:
        yield client


def test_a_page_without_a_session_goes_to_sign_in_and_comes_back(client):
    answer = client.get("/alerts/a1?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Falerts%2Fa1%3Fx%3D1"


def test_the_inbox_refresh_after_the_session_ended_sends_the_browser_to_sign_in(client):
    answer = client.get(
        "/inbox/rows",
        headers={"HX-Request": "true", "HX-Current-URL": "http://127.0.0.1:8000/inbox"},
    )
    assert answer.status_code == 200
    assert answer.headers["HX-Redirect"] == "/signin?next=%2Finbox"


def test_a_form_sent_after_the_session_ended_comes_back_saying_it_was_not_saved(client):
    answer = client.post(
        "/alerts/a1/ack",
        data={"csrf_token": "x"},
        headers={"referer": "http://127.0.0.1:8000/alerts/a1"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Falerts%2Fa1%3Funsaved%3D1"


def test_sign_out_without_a_session_just_says_signed_out(client):
    answer = client.post("/signout")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signed-out"


def test_every_answer_carries_the_security_headers_and_errors_are_pages(client):
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert "Not found" in answer.text
    assert "Traceback" not in answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert client.get("/healthz").json() == {"status": "alive", "service": "console"}
