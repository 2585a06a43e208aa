"""The facts of an episode that policy rules may depend on, derived from the report
(and later events). Pure: everything is computed from what is passed in."""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from shared.events import (
    Circumstance,
    Endangerments,
    EndangermentsUpdate,
    EpisodeReportedData,
    EpisodeUpdatedData,
)
from shared.policy import ClockStart

EndangermentFlags = dict[str, bool | None]
"""Per endangerment: present (True), absent (False) or unknown (None); no details."""


class EpisodeFacts(BaseModel):
    """What a rule's ``when`` condition reads. Kept apart from the report so an
    episode's facts can be stored and re-evaluated without its personal details."""

    model_config = ConfigDict(frozen=True)

    age_years: int
    endangered: bool
    circumstance: Circumstance
    trafficking_indicated: bool | None = None
    indian_child: bool | None = None

    @classmethod
    def of(
        cls, report: EpisodeReportedData, *, trafficking_indicated: bool | None = None
    ) -> "EpisodeFacts":
        """The facts a report gives (age as of the day the agency learned of it)."""
        return cls(
            age_years=_age(
                born=report.child.date_of_birth, on=report.agency_learned_at.date()
            ),
            endangered=is_endangered(endangerment_flags(report.endangerments)),
            circumstance=report.circumstance,
            trafficking_indicated=trafficking_indicated,
            indian_child=known(report.child.indian_child),
        )


def _age(*, born: date, on: date) -> int:
    """Age in whole years, as age conditions (``age_under``) count it."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def known(answer: bool | str | None) -> bool | None:
    """A yes/no/unknown answer as True, False or None, so "unknown" never matches."""
    return answer if isinstance(answer, bool) else None


def endangerment_flags(
    endangerments: Endangerments | EndangermentsUpdate,
) -> EndangermentFlags:
    """The flags behind the ``endangered`` fact; an update gives only those it sets."""
    flags: EndangermentFlags = {}
    for name in Endangerments.model_fields:
        value = getattr(endangerments, name)
        if value is None:  # not part of this update
            continue
        # A list (of medications, say) counts as present when it names anything.
        flags[name] = len(value) > 0 if isinstance(value, list) else known(value)
    return flags


def is_endangered(flags: EndangermentFlags) -> bool:
    """The ``endangered`` fact: any endangerment present, however it was answered."""
    return any(flag is True for flag in flags.values())


def says_new_facts(update: EpisodeUpdatedData) -> bool:
    """Whether an update says anything the rules' conditions read."""
    indian_child = update.child.indian_child if update.child else None
    return update.endangerments is not None or indian_child is not None


def learned(
    facts: EpisodeFacts, flags: EndangermentFlags | None, update: EpisodeUpdatedData
) -> tuple[EpisodeFacts, EndangermentFlags | None]:
    """The facts and flags after an update: its endangerment flags merge over those
    known, an endangerment once known stays known, and it may say the child is an
    Indian child. ``flags`` None: facts kept from before flags were (the notifier's
    oldest rows), whose ``endangered`` stays as it was if it was true."""
    if update.endangerments is not None:
        merged = {**(flags or {}), **endangerment_flags(update.endangerments)}
        endangered = is_endangered(merged) or (flags is None and facts.endangered)
        facts = facts.model_copy(update={"endangered": endangered})
        flags = merged
    indian_child = update.child.indian_child if update.child else None
    if indian_child is not None:
        facts = facts.model_copy(update={"indian_child": known(indian_child)})
    return facts, flags


def report_clock_times(
    report: EpisodeReportedData,
) -> dict[ClockStart, datetime | None]:
    """The rule clocks a report starts (``determined_missing_at`` may be None)."""
    return {
        ClockStart.AGENCY_LEARNED_AT: report.agency_learned_at,
        ClockStart.DISCOVERED_AT: report.discovered_at,
        ClockStart.LAST_SEEN_AT: report.last_seen_at,
        ClockStart.DETERMINED_MISSING_AT: report.determined_missing_at,
    }
