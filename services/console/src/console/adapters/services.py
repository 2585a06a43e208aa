"""The four services' APIs, called with the signed-in person's access token.

The console holds no business data: whatever a page shows comes from here, and the
services decide what this person may see (roles, county scope). Their refusals come
back as exceptions a page turns into plain words: 401 (the sign-in expired), 403 (not
for this role), 404 (no such thing, or not in this person's counties: the services
do not tell the two apart), 422 (what was sent is wrong, field by field), and a
service that does not answer.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from console.domain.words import problem_words

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A service refused or failed; ``service`` names it for the person."""

    def __init__(self, service: str, status: int, detail: Any = None) -> None:
        super().__init__(f"{service} answered {status}")
        self.service = service
        self.status = status
        self.detail = detail


class SignInExpiredError(ServiceError):
    """401: the token was refused (expired, or the provider's keys changed)."""


class NotAllowedError(ServiceError):
    """403: the person's roles do not allow this."""


class NotFoundError(ServiceError):
    """404: nothing there, or not in the person's counties."""


class ConflictError(ServiceError):
    """409: it cannot be done in the state things are in (already done, closed)."""

    @property
    def reason(self) -> str:
        detail = self.detail.get("detail") if isinstance(self.detail, dict) else None
        return str(detail) if detail else ""


class InvalidError(ServiceError):
    """422: the request was refused; ``problems`` are ``(field, message)`` pairs."""

    @property
    def problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        detail = self.detail
        if isinstance(detail, dict):
            detail = detail.get("detail", detail)
        if isinstance(detail, list):
            for item in detail:
                if isinstance(item, dict):
                    loc = [str(p) for p in item.get("loc", []) if p not in ("body",)]
                    found.append((".".join(loc), problem_words(str(item.get("msg")))))
        elif detail:
            found.append(("", problem_words(str(detail))))
        return found


class UnavailableError(ServiceError):
    """The service did not answer, or failed (5xx)."""


_BY_STATUS: dict[int, type[ServiceError]] = {
    401: SignInExpiredError,
    403: NotAllowedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidError,
}


@dataclass(frozen=True)
class ServiceUrls:
    intake: str
    notifier: str
    followup: str
    audit: str

    def __getitem__(self, service: str) -> str:
        url: str = getattr(self, service)
        return url.rstrip("/")


class Api:
    """One person's view of the services: every call carries their token."""

    def __init__(self, client: httpx.AsyncClient, urls: ServiceUrls, token: str):
        self._client = client
        self._urls = urls
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = self._urls[service] + path
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            answer = await self._client.request(
                method,
                url,
                params=clean,
                json=json,
                headers={**self._headers, **(headers or {})},
            )
        except httpx.HTTPError as exc:
            logger.warning("%s did not answer: %s", service, type(exc).__name__)
            raise UnavailableError(service, 503) from None
        if answer.status_code >= 400:
            kind = _BY_STATUS.get(answer.status_code)
            if kind is InvalidError and method == "GET":
                kind = NotFoundError  # a malformed id in a link: nothing there
            if kind is None:
                logger.warning("%s answered %d", service, answer.status_code)
                kind = UnavailableError
            try:
                detail = answer.json()
            except ValueError:
                detail = None
            raise kind(service, answer.status_code, detail)
        return answer

    async def _json(self, method: str, service: str, path: str, **kw: Any) -> Any:
        return (await self._call(method, service, path, **kw)).json()

    # intake
    async def episode(self, episode_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "GET", "intake", f"/v1/episodes/{episode_id}"
        )
        return found

    async def record_notice(
        self, episode_id: str, notice: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "POST",
            "intake",
            f"/v1/episodes/{episode_id}/notifications",
            json=dict(notice),
            headers={"Idempotency-Key": idempotency_key},
        )
        return found

    # notifier
    async def obligations(
        self, *, episode_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._json(
            "GET",
            "notifier",
            "/v1/obligations",
            params={"episode_id": episode_id, "status": status, "limit": 1000},
        )
        return found

    async def alert(self, alert_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "GET", "notifier", f"/v1/alerts/{alert_id}"
        )
        return found

    async def alerts(self, episode_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._json(
            "GET", "notifier", "/v1/alerts", params={"episode_id": episode_id}
        )
        return found

    async def acknowledge(self, alert_id: str, note: str | None) -> dict[str, Any]:
        body = {"note": note} if note else {}
        found: dict[str, Any] = await self._json(
            "POST", "notifier", f"/v1/alerts/{alert_id}/ack", json=body
        )
        return found

    async def schedules(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._json(
            "GET", "notifier", "/v1/schedules"
        )
        return found

    async def add_cover(
        self, schedule: str, cover: Mapping[str, Any]
    ) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "POST", "notifier", f"/v1/schedules/{schedule}/overrides", json=dict(cover)
        )
        return found

    async def end_cover(self, schedule: str, cover_id: str, reason: str | None) -> None:
        await self._call(
            "DELETE",
            "notifier",
            f"/v1/schedules/{schedule}/overrides/{cover_id}",
            params={"reason": reason},
        )

    async def schedule_calendar(self, schedule: str) -> bytes:
        answer = await self._call(
            "GET", "notifier", f"/v1/schedules/{schedule}/calendar.ics"
        )
        return answer.content

    # followup
    async def prompts(self, episode_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._json(
            "GET", "followup", "/v1/prompts", params={"episode_id": episode_id}
        )
        return found

    async def complete_prompt(self, prompt_id: str, note: str | None) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "POST",
            "followup",
            f"/v1/prompts/{prompt_id}/complete",
            json={"note": note} if note else {},
        )
        return found

    # audit
    async def compliance(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "GET", "audit", "/v1/audit/compliance", params=filters
        )
        return found

    async def compliance_csv(self, filters: Mapping[str, Any]) -> str:
        answer = await self._call(
            "GET", "audit", "/v1/audit/compliance", params={**filters, "format": "csv"}
        )
        return answer.text

    async def trail(self, episode_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "GET", "audit", f"/v1/audit/episodes/{episode_id}/trail"
        )
        return found

    async def proof(self, seq: int, tree_size: int) -> dict[str, Any]:
        found: dict[str, Any] = await self._json(
            "GET", "audit", f"/v1/audit/proof/{seq}", params={"tree_size": tree_size}
        )
        return found

    async def checkpoints(self) -> list[dict[str, Any]]:
        found = await self._json("GET", "audit", "/v1/audit/checkpoints")
        result: list[dict[str, Any]] = found["checkpoints"]
        return result

    async def audit_public_key(self) -> bytes:
        return (await self._call("GET", "audit", "/v1/audit/public-key")).content

    async def verify_trail(self) -> dict[str, Any]:
        found: dict[str, Any] = await self._json("GET", "audit", "/v1/audit/verify")
        return found
