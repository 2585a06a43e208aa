"""Intake settings (environment prefix ``INTAKE_``)."""

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.config import ServiceSettings
from shared.durations import Duration
from shared.policy import default_policy_path


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="INTAKE_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    http_port: int = 8001
    """Port of the HTTP API."""
    consumer_group: str = "intake"
    """Kafka consumer group; replicas of one service share it."""

    counties: Annotated[frozenset[str], NoDecode]
    """Counties this deployment serves, comma-separated (``NC-063,MO-510``)."""
    clock_skew_allowance: Duration = timedelta(minutes=5)
    """How far in the future a county's timestamp may be (their clocks drift)."""
    policy_path: Path = Field(default_factory=default_policy_path)
    """The jurisdiction policy file: the same one as the notifier's, so the answer
    to a report lists the deadlines the notifier will open."""

    kafka_sources: dict[str, frozenset[str]] = Field(default_factory=dict)
    """Who may send what on the inbound topic: the county codes each producer may send
    events for, as JSON keyed by the events' CloudEvents ``source``
    (``{"county/NC-063": ["NC-063"], "state/nc-cws": ["NC-063", "NC-183"]}``). An
    event of another source, or about another county, goes to the dead-letter topic.
    The broker's ACLs must let each producer write only under its own source (see
    docs/security.md)."""

    feed_silence_after: dict[str, Duration] = Field(default_factory=dict)
    """How long each county's system may stay quiet (no report, later event or
    heartbeat, over HTTP or Kafka) before its feed counts as silent, as JSON keyed
    by county code, ``*`` for every other served county
    (``{"*": "6h", "NC-063": "30m"}``). A county without an entry is not watched."""
    feed_check_interval: Duration = timedelta(seconds=30)
    """How often the feeds' last events are saved and checked for silence (at
    least 100ms)."""

    @field_validator("feed_check_interval")
    @classmethod
    def _not_a_hot_loop(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError("must be at least 100ms")
        return value

    @model_validator(mode="after")
    def _feeds_of_served_counties(self) -> "IntakeSettings":
        strays = sorted(set(self.feed_silence_after) - self.counties - {"*"})
        if strays:
            raise ValueError(
                "feed_silence_after names counties not served here "
                f"(INTAKE_COUNTIES): {', '.join(strays)}"
            )
        return self

    @field_validator("feed_silence_after")
    @classmethod
    def _feed_counties(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        from intake.domain.counties import is_us_county

        upper = {county.strip().upper(): after for county, after in value.items()}
        unknown = sorted(c for c in upper if c != "*" and not is_us_county(c))
        if unknown:
            raise ValueError(f"not US county codes: {', '.join(unknown)}")
        short = sorted(c for c, after in upper.items() if after < timedelta(seconds=1))
        if short:
            raise ValueError(f"silence must be at least 1s: {', '.join(short)}")
        return upper

    @field_validator("kafka_sources")
    @classmethod
    def _upper_counties(
        cls, value: dict[str, frozenset[str]]
    ) -> dict[str, frozenset[str]]:
        return {
            source: frozenset(c.strip().upper() for c in counties)
            for source, counties in value.items()
        }

    @field_validator("counties", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(
                part.strip().upper() for part in value.split(",") if part.strip()
            )
        return value

    @field_validator("counties")
    @classmethod
    def _known_counties(cls, value: frozenset[str]) -> frozenset[str]:
        from intake.domain.counties import is_us_county

        if not value:
            raise ValueError("configure at least one county code, e.g. NC-063")
        unknown = sorted(code for code in value if not is_us_county(code))
        if unknown:
            raise ValueError(f"not US county codes: {', '.join(unknown)}")
        return value
