"""The call sheet: what on-call staff need at hand to report a missing child.

When a child in care goes missing, the agency reports the child to law enforcement
(for NCIC entry) and to NCMEC within 24 hours (42 U.S.C. 671(a)(34)-(35)), with a
photo, a physical description and the endangerments. The call sheet gathers
everything those two calls ask for, prefilled from the episode, and marks what is
still missing so the caller knows what to find first. It is shown as a page and
downloaded as a PDF (:func:`render_pdf`).

Data (:func:`build_call_sheet`, a pure function: no I/O, no clock of its own)
-----------------------------------------------------------------------------
Input is the JSON exactly as the services answer it: ``GET /v1/episodes/{id}`` of
intake (with its ``timeline``) and ``GET /v1/obligations?episode_id=`` of the
notifier. The timeline is folded in order: the ``mfc.episode.reported`` entry's data
is the report; each ``mfc.episode.updated`` entry replaces the fields it carries
(``null`` means "not in this update", as intake merges them; nested ``child`` and
``endangerments`` are merged field by field). Of ``mfc.notification.recorded``
entries to ``law_enforcement`` and ``ncmec``, the latest one (by ``notified_at``)
is shown, and the latest reference number and NCIC number given in any of them (a
later notice without a number does not erase an earlier number). If the timeline has
no NCMEC case number yet, a satisfied NCMEC obligation's ``reference_number`` is
used.

Which items are required (``SheetItem.required``; missing = required and no value):

- the NCIC minimum (34 U.S.C. 41308): name, date of birth, sex, race, height,
  weight, hair and eye color, photo, last seen time and last known location, and
  the circumstance; plus when the agency learned, the placement type and the
  caseworker's and supervisor's name and email (intake always has these);
- the endangerments of 671(a)(35)(B)(iii): pregnancy, prescription medications,
  suicidal tendencies, sex-trafficking vulnerability, other health or risk factors;
- every item intake's ``completeness`` list names (it is what intake itself
  considers missing; an item the sheet does not know gets its own row under "Other
  report items", so nothing intake asks for is lost);
- every ``report_items`` entry of an open law-enforcement or NCMEC obligation (e.g.
  North Carolina's NCMEC report needs ``law_enforcement_report_number``);
- the law-enforcement report number once a notice to law enforcement is recorded
  (the officer gives one; ask for it if the notice was recorded without it).

"Unknown": an endangerment answered ``"unknown"`` is *missing* (its value is None and
the PDF prints MISSING), exactly as intake's completeness counts it. Intake stores
``"unknown"`` also when a county leaves an endangerment out, so a recorded "unknown"
cannot be told apart from "never asked"; and NCMEC asks for each of them, so the
caller should try to find out. Everything else that is unknown is shown as "Unknown"
and is not missing: the circumstance ``unknown`` is a valid answer (often all anyone
knows), and a free-text description such as race ``"unknown"`` is shown as given
(intake takes it as an answer too). The PDF shows absent optional values as "Not
recorded". The photo is only a link (the URL as text); it is never fetched.

Times are shown in UTC as ``2026-11-30 03:10 UTC``.

PDF (:func:`render_pdf`)
------------------------
US Letter, made with fpdf2. Names may hold any characters (é, ñ, ü, Vietnamese
ễ...), so when Debian's fonts-dejavu-core is installed
(:data:`DEJAVU_REGULAR` and :data:`DEJAVU_BOLD` both present) the text is set in
DejaVu Sans, embedded as a subset; characters DejaVu Sans has no glyph for (e.g.
Chinese, Japanese) are printed as "?". Without the font, fpdf2's core Helvetica is
used and every character outside Latin-1 is replaced: letters by their base letter
when there is one (ễ -> e), anything else by "?". Text is not shaped, so
right-to-left scripts come out in logical order. Every page has the privacy footer
and "Page n of N" (the document is laid out twice: once to count the pages). A long
value goes on over several "(continued)" rows, since a table row cannot break across
pages. Rendering takes a few tenths of a second of CPU: call it from a worker thread
in an async handler.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, TableCellFillMode, VAlign, XPos, YPos
from fpdf.fonts import TTFFont

from shared.events import EventType

REPORTED = EventType.EPISODE_REPORTED.value
UPDATED = EventType.EPISODE_UPDATED.value
NOTIFICATION = EventType.NOTIFICATION_RECORDED.value
LAW_ENFORCEMENT = "law_enforcement"
NCMEC = "ncmec"

UNKNOWN = "Unknown"
NOT_RECORDED = "Not recorded"
NCMEC_CALL_CENTER = "1-800-THE-LOST (1-800-843-5678)"

TITLE = "Missing child call sheet"
FOOTER = (
    "Contains personal data of a child in care. "
    "Do not leave it lying around; shred after use."
)

DEJAVU_REGULAR = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SheetItem:
    label: str
    value: str | None
    required: bool = False

    @property
    def missing(self) -> bool:
        """Required for the reports, and not known yet."""
        return self.required and self.value is None


@dataclass(frozen=True)
class SheetSection:
    title: str
    items: tuple[SheetItem, ...]


@dataclass(frozen=True)
class CallSheet:
    episode_id: str
    county_code: str
    case_id: str
    child_initials: str
    status: str
    sections: tuple[SheetSection, ...]
    due: tuple[tuple[str, str], ...]
    """Open law-enforcement and NCMEC obligations, soonest first: (title, due text);
    the text starts with ``OVERDUE`` once the due time has passed."""
    generated_at: datetime

    @property
    def missing(self) -> list[str]:
        """The labels of every missing required item, in sheet order."""
        return [
            item.label
            for section in self.sections
            for item in section.items
            if item.missing
        ]


def child_initials(first: str, last: str) -> str:
    """How alerts name the child (never the full name): ``A.E.``, as the notifier."""
    return f"{first.strip()[:1].upper() or '?'}.{last.strip()[:1].upper() or '?'}."


# --------------------------------------------------------------------------- #
# Building the sheet from the services' JSON
# --------------------------------------------------------------------------- #

# Fields of an update that are about the event, not the report.
_NOT_REPORT_FIELDS = frozenset(
    {"episode_id", "county_code", "case_id", "completeness", "note", "updated_by"}
)

# Report items (dotted paths as intake's completeness and policy report_items name
# them) -> the sheet's label for them.
_CHILD_LABELS = {
    "child.first_name": "Name",
    "child.last_name": "Name",
    "child.date_of_birth": "Date of birth",
    "child.sex": "Sex",
    "child.race": "Race",
    "child.height_cm": "Height",
    "child.weight_kg": "Weight",
    "child.hair_color": "Hair color",
    "child.eye_color": "Eye color",
    "child.distinguishing_marks": "Distinguishing marks",
    "child.photo_url": "Photo",
}
_ENDANGERMENT_LABELS = {
    "endangerments.pregnant": "Pregnant",
    "endangerments.prescription_medications": "Prescription medications",
    "endangerments.suicidal_tendencies": "Suicidal tendencies",
    "endangerments.sex_trafficking_vulnerability": "Sex-trafficking vulnerability",
    "endangerments.other_health_or_risk_factors": "Other health or risk factors",
}
_CIRCUMSTANCE_LABELS = {
    "circumstance": "Circumstance",
    "last_seen_at": "Last seen",
    "last_known_location": "Last known location",
    "discovered_at": "Caregiver noticed",
    "agency_learned_at": "Agency learned",
    "determined_missing_at": "Determined missing",
    "placement_type": "Placement type",
    "prior_episodes": "Prior missing episodes",
}
LE_REPORT_NUMBER = "law_enforcement_report_number"
_LE_LABELS = {LE_REPORT_NUMBER: "Law-enforcement report number"}
KNOWN_ITEMS: dict[str, str] = {
    **_CHILD_LABELS,
    **_ENDANGERMENT_LABELS,
    **_CIRCUMSTANCE_LABELS,
    **_LE_LABELS,
}
"""Report items the sheet knows, by dotted path, with their labels."""

_ALWAYS_REQUIRED = frozenset(
    {
        *_CHILD_LABELS.keys() - {"child.distinguishing_marks"},
        *_ENDANGERMENT_LABELS,
        "circumstance",
        "last_seen_at",
        "last_known_location",
        "agency_learned_at",
        "placement_type",
    }
)

_CIRCUMSTANCES = {
    "runaway": "Runaway",
    "family_abduction": "Family abduction",
    "non_family_abduction": "Non-family abduction",
    "lost_injured": "Lost or injured",
    "unknown": UNKNOWN,
}
_PLACEMENTS = {
    "foster_home": "Foster home",
    "kinship": "Kinship care",
    "congregate_care": "Congregate care",
    "other": "Other",
}
_METHODS = {
    "phone": "by phone",
    "written": "in writing",
    "online": "online",
    "system": "system to system",
}
# Federal baseline kinds, for obligations that come without their rule.
_KIND_RECIPIENTS = {
    "law_enforcement_report": LAW_ENFORCEMENT,
    "law_enforcement_written_report": LAW_ENFORCEMENT,
    "trafficking_victim_le_report": LAW_ENFORCEMENT,
    "recovery_notice_le": LAW_ENFORCEMENT,
    "ncmec_report": NCMEC,
    "recovery_notice_ncmec": NCMEC,
}


@dataclass(frozen=True)
class _Notices:
    """What the notifications to one recipient tell."""

    latest: Mapping[str, Any] | None = None
    reference_number: str | None = None
    ncic_number: str | None = None


def build_call_sheet(
    episode: Mapping[str, Any],
    obligations: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
) -> CallSheet:
    """The call sheet of ``episode`` (intake's episode JSON with its timeline) given
    the notifier's ``obligations`` of it, as of ``now`` (an aware datetime).

    Raises:
        ValueError: ``now`` has no time zone, or the timeline has no report.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    report, latest_note = _fold(episode.get("timeline") or ())
    notices = {
        recipient: _notices(episode.get("timeline") or (), recipient)
        for recipient in (LAW_ENFORCEMENT, NCMEC)
    }
    open_reports = [
        o
        for o in (obligations or episode.get("obligations") or ())
        if o.get("status") == "open" and _recipient(o) in (LAW_ENFORCEMENT, NCMEC)
    ]
    required = set(_ALWAYS_REQUIRED)
    required.update(str(p) for p in _completeness(episode))
    for obligation in open_reports:
        rule = obligation.get("rule")
        if isinstance(rule, Mapping):
            required.update(str(p) for p in rule.get("report_items") or ())
    if notices[LAW_ENFORCEMENT].latest is not None:
        required.add(LE_REPORT_NUMBER)

    ncmec_number = notices[NCMEC].reference_number or _satisfied_reference(obligations)
    child = _mapping(report.get("child"))
    sections = [
        _child_section(child, required, now),
        _endangerment_section(_mapping(report.get("endangerments")), required),
        _circumstance_section(report, required, latest_note),
        _staff_section(report),
        _le_section(notices[LAW_ENFORCEMENT], required),
        _ncmec_section(notices[NCMEC], ncmec_number),
    ]
    others = [
        SheetItem(_path_label(path), _text(_lookup(report, path)), required=True)
        for path in sorted(required - KNOWN_ITEMS.keys())
    ]
    if others:
        sections.append(SheetSection("Other report items", tuple(others)))
    return CallSheet(
        episode_id=str(episode.get("id") or report.get("episode_id") or ""),
        county_code=str(episode.get("county_code") or report.get("county_code") or ""),
        case_id=str(episode.get("case_id") or report.get("case_id") or ""),
        child_initials=child_initials(
            str(child.get("first_name") or ""), str(child.get("last_name") or "")
        ),
        status=str(episode.get("status") or ""),
        sections=tuple(sections),
        due=tuple(_due(o, now) for o in sorted(open_reports, key=_due_at)),
        generated_at=now.astimezone(UTC),
    )


def _fold(
    timeline: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, Any], tuple[str, str | None] | None]:
    """The report as the updates left it, and the latest update note (with time)."""
    report: dict[str, Any] | None = None
    note: tuple[str, str | None] | None = None
    for entry in timeline:
        data = _mapping(entry.get("data"))
        if entry.get("type") == REPORTED:
            report = {
                k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()
            }
        elif entry.get("type") == UPDATED and report is not None:
            for key, value in data.items():
                if key in _NOT_REPORT_FIELDS or value is None:
                    continue
                current = report.get(key)
                if isinstance(value, Mapping) and isinstance(current, dict):
                    current.update({k: v for k, v in value.items() if v is not None})
                else:
                    report[key] = value
            if data.get("note"):
                note = (str(data["note"]), _utc(entry.get("occurred_at")))
    if report is None:
        raise ValueError(f"the episode's timeline has no {REPORTED} entry")
    return report, note


def _notices(timeline: Iterable[Mapping[str, Any]], recipient: str) -> _Notices:
    notices = [
        (_parsed(data.get("notified_at")), index, data)
        for index, entry in enumerate(timeline)
        if entry.get("type") == NOTIFICATION
        for data in (_mapping(entry.get("data")),)
        if data.get("recipient") == recipient
    ]
    if not notices:
        return _Notices()
    # Latest by the time of the notice, then by the order recorded.
    notices.sort(key=lambda n: (n[0] or datetime.min.replace(tzinfo=UTC), n[1]))

    def latest_given(field: str) -> str | None:
        given = [str(n[2][field]) for n in notices if n[2].get(field)]
        return given[-1] if given else None

    return _Notices(
        latest=notices[-1][2],
        reference_number=latest_given("reference_number"),
        ncic_number=latest_given("ncic_number"),
    )


def _completeness(episode: Mapping[str, Any]) -> list[Any]:
    """Intake's list of missing report items: the episode's own, else the one the
    latest timeline entry carried."""
    listed = episode.get("completeness")
    if isinstance(listed, list):
        return listed
    for entry in reversed(episode.get("timeline") or ()):
        carried = _mapping(entry.get("data")).get("completeness")
        if isinstance(carried, list):
            return carried
    return []


def _recipient(obligation: Mapping[str, Any]) -> str | None:
    rule = obligation.get("rule")
    if isinstance(rule, Mapping):
        satisfied_by = rule.get("satisfied_by")
        if isinstance(satisfied_by, Mapping) and satisfied_by.get("recipient"):
            return str(satisfied_by["recipient"])
    return _KIND_RECIPIENTS.get(str(obligation.get("kind")))


def _satisfied_reference(obligations: Sequence[Mapping[str, Any]]) -> str | None:
    for obligation in obligations:
        if _recipient(obligation) == NCMEC and obligation.get("reference_number"):
            return str(obligation["reference_number"])
    return None


def _due_at(obligation: Mapping[str, Any]) -> datetime:
    return _parsed(obligation.get("due_at")) or datetime.max.replace(tzinfo=UTC)


def _due(obligation: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    title = str(obligation.get("title") or obligation.get("kind") or "Report")
    due_at = _parsed(obligation.get("due_at"))
    if due_at is None:
        text = "due time unknown"
    elif obligation.get("breached") or due_at <= now:
        text = f"OVERDUE: was due {_format(due_at)} ({_span(now - due_at)} ago)"
    else:
        text = f"due {_format(due_at)} (in {_span(due_at - now)})"
    if obligation.get("waiting_reason"):
        text += f"; still open: {obligation['waiting_reason']}"
    return title, text


# --------------------------------------------------------------------------- #
# Sections
# --------------------------------------------------------------------------- #


def _item(path: str, value: str | None, required: set[str]) -> SheetItem:
    return SheetItem(KNOWN_ITEMS[path], value, required=path in required)


def _child_section(
    child: Mapping[str, Any], required: set[str], now: datetime
) -> SheetSection:
    name = " ".join(
        str(child[k]).strip() for k in ("first_name", "last_name") if child.get(k)
    )
    name_required = bool({"child.first_name", "child.last_name"} & required)
    return SheetSection(
        "Child",
        (
            SheetItem("Name", name or None, required=name_required),
            _item(
                "child.date_of_birth", _birth(child.get("date_of_birth"), now), required
            ),
            _item("child.sex", _word(child.get("sex")), required),
            _item("child.race", _text(child.get("race")), required),
            _item("child.height_cm", _height(child.get("height_cm")), required),
            _item("child.weight_kg", _weight(child.get("weight_kg")), required),
            _item("child.hair_color", _text(child.get("hair_color")), required),
            _item("child.eye_color", _text(child.get("eye_color")), required),
            _item(
                "child.distinguishing_marks",
                _text(child.get("distinguishing_marks")),
                required,
            ),
            _item("child.photo_url", _text(child.get("photo_url")), required),
        ),
    )


def _endangerment_section(
    endangerments: Mapping[str, Any], required: set[str]
) -> SheetSection:
    items = []
    for path, label in _ENDANGERMENT_LABELS.items():
        value = _answer(endangerments.get(path.split(".", 1)[1], "unknown"))
        is_required = path in required
        items.append(
            SheetItem(
                label, None if is_required and value == UNKNOWN else value, is_required
            )
        )
    return SheetSection("Endangerments", tuple(items))


def _circumstance_section(
    report: Mapping[str, Any],
    required: set[str],
    latest_note: tuple[str, str | None] | None,
) -> SheetSection:
    circumstance = report.get("circumstance")
    placement = report.get("placement_type")
    prior = report.get("prior_episodes")
    items = [
        _item("circumstance", _choice(circumstance, _CIRCUMSTANCES), required),
        _item("last_seen_at", _utc(report.get("last_seen_at")), required),
        _item(
            "last_known_location", _text(report.get("last_known_location")), required
        ),
        _item("discovered_at", _utc(report.get("discovered_at")), required),
        _item("agency_learned_at", _utc(report.get("agency_learned_at")), required),
        _item(
            "determined_missing_at", _utc(report.get("determined_missing_at")), required
        ),
        _item("placement_type", _choice(placement, _PLACEMENTS), required),
        _item("prior_episodes", None if prior is None else str(prior), required),
    ]
    if latest_note is not None:
        note, at = latest_note
        items.append(SheetItem("Latest update", f"{note} ({at})" if at else note))
    return SheetSection("Last seen and circumstances", tuple(items))


def _staff_section(report: Mapping[str, Any]) -> SheetSection:
    items = []
    for role, title in (("caseworker", "Caseworker"), ("supervisor", "Supervisor")):
        person = _mapping(report.get(role))
        items += [
            SheetItem(title, _text(person.get("name")), required=True),
            SheetItem(f"{title} email", _text(person.get("email")), required=True),
            SheetItem(f"{title} phone", _text(person.get("phone"))),
        ]
    return SheetSection("Agency contacts", tuple(items))


def _le_section(notices: _Notices, required: set[str]) -> SheetSection:
    latest = notices.latest
    return SheetSection(
        "Law enforcement",
        (
            SheetItem("Reported to law enforcement", _notice_text(latest)),
            SheetItem(
                "Law-enforcement agency",
                _text(latest.get("agency")) if latest is not None else None,
            ),
            _item(LE_REPORT_NUMBER, notices.reference_number, required),
            SheetItem("NCIC number", notices.ncic_number),
        ),
    )


def _ncmec_section(notices: _Notices, case_number: str | None) -> SheetSection:
    return SheetSection(
        "NCMEC",
        (
            SheetItem("Reported to NCMEC", _notice_text(notices.latest)),
            SheetItem("NCMEC case number", case_number),
            SheetItem("NCMEC call center", NCMEC_CALL_CENTER),
        ),
    )


def _notice_text(notice: Mapping[str, Any] | None) -> str:
    if notice is None:
        return "Not yet"
    parts = [_utc(notice.get("notified_at")) or "time not recorded"]
    if notice.get("method"):
        method = str(notice["method"])
        parts.append(_METHODS.get(method, f"by {method.replace('_', ' ')}"))
    if notice.get("notified_by"):
        parts.append(f"recorded by {notice['notified_by']}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- #
# Values as text
# --------------------------------------------------------------------------- #


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _lookup(report: Mapping[str, Any], path: str) -> Any:
    value: Any = report
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return None if value == "unknown" else value


def _path_label(path: str) -> str:
    return path.replace(".", ": ").replace("_", " ").capitalize()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) if value else "None"
    text = str(value).strip()
    return text or None


def _choice(value: Any, names: Mapping[str, str]) -> str | None:
    """An enum value by its name on the sheet (unknown values as words)."""
    text = _text(value)
    return names.get(text, _word(text)) if text else None


def _word(value: Any) -> str | None:
    """An enum value as words: ``non_family_abduction`` -> ``Non family abduction``."""
    text = _text(value)
    return text.replace("_", " ").capitalize() if text else None


def _answer(value: Any) -> str:
    """A tri-state or a list answer (``true``/``false``/``"unknown"``/list)."""
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if value is None or value == "unknown":
        return UNKNOWN
    return _text(value) or "None"


def _parsed(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _format(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _utc(value: Any) -> str | None:
    parsed = _parsed(value)
    if parsed is not None:
        return _format(parsed)
    return _text(value)


def _span(delta: timedelta) -> str:
    minutes = max(0, math.floor(delta.total_seconds() / 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _birth(value: Any, now: datetime) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        born = date.fromisoformat(text)
    except ValueError:
        return text
    today = now.astimezone(UTC).date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return f"{born.isoformat()} (age {age})"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _height(value: Any) -> str | None:
    cm = _number(value)
    if cm is None:
        return _text(value)
    inches = round(cm / 2.54)
    return f"{cm:g} cm ({inches // 12} ft {inches % 12} in)"


def _weight(value: Any) -> str | None:
    kg = _number(value)
    if kg is None:
        return _text(value)
    return f"{kg:g} kg ({round(kg / 0.45359237)} lb)"


# --------------------------------------------------------------------------- #
# The PDF
# --------------------------------------------------------------------------- #

_MARGIN = 15.0
_INK = (20, 20, 20)
_GREY = (95, 95, 95)
_RULE = (170, 170, 170)
_RED = (170, 0, 0)
_MISSING_FILL = (253, 236, 236)
_OK_FILL = (233, 245, 236)
_SECTION_FILL = (228, 232, 238)


def _printable(text: str, covered: frozenset[int] | None) -> str:
    """Text the font can print: NFC, no control characters, and what the font has
    no glyph for replaced (``covered``: the code points of a TrueType font; None:
    a core font, Latin-1 only). See the module docstring."""
    out = []
    for char in unicodedata.normalize("NFC", text):
        if char in "\n\t":
            out.append(" " if char == "\t" else char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        elif covered is not None:
            out.append(char if ord(char) in covered else "?")
        elif ord(char) < 256:
            out.append(char)
        else:
            base = "".join(
                c
                for c in unicodedata.normalize("NFKD", char)
                if ord(c) < 256 and not unicodedata.combining(c)
            )
            out.append(base or "?")
    return "".join(out)


class _SheetPDF(FPDF):
    """US Letter with the sheet's header (from page 2 on) and footer; text in DejaVu
    Sans when both of its files are installed, else core Helvetica."""

    def __init__(self, sheet: CallSheet, total_pages: int | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="letter")
        self.sheet = sheet
        self.total_pages = total_pages
        self.covered: frozenset[int] | None = None
        self.family = "Helvetica"
        if DEJAVU_REGULAR.is_file() and DEJAVU_BOLD.is_file():
            self.add_font("DejaVu", "", str(DEJAVU_REGULAR))
            self.add_font("DejaVu", "B", str(DEJAVU_BOLD))
            # What both faces have glyphs for; the rest prints as "?".
            self.covered = frozenset.intersection(
                *(
                    frozenset(font.cmap)
                    for font in self.fonts.values()
                    if isinstance(font, TTFFont)
                )
            )
            self.family = "DejaVu"

    def t(self, text: str) -> str:
        return _printable(text, self.covered)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(self.family, "", 8)
        self.set_text_color(*_GREY)
        self.cell(
            0,
            5,
            self.t(
                f"{TITLE}  |  Episode {self.sheet.episode_id}  |  "
                f"Child {self.sheet.child_initials}  |  County {self.sheet.county_code}"
            ),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(4)
        self.set_text_color(*_INK)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)
        self.set_font(self.family, "B", 7.5)
        self.set_text_color(*_GREY)
        page = f"Page {self.page_no()}"
        if self.total_pages is not None:
            page += f" of {self.total_pages}"
        page_width = self.get_string_width(page) + 2
        self.cell(self.epw - page_width, 4, self.t(FOOTER))
        self.cell(page_width, 4, page, align="R")
        self.set_text_color(*_INK)


def render_pdf(sheet: CallSheet, compress: bool = True) -> bytes:
    """The call sheet as a PDF document (US Letter). ``compress=False`` leaves the
    page content streams readable (for tests)."""
    pages = _render(sheet, compress=compress, total_pages=None).pages_count
    return bytes(_render(sheet, compress=compress, total_pages=pages).output())


def _render(sheet: CallSheet, *, compress: bool, total_pages: int | None) -> FPDF:
    # Two passes: the first counts the pages for "Page n of N" (fpdf2's own alias
    # would also replace the alias text inside a child's data).
    pdf = _SheetPDF(sheet, total_pages)
    pdf.alias_nb_pages("")
    pdf.set_compression(compress)
    pdf.set_creation_date(sheet.generated_at)
    pdf.set_title(TITLE)
    pdf.set_subject(f"Episode {sheet.episode_id}")
    pdf.set_creator("missing-from-care console")
    pdf.set_lang("en-US")
    pdf.set_margins(_MARGIN, 12, _MARGIN)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_text_color(*_INK)
    _title_block(pdf, sheet)
    _missing_box(pdf, sheet)
    for section in sheet.sections:
        _section(pdf, section)
    _due_block(pdf, sheet)
    return pdf


def _title_block(pdf: _SheetPDF, sheet: CallSheet) -> None:
    family = pdf.family
    pdf.set_font(family, "B", 18)
    pdf.cell(0, 9, TITLE, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font(family, "", 9.5)
    label = FontFace(emphasis="B", color=_GREY)
    rows = (
        ("Episode", sheet.episode_id, "Generated", _format(sheet.generated_at)),
        ("County", sheet.county_code, "Case id", sheet.case_id),
        ("Child", sheet.child_initials, "Status", _word(sheet.status) or ""),
    )
    with pdf.table(
        col_widths=(14, 44, 14, 28),
        borders_layout=TableBordersLayout.NONE,
        first_row_as_headings=False,
        line_height=5,
        text_align="LEFT",
        padding=(0.4, 1, 0.4, 0),
    ) as table:
        for a, b, c, d in rows:
            row = table.row()
            row.cell(a, style=label)
            row.cell(pdf.t(b))
            row.cell(c, style=label)
            row.cell(pdf.t(d))
    pdf.ln(4)


def _missing_box(pdf: _SheetPDF, sheet: CallSheet) -> None:
    family = pdf.family
    missing = sheet.missing
    fill = _MISSING_FILL if missing else _OK_FILL
    border = _RED if missing else (40, 120, 60)
    top = pdf.get_y()
    pdf.set_font(family, "B", 10.5)
    if not missing:
        heading = "Nothing missing: every required item is recorded."
    else:
        heading = (
            f"Find these before you call ({len(missing)} missing "
            f"item{'s' if len(missing) != 1 else ''}):"
        )
    columns = 2
    with pdf.table(
        borders_layout=TableBordersLayout.NONE,
        first_row_as_headings=False,
        cell_fill_color=fill,
        cell_fill_mode=TableCellFillMode.ALL,
        line_height=5.2,
        text_align="LEFT",
        padding=(0.6, 2.5, 0.6, 2.5),
        col_widths=tuple(1 for _ in range(columns)),
        v_align=VAlign.T,
    ) as table:
        table.row().cell(
            heading, colspan=columns, style=FontFace(color=border, size_pt=10.5)
        )
        for start in range(0, len(missing), columns):
            row = table.row()
            chunk = missing[start : start + columns]
            for label in chunk:
                row.cell(pdf.t(f"Missing: {label}"), style=FontFace(color=_INK))
            for _ in range(columns - len(chunk)):
                row.cell("")
    pdf.set_draw_color(*border)
    pdf.set_line_width(0.6)
    pdf.rect(pdf.l_margin, top, pdf.epw, pdf.get_y() - top)
    pdf.set_line_width(0.2)
    pdf.ln(5)


def _section_title(pdf: _SheetPDF, title: str) -> None:
    # Keep a title with the first rows of its table.
    if pdf.will_page_break(7 + 3 * 6.5):
        pdf.add_page()
    pdf.set_font(pdf.family, "B", 11)
    pdf.set_fill_color(*_SECTION_FILL)
    pdf.cell(0, 7, f" {pdf.t(title)}", fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(255)  # tables take the current colors as their default


def _section(pdf: _SheetPDF, section: SheetSection) -> None:
    _section_title(pdf, section.title)
    family = pdf.family
    pdf.set_font(family, "", 9.5)
    pdf.set_draw_color(*_RULE)
    label_style = FontFace(color=_GREY)
    missing_style = FontFace(emphasis="B", color=_RED)
    with _two_columns(pdf, (34, 66)) as table:
        for item in section.items:
            if item.missing or item.value is None:
                row = table.row()
                row.cell(pdf.t(item.label), style=label_style)
                if item.missing:
                    row.cell("MISSING", style=missing_style)
                else:
                    row.cell(NOT_RECORDED, style=label_style)
                continue
            for index, chunk in enumerate(_chunks(pdf.t(item.value))):
                row = table.row()
                row.cell(
                    pdf.t(item.label) if index == 0 else "(continued)",
                    style=label_style,
                )
                # A URL (the photo) is a link only: it is never fetched.
                row.cell(chunk, link=item.value if _is_url(item.value) else None)
    pdf.ln(4)


def _two_columns(pdf: _SheetPDF, widths: tuple[int, int]) -> Any:
    """The sheet's table: label and value, rules between rows, top-aligned."""
    return pdf.table(
        col_widths=widths,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        first_row_as_headings=False,
        line_height=4.6,
        text_align="LEFT",
        padding=(0.9, 2, 0.9, 2),
        v_align=VAlign.T,
    )


_CHUNK = 600
"""Characters per table row: a table row cannot break across pages, so a long value
(medication lists, distinguishing marks) goes on over several rows."""


def _chunks(text: str, size: int = _CHUNK) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, cut at spaces where
    possible."""
    chunks = []
    while len(text) > size:
        cut = text.rfind(" ", size // 2, size + 1)
        if cut == -1:
            cut = size
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*chunks, text]


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and not any(
        c.isspace() for c in text
    )


def _due_block(pdf: _SheetPDF, sheet: CallSheet) -> None:
    _section_title(pdf, "Due: reports to law enforcement and NCMEC")
    pdf.set_font(pdf.family, "", 9.5)
    if not sheet.due:
        pdf.set_text_color(*_GREY)
        pdf.multi_cell(
            0,
            6,
            " No open law-enforcement or NCMEC report obligations.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_text_color(*_INK)
        return
    with _two_columns(pdf, (50, 50)) as table:
        for title, when in sheet.due:
            row = table.row()
            row.cell(pdf.t(title))
            style = (
                FontFace(emphasis="B", color=_RED)
                if when.startswith("OVERDUE")
                else None
            )
            row.cell(pdf.t(when), style=style)
