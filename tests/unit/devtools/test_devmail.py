"""The development mail catcher: real SMTP in, a web inbox and JSON out, on loopback
ports."""

import html
import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from devtools.devmail import DEV_NOTICE, DevMailCatcher, html_to_text, linkify
from devtools.devstack import free_port

pytestmark = pytest.mark.unit

ALERT_URL = "http://127.0.0.1:8000/alerts/abc"


@pytest.fixture
def catcher() -> Iterator[DevMailCatcher]:
    mail = DevMailCatcher(smtp_port=free_port(), http_port=free_port())
    mail.start()
    try:
        yield mail
    finally:
        mail.stop()


@pytest.fixture
def client(catcher: DevMailCatcher) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=catcher.url, timeout=5) as http:
        yield http


def send(
    catcher: DevMailCatcher,
    *,
    subject: str,
    text: str,
    to: str = "oncall@example.org",
    html_body: str | None = None,
) -> None:
    message = EmailMessage()
    message["From"] = "Missing From Care <alerts@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html_body is not None:
        message.add_alternative(html_body, subtype="html")
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=5) as smtp:
        smtp.send_message(message)


def send_two(catcher: DevMailCatcher) -> None:
    send(catcher, subject="First: weekly summary", text="Nothing due this week.\n")
    send(
        catcher,
        subject="Deadline <script>alert(1)</script> in 2 hours",
        text=(
            f"Report to NCMEC is due. Open {ALERT_URL}.\n"
            "<script>alert(2)</script> & <b>bold</b>\n"
        ),
        to="supervisor@example.org",
    )


def test_the_inbox_lists_messages_newest_first(catcher, client):
    send_two(catcher)

    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    body = page.text
    assert '<html lang="en">' in body
    assert "<title>" in body
    assert '<meta name="viewport"' in body
    assert "<main>" in body
    assert "<h1>" in body
    assert DEV_NOTICE in body
    assert "<script" not in body  # neither ours nor the subject's
    escaped = html.escape("Deadline <script>alert(1)</script> in 2 hours")
    newest, older = body.index(escaped), body.index("First: weekly summary")
    assert newest < older
    links = re.findall(r'<a href="(/messages/\d+)">([^<]*)</a>', body)
    assert [text for _, text in links] == [escaped, "First: weekly summary"]
    assert "supervisor@example.org" in body
    assert "Missing From Care &lt;alerts@example.org&gt;" in body
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body)


def test_a_message_page_links_urls_and_escapes_the_rest(catcher, client):
    send_two(catcher)
    [newest, _] = client.get("/api/messages").json()

    page = client.get(f"/messages/{newest['id']}")

    assert page.status_code == 200
    body = page.text
    assert f'<a href="{ALERT_URL}" rel="noreferrer">{ALERT_URL}</a>.' in body
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in body
    assert "<script" not in body
    assert "<b>" not in body
    assert '<a href="/">Back to the inbox</a>' in body
    assert DEV_NOTICE in body
    assert re.search(r"<pre>[^<]*Report to NCMEC is due", body)
    assert "content-security-policy" in page.headers


def test_the_api_returns_the_messages(catcher, client):
    send_two(catcher)

    answer = client.get("/api/messages")

    assert answer.status_code == 200
    newest, older = answer.json()
    assert newest["id"] > older["id"]
    assert newest["subject"] == "Deadline <script>alert(1)</script> in 2 hours"
    assert newest["from"] == "Missing From Care <alerts@example.org>"
    assert newest["to"] == ["supervisor@example.org"]
    assert ALERT_URL in newest["text"]
    assert newest["received_at"] >= older["received_at"]
    assert older["subject"] == "First: weekly summary"
    assert older["text"] == "Nothing due this week.\n"
    assert set(newest) == {"id", "received_at", "from", "to", "subject", "text"}
    assert client.get(f"/api/messages/{older['id']}").json() == older
    assert [m.subject for m in catcher.messages()] == [
        newest["subject"],
        older["subject"],
    ]


def test_the_plain_part_is_shown_and_html_only_mail_is_made_text(catcher, client):
    send(
        catcher,
        subject="both",
        text="plain text wins",
        html_body="<p>the html part</p>",
    )
    rich_only = EmailMessage()
    rich_only["From"] = "alerts@example.org"
    rich_only["To"] = "a@example.org"
    rich_only["Subject"] = "html only"
    rich_only.set_content(
        "<html><head><style>p {}</style></head><body><p>Hello <b>there</b></p>"
        f"<p><a href='{ALERT_URL}'>Open the alert</a></p><script>x()</script>"
        "</body></html>",
        subtype="html",
    )
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=5) as smtp:
        smtp.send_message(rich_only, to_addrs=["a@example.org", "bcc@example.org"])

    rich, both = client.get("/api/messages").json()

    assert both["text"].strip() == "plain text wins"
    assert rich["text"] == f"Hello there\n\nOpen the alert ({ALERT_URL})"
    assert rich["to"] == ["a@example.org", "bcc@example.org"]
    assert f'<a href="{ALERT_URL}"' in client.get(f"/messages/{rich['id']}").text


def test_clearing_empties_the_inbox(catcher, client):
    send_two(catcher)

    answer = client.delete("/api/messages")

    assert answer.status_code == 200
    assert answer.json() == {"cleared": 2}
    assert client.get("/api/messages").json() == []
    assert "No messages yet" in client.get("/").text

    send_two(catcher)
    assert client.post("/api/messages/clear").json() == {"cleared": 2}
    assert client.get("/api/messages").json() == []

    send_two(catcher)
    button = client.post("/clear")  # the inbox page's form
    assert button.status_code == 303
    assert button.headers["location"] == "/"
    assert catcher.messages() == []


def test_unknown_messages_and_pages_are_404(catcher, client):
    send_two(catcher)
    for path in ("/messages/999", "/messages/abc", "/nowhere"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "<h1>Not found</h1>" in page.text
        assert '<a href="/">Back to the inbox</a>' in page.text
    assert client.get("/api/messages/999").status_code == 404


def test_requests_for_another_host_name_are_refused(client):
    # A page on a DNS name pointed at 127.0.0.1 must not read the inbox.
    answer = client.get("/api/messages", headers={"Host": "attacker.example"})
    assert answer.status_code == 421


def test_keep_bounds_the_inbox():
    mail = DevMailCatcher(smtp_port=free_port(), http_port=free_port(), keep=3)
    with mail:
        for number in range(5):
            send(mail, subject=f"message {number}", text="x")
        subjects = [m["subject"] for m in httpx.get(f"{mail.url}/api/messages").json()]
    assert subjects == ["message 4", "message 3", "message 2"]


def test_stop_frees_both_ports():
    smtp_port, http_port = free_port(), free_port()
    first = DevMailCatcher(smtp_port=smtp_port, http_port=http_port)
    first.start()
    send(first, subject="before the restart", text="x")
    httpx.get(f"{first.url}/api/messages")  # a connection to the inbox, too
    first.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.url}/api/messages")

    second = DevMailCatcher(smtp_port=smtp_port, http_port=http_port)
    second.start()
    try:
        send(second, subject="after the restart", text="x")
        [message] = httpx.get(f"{second.url}/api/messages").json()
        assert message["subject"] == "after the restart"
    finally:
        second.stop()
    second.stop()  # stopping twice is harmless


def test_a_taken_port_fails_start_and_leaves_nothing_running(catcher):
    smtp_port, http_port = free_port(), free_port()
    http_clash = DevMailCatcher(smtp_port=smtp_port, http_port=catcher.http_port)
    with pytest.raises(OSError, match="in use"):
        http_clash.start()
    smtp_clash = DevMailCatcher(smtp_port=catcher.smtp_port, http_port=http_port)
    with pytest.raises(OSError, match="in use"):
        smtp_clash.start()
    assert not http_clash.running
    assert not smtp_clash.running
    again = DevMailCatcher(smtp_port=smtp_port, http_port=http_port)
    again.start()  # the failed attempts let go of the ports they had bound
    again.stop()


def test_port_zero_picks_free_ports():
    with DevMailCatcher(smtp_port=0, http_port=0) as mail:
        assert mail.smtp_port > 0
        assert mail.http_port > 0
        assert mail.url == f"http://127.0.0.1:{mail.http_port}"
        send(mail, subject="hello", text="x")
        assert [m.subject for m in mail.messages()] == ["hello"]


def test_url_and_ports():
    mail = DevMailCatcher(smtp_port=2525, http_port=8080)
    assert (mail.smtp_port, mail.http_port) == (2525, 8080)
    assert mail.url == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="keep"):
        DevMailCatcher(keep=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "see http://a.example/x.",
            'see <a href="http://a.example/x" rel="noreferrer">http://a.example/x</a>.',
        ),
        (
            "(https://a.example/p_(q))",
            '(<a href="https://a.example/p_(q)" rel="noreferrer">'
            "https://a.example/p_(q)</a>)",
        ),
        (
            'x <a href="http://a.example/?q=1&r=2">',
            'x &lt;a href=&quot;<a href="http://a.example/?q=1&amp;r=2" '
            'rel="noreferrer">http://a.example/?q=1&amp;r=2</a>&quot;&gt;',
        ),
        ("ftp://a.example/ and http:// alone", "ftp://a.example/ and http:// alone"),
        ("javascript:alert(1)", "javascript:alert(1)"),
    ],
)
def test_linkify(text, expected):
    assert linkify(text) == expected


def test_html_to_text_skips_scripts_and_keeps_link_targets():
    assert html_to_text(
        "<script>bad()</script><p>Hi &amp; bye</p><a href='https://a.example/'>go</a>"
    ) == ("Hi & bye\ngo (https://a.example/)")
