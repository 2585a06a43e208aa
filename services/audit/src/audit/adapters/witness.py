"""A witness over HTTP (c2sp.org/tlog-witness ``add-checkpoint``), ours or an
external one, and its latest co-signed checkpoint (this project's witness only)."""

import base64

import aiohttp


class WitnessUnavailableError(Exception):
    """The witness could not be reached or failed (5xx): try again later."""


class WitnessConflictError(Exception):
    """The witness last co-signed another size (409): submit from that one."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness last co-signed size {size}")
        self.size = size


class WitnessRefusedError(Exception):
    """The witness refuses this checkpoint (4xx): it will not co-sign it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status


class WitnessClient:
    def __init__(self, url: str, *, timeout: float = 10) -> None:
        self._url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def add_checkpoint(
        self, *, old_size: int, proof: list[bytes], signed_note: str
    ) -> list[str]:
        """The witness's cosignature lines for ``signed_note``."""
        lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
        body = "\n".join(lines) + "\n\n" + signed_note
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(
                    f"{self._url}/add-checkpoint", data=body.encode()
                ) as answer,
            ):
                status, text = answer.status, await answer.text()
                kind = answer.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WitnessUnavailableError(f"{self._url}: {exc!r}") from exc
        if status == 200:
            return [line + "\n" for line in text.splitlines() if line]
        if status == 409 and kind.startswith("text/x.tlog.size"):
            raise WitnessConflictError(int(text.strip()))
        if status >= 500:
            raise WitnessUnavailableError(f"{self._url}: {status}")
        raise WitnessRefusedError(status, text.strip())

    async def latest(self, origin: str) -> str | None:
        """The checkpoint the witness last co-signed for ``origin``, as a signed
        note with its cosignature (None: nothing yet)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.get(f"{self._url}/checkpoints/{origin}") as answer,
            ):
                answer.raise_for_status()
                found = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WitnessUnavailableError(f"{self._url}: {exc!r}") from exc
        cosigned = found.get("note") if isinstance(found, dict) else None
        return cosigned if isinstance(cosigned, str) else None
