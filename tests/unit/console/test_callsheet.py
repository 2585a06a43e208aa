"""The call sheet: folding an episode's timeline into what the law-enforcement call
and the NCMEC report ask for, what is still missing, and the PDF of it.

Every child, person and number here is invented.
"""

import copy
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intake.domain.model import completeness
from shared.events import (
    EpisodeReported,
    EpisodeReportedData,
    EpisodeUpdated,
    NotificationRecorded,
)

try:
    from console import callsheet
except ModuleNotFoundError:  # the console package is not installed (yet)
    sys.path.append(str(Path(__file__).parents[3] / "services/console/src"))
    from console import callsheet

pytestmark = pytest.mark.unit

EPISODE_ID = "3f6c1a52-8d4e-4b7a-9c1e-2a5b7d9e0f11"
NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
PHOTO = "https://photos.example.org/dur/2026-0412.jpg"
FIRST, LAST = "Thảo", "Nguyễn Muñoz"  # ả and ễ are outside Latin-1


# --------------------------------------------------------------------------- #
# The JSON as intake and the notifier answer it
# --------------------------------------------------------------------------- #


def reported_data() -> dict[str, Any]:
    """``data`` of the ``mfc.episode.reported`` timeline entry (canonical: every
    field, nulls included, plus episode id and completeness)."""
    return {
        "county_code": "NC-063",
        "case_id": "DUR-2026-0412",
        "child": {
            "first_name": FIRST,
            "last_name": LAST,
            "date_of_birth": "2011-04-02",
            "sex": "female",
            "race": "Asian",
            "height_cm": 152.0,
            "weight_kg": 45.0,
            "hair_color": "black, shoulder length",
            "eye_color": "brown",
            "distinguishing_marks": "small scar above the left eyebrow; pierced ears",
            "photo_url": None,
            "indian_child": "unknown",
        },
        "last_seen_at": "2026-11-29T22:40:00Z",
        "discovered_at": "2026-11-30T02:50:00Z",
        "agency_learned_at": "2026-11-30T03:10:00Z",
        "determined_missing_at": None,
        "circumstance": "runaway",
        "last_known_location": "Bus stop at Main St and Gregson St, Durham, NC",
        "placement_type": "foster_home",
        "prior_episodes": 1,
        "endangerments": {
            "pregnant": False,
            "prescription_medications": ["sertraline 50 mg daily"],
            "suicidal_tendencies": "unknown",
            "sex_trafficking_vulnerability": True,
            "other_health_or_risk_factors": ["asthma (carries an inhaler)"],
        },
        "caseworker": {
            "id": "cw-17",
            "name": "Casey Worker",
            "email": "casey.worker@example.org",
            "phone": "919-555-0142",
        },
        "supervisor": {
            "id": "sv-03",
            "name": "Sam Supervisor",
            "email": "sam.supervisor@example.org",
            "phone": None,
        },
        "episode_id": EPISODE_ID,
        "completeness": ["child.photo_url", "endangerments.suicidal_tendencies"],
    }


def updated_data() -> dict[str, Any]:
    """An update adding the photo and correcting the height."""
    return {
        "child": {
            "race": None,
            "height_cm": 154.0,
            "weight_kg": None,
            "hair_color": None,
            "eye_color": None,
            "distinguishing_marks": None,
            "photo_url": PHOTO,
            "indian_child": None,
        },
        "endangerments": None,
        "last_known_location": None,
        "note": "Photo from the school; height measured by the school nurse",
        "updated_by": "cw-17",
        "episode_id": EPISODE_ID,
        "county_code": "NC-063",
        "completeness": ["endangerments.suicidal_tendencies"],
    }


def notification_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "recipient": "law_enforcement",
        "method": "phone",
        "notified_at": "2026-11-30T03:40:00Z",
        "reference_number": "DPD-26-118842",
        "ncic_number": None,
        "agency": "Durham Police Department",
        "notified_by": "cw-17",
        "episode_id": EPISODE_ID,
        "county_code": "NC-063",
    }
    return data | overrides


def entry(event_type: str, data: dict[str, Any], at: str) -> dict[str, Any]:
    return {
        "event_id": f"evt-{abs(hash((event_type, at))) % 10**8}",
        "type": event_type,
        "occurred_at": at,
        "data": data,
    }


def episode(*entries: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The JSON of ``GET /v1/episodes/{id}``."""
    latest = [e["data"]["completeness"] for e in entries if "completeness" in e["data"]]
    return {
        "id": EPISODE_ID,
        "county_code": "NC-063",
        "case_id": "DUR-2026-0412",
        "status": "missing",
        "completeness": latest[-1] if latest else [],
        "agency_learned_at": "2026-11-30T03:10:00Z",
        "created_at": "2026-11-30T03:12:05.120443Z",
        "updated_at": "2026-11-30T04:20:31.918220Z",
        "located_at": None,
        "screened_at": None,
        "closed_at": None,
        "obligations": [],
        "prompts": [],
        "timeline": list(entries),
    } | overrides


REPORTED = entry(callsheet.REPORTED, reported_data(), "2026-11-30T03:12:05.120443Z")
NOTIFIED_LE = entry(
    callsheet.NOTIFICATION, notification_data(), "2026-11-30T03:45:12.004211Z"
)
UPDATED = entry(callsheet.UPDATED, updated_data(), "2026-11-30T04:20:31.918220Z")


def obligation(kind: str, title: str, recipient: str, due_at: str, **over: Any):
    """One entry of ``GET /v1/obligations?episode_id=`` (the notifier)."""
    return {
        "id": f"00000000-0000-4000-8000-{abs(hash(kind)) % 10**12:012d}",
        "episode_id": EPISODE_ID,
        "county_code": "NC-063",
        "jurisdiction": "NC",
        "kind": kind,
        "title": title,
        "status": "open",
        "breached": False,
        "opened_at": "2026-11-30T03:12:06Z",
        "clock_start": "2026-11-30T03:10:00Z",
        "due_at": due_at,
        "policy_digest": "9c1e" * 16,
        "rule": {
            "id": kind,
            "title": title,
            "opens_on": "reported",
            "clock": "agency_learned_at",
            "satisfied_by": {
                "recipient": recipient,
                "methods": None,
                "not_before": "last_seen_at",
                "requires_reference": False,
            },
            "report_items": over.pop("report_items", []),
        },
        "waiting_reason": None,
        "snoozed_until": None,
        "snoozed_level": None,
        "breached_at": None,
        "satisfied_at": None,
        "reference_number": None,
        "closed_reason": None,
    } | over


OBLIGATIONS = [
    obligation(
        "law_enforcement_report",
        "Immediate verbal report to law enforcement",
        "law_enforcement",
        "2026-11-30T05:10:00Z",
        status="satisfied",
        satisfied_at="2026-11-30T03:40:00Z",
    ),
    obligation(
        "law_enforcement_written_report",
        "Written report to law enforcement",
        "law_enforcement",
        "2026-12-02T03:10:00Z",
    ),
    obligation(
        "ncmec_report",
        "Report the missing child to NCMEC",
        "ncmec",
        "2026-12-01T03:10:00Z",
        report_items=["child.photo_url", "law_enforcement_report_number"],
    ),
    obligation(
        "parent_notice_missing",
        "Notify the child's parent",
        "parent_guardian",
        "2026-12-01T03:10:00Z",
    ),
]


def full_sheet(now: datetime = NOW) -> callsheet.CallSheet:
    return callsheet.build_call_sheet(
        episode(REPORTED, NOTIFIED_LE, UPDATED), OBLIGATIONS, now=now
    )


def values(sheet: callsheet.CallSheet) -> dict[str, str | None]:
    return {i.label: i.value for s in sheet.sections for i in s.items}


def item(sheet: callsheet.CallSheet, label: str) -> callsheet.SheetItem:
    found = [i for s in sheet.sections for i in s.items if i.label == label]
    assert len(found) == 1, label
    return found[0]


# --------------------------------------------------------------------------- #
# The fixture is what the services really send
# --------------------------------------------------------------------------- #


def test_the_invented_json_matches_the_event_contract() -> None:
    EpisodeReported.model_validate(REPORTED["data"])
    EpisodeUpdated.model_validate(UPDATED["data"])
    NotificationRecorded.model_validate(NOTIFIED_LE["data"])
    # Read as our consumers read a published event: tolerant of the fields that
    # intake adds (episode_id, completeness).
    report = EpisodeReportedData.model_validate(REPORTED["data"], extra="ignore")
    assert completeness(report) == REPORTED["data"]["completeness"]


# --------------------------------------------------------------------------- #
# The sheet
# --------------------------------------------------------------------------- #


def test_the_sheet_carries_the_episode_and_the_report() -> None:
    sheet = full_sheet()
    assert sheet.episode_id == EPISODE_ID
    assert (sheet.county_code, sheet.case_id) == ("NC-063", "DUR-2026-0412")
    assert sheet.child_initials == "T.N."
    assert sheet.status == "missing"
    assert sheet.generated_at == NOW
    v = values(sheet)
    assert v["Name"] == "Thảo Nguyễn Muñoz"
    assert v["Date of birth"] == "2011-04-02 (age 15)"
    assert v["Sex"] == "Female"
    assert v["Race"] == "Asian"
    assert v["Weight"] == "45 kg (99 lb)"
    assert v["Hair color"] == "black, shoulder length"
    assert v["Eye color"] == "brown"
    assert v["Distinguishing marks"] == (
        "small scar above the left eyebrow; pierced ears"
    )
    assert v["Pregnant"] == "No"
    assert v["Prescription medications"] == "sertraline 50 mg daily"
    assert v["Sex-trafficking vulnerability"] == "Yes"
    assert v["Other health or risk factors"] == "asthma (carries an inhaler)"
    assert v["Circumstance"] == "Runaway"
    assert v["Last seen"] == "2026-11-29 22:40 UTC"
    assert v["Last known location"] == "Bus stop at Main St and Gregson St, Durham, NC"
    assert v["Agency learned"] == "2026-11-30 03:10 UTC"
    assert v["Placement type"] == "Foster home"
    assert v["Prior missing episodes"] == "1"
    assert v["Caseworker"] == "Casey Worker"
    assert v["Caseworker email"] == "casey.worker@example.org"
    assert v["Caseworker phone"] == "919-555-0142"
    assert v["Supervisor"] == "Sam Supervisor"
    assert v["Supervisor phone"] is None
    assert not item(sheet, "Supervisor phone").missing  # optional in the report
    assert [s.title for s in sheet.sections] == [
        "Child",
        "Endangerments",
        "Last seen and circumstances",
        "Agency contacts",
        "Law enforcement",
        "NCMEC",
    ]


def test_an_update_overrides_the_report_and_its_nulls_change_nothing() -> None:
    before = callsheet.build_call_sheet(episode(REPORTED), [], now=NOW)
    after = full_sheet()
    assert values(before)["Height"] == "152 cm (5 ft 0 in)"
    assert values(after)["Height"] == "154 cm (5 ft 1 in)"
    assert values(before)["Photo"] is None
    assert values(after)["Photo"] == PHOTO
    # The update's null race/weight/endangerments leave the report's values.
    assert values(after)["Race"] == "Asian"
    assert values(after)["Weight"] == "45 kg (99 lb)"
    assert values(after)["Pregnant"] == "No"
    assert values(after)["Latest update"] == (
        "Photo from the school; height measured by the school nurse "
        "(2026-11-30 04:20 UTC)"
    )


def test_the_law_enforcement_report_number_shows_once_recorded() -> None:
    before = callsheet.build_call_sheet(episode(REPORTED), [], now=NOW)
    assert values(before)["Reported to law enforcement"] == "Not yet"
    assert values(before)["Law-enforcement report number"] is None
    sheet = full_sheet()
    v = values(sheet)
    assert v["Law-enforcement report number"] == "DPD-26-118842"
    assert v["Law-enforcement agency"] == "Durham Police Department"
    assert v["Reported to law enforcement"] == (
        "2026-11-30 03:40 UTC, by phone, recorded by cw-17"
    )
    assert v["NCIC number"] is None
    assert v["Reported to NCMEC"] == "Not yet"
    assert v["NCMEC case number"] is None
    assert not item(sheet, "NCMEC case number").missing


def test_the_latest_notices_give_the_numbers() -> None:
    second = entry(
        callsheet.NOTIFICATION,
        notification_data(
            method="written",
            notified_at="2026-11-30T06:00:00Z",
            reference_number="DPD-26-118842-W",
            ncic_number="M123456789",
        ),
        "2026-11-30T06:01:00Z",
    )
    # Recorded later but given earlier, and without numbers: changes nothing.
    late_entry = entry(
        callsheet.NOTIFICATION,
        notification_data(notified_at="2026-11-30T03:30:00Z", reference_number=None),
        "2026-11-30T06:05:00Z",
    )
    ncmec = entry(
        callsheet.NOTIFICATION,
        notification_data(
            recipient="ncmec",
            method="online",
            notified_at="2026-11-30T06:30:00Z",
            reference_number="NCMEC-1604417",
            agency="NCMEC",
        ),
        "2026-11-30T06:31:00Z",
    )
    sheet = callsheet.build_call_sheet(
        episode(REPORTED, NOTIFIED_LE, UPDATED, second, late_entry, ncmec),
        OBLIGATIONS,
        now=NOW + timedelta(hours=2),
    )
    v = values(sheet)
    assert v["Law-enforcement report number"] == "DPD-26-118842-W"
    assert v["NCIC number"] == "M123456789"
    assert v["Reported to law enforcement"].startswith(
        "2026-11-30 06:00 UTC, in writing"
    )
    assert v["NCMEC case number"] == "NCMEC-1604417"
    assert v["Reported to NCMEC"].startswith("2026-11-30 06:30 UTC")


def test_a_satisfied_ncmec_obligation_gives_the_case_number() -> None:
    satisfied = copy.deepcopy(OBLIGATIONS)
    satisfied[2] |= {"status": "satisfied", "reference_number": "NCMEC-77"}
    sheet = callsheet.build_call_sheet(
        episode(REPORTED, NOTIFIED_LE, UPDATED), satisfied, now=NOW
    )
    assert values(sheet)["NCMEC case number"] == "NCMEC-77"


def test_missing_items_are_listed_the_photo_until_it_is_given() -> None:
    before = callsheet.build_call_sheet(episode(REPORTED), [], now=NOW)
    assert before.missing == ["Photo", "Suicidal tendencies"]
    assert item(before, "Photo").missing
    # "unknown" is missing, as intake's completeness counts it.
    assert item(before, "Suicidal tendencies").value is None
    after = full_sheet()
    assert after.missing == ["Suicidal tendencies"]
    assert not item(after, "Photo").missing


def test_every_item_intake_calls_missing_is_missing_on_the_sheet() -> None:
    data = reported_data()
    for field in ("race", "height_cm", "weight_kg", "hair_color", "eye_color"):
        data["child"][field] = None
    data["endangerments"] = {
        "pregnant": "unknown",
        "prescription_medications": "unknown",
        "suicidal_tendencies": "unknown",
        "sex_trafficking_vulnerability": "unknown",
        "other_health_or_risk_factors": "unknown",
    }
    data["completeness"] = completeness(
        EpisodeReportedData.model_validate(data, extra="ignore")
    )
    sheet = callsheet.build_call_sheet(
        episode(entry(callsheet.REPORTED, data, "2026-11-30T03:12:05Z")), [], now=NOW
    )
    expected = [callsheet.KNOWN_ITEMS[path] for path in data["completeness"]]
    assert len(expected) == 11
    assert sorted(sheet.missing) == sorted(expected)


def test_an_item_only_intake_knows_gets_its_own_row() -> None:
    sheet = callsheet.build_call_sheet(
        episode(REPORTED, completeness=["child.photo_url", "child.clothing_last_worn"]),
        [],
        now=NOW,
    )
    assert sheet.sections[-1].title == "Other report items"
    assert "Child: clothing last worn" in sheet.missing


def test_the_le_report_number_is_required_once_needed() -> None:
    nc_ncmec = [OBLIGATIONS[2]]  # NC: NCMEC wants the LE report number
    sheet = callsheet.build_call_sheet(episode(REPORTED), nc_ncmec, now=NOW)
    assert "Law-enforcement report number" in sheet.missing
    plain = callsheet.build_call_sheet(episode(REPORTED), [], now=NOW)
    assert "Law-enforcement report number" not in plain.missing
    # A notice to law enforcement recorded without the number: ask for it.
    no_number = entry(
        callsheet.NOTIFICATION,
        notification_data(reference_number=None),
        "2026-11-30T03:45:00Z",
    )
    sheet = callsheet.build_call_sheet(episode(REPORTED, no_number), [], now=NOW)
    assert "Law-enforcement report number" in sheet.missing
    assert "Law-enforcement report number" not in full_sheet().missing


def test_due_lists_the_open_le_and_ncmec_reports_soonest_first() -> None:
    assert full_sheet().due == (
        (
            "Report the missing child to NCMEC",
            "due 2026-12-01 03:10 UTC (in 22 h 10 min)",
        ),
        (
            "Written report to law enforcement",
            "due 2026-12-02 03:10 UTC (in 1 d 22 h)",
        ),
    )
    late = full_sheet(now=datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    assert late.due[0] == (
        "Report the missing child to NCMEC",
        "OVERDUE: was due 2026-12-01 03:10 UTC (50 min ago)",
    )
    waiting = copy.deepcopy(OBLIGATIONS)
    waiting[2]["waiting_reason"] = "the NCMEC case number is missing"
    sheet = callsheet.build_call_sheet(
        episode(REPORTED, NOTIFIED_LE, UPDATED), waiting, now=NOW
    )
    assert sheet.due[0][1].endswith("; still open: the NCMEC case number is missing")


def test_without_the_notifier_the_episodes_own_obligations_are_used() -> None:
    summary = {
        "obligation_id": None,
        "kind": "ncmec_report",
        "title": "Report the missing child to NCMEC",
        "status": "open",
        "clock_start": "2026-11-30T03:10:00Z",
        "due_at": "2026-12-01T03:10:00Z",
        "breached": False,
    }
    sheet = callsheet.build_call_sheet(
        episode(REPORTED, obligations=[summary]), [], now=NOW
    )
    assert [title for title, _ in sheet.due] == ["Report the missing child to NCMEC"]


def test_times_are_shown_in_utc() -> None:
    data = reported_data() | {
        "last_seen_at": "2026-11-29T17:40:00-05:00",
        "agency_learned_at": "2026-11-29T22:10:00-05:00",
    }
    sheet = callsheet.build_call_sheet(
        episode(entry(callsheet.REPORTED, data, "2026-11-30T03:12:05Z")), [], now=NOW
    )
    assert values(sheet)["Last seen"] == "2026-11-29 22:40 UTC"
    assert values(sheet)["Agency learned"] == "2026-11-30 03:10 UTC"


def test_unknown_circumstance_is_shown_not_missing() -> None:
    data = reported_data() | {"circumstance": "unknown"}
    sheet = callsheet.build_call_sheet(
        episode(entry(callsheet.REPORTED, data, "2026-11-30T03:12:05Z")), [], now=NOW
    )
    assert values(sheet)["Circumstance"] == "Unknown"
    assert "Circumstance" not in sheet.missing


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        callsheet.build_call_sheet(episode(REPORTED), [], now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match=r"no mfc\.episode\.reported"):
        callsheet.build_call_sheet(episode(NOTIFIED_LE, completeness=[]), [], now=NOW)


def test_child_initials() -> None:
    assert callsheet.child_initials(" thảo ", "Nguyễn") == "T.N."
    assert callsheet.child_initials("", "") == "?.?."


# --------------------------------------------------------------------------- #
# The PDF
# --------------------------------------------------------------------------- #


def _unescape(literal: bytes) -> bytes:
    """The bytes of a PDF literal string (without its parentheses)."""
    escapes = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}
    out, i = bytearray(), 0
    while i < len(literal):
        if literal[i : i + 1] != b"\\":
            out += literal[i : i + 1]
            i += 1
            continue
        octal = re.match(rb"[0-7]{1,3}", literal[i + 1 : i + 4])
        if octal:
            out.append(int(octal[0], 8) & 0xFF)
            i += 1 + len(octal[0])
        else:
            nxt = literal[i + 1 : i + 2]
            out += escapes.get(nxt, nxt)
            i += 2
    return bytes(out)


def pdf_text(pdf: bytes) -> str:
    """The text shown by an uncompressed fpdf2 PDF, one line per text operator:
    embedded TrueType fonts (glyph ids) are read back through their ToUnicode map,
    core fonts as Latin-1."""
    objects = {
        int(m[1]): m[2]
        for m in re.finditer(rb"(\d+) 0 obj\n(.*?)\nendobj", pdf, re.DOTALL)
    }
    to_unicode: dict[bytes, dict[int, str] | None] = {}
    for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", pdf):
        cmap_ref = re.search(rb"/ToUnicode (\d+) 0 R", objects[int(ref)])
        mapping = None
        if cmap_ref:
            mapping = {
                int(code, 16): bytes.fromhex(text.decode()).decode("utf-16-be")
                for code, text in re.findall(
                    rb"<([0-9A-Fa-f]{4})> <([0-9A-Fa-f]+)>", objects[int(cmap_ref[1])]
                )
            }
        to_unicode[name] = mapping
    lines = []
    operators = re.compile(
        rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\)\s*Tj|\[((?:\\.|[^\\\]])*)\]\s*TJ",
        re.DOTALL,
    )
    for body in objects.values():
        if b"stream" not in body or b" Tf" not in body:
            continue
        font = None
        for m in operators.finditer(body):
            if m[1] is not None:
                font = m[1]
                continue
            if m[2] is not None:
                strings = [m[2]]
            else:
                strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)", m[3])
            raw = b"".join(_unescape(s) for s in strings)
            mapping = to_unicode.get(font) if font else None
            if mapping is None:
                lines.append(raw.decode("latin-1"))
            else:
                codes = [int.from_bytes(raw[i : i + 2]) for i in range(0, len(raw), 2)]
                lines.append("".join(mapping.get(c, "\ufffd") for c in codes))
    return "\n".join(lines)


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def require_dejavu() -> bool:
    """Whether DejaVu Sans is installed; in CI it must be."""
    if callsheet.DEJAVU_REGULAR.is_file() and callsheet.DEJAVU_BOLD.is_file():
        return True
    if os.environ.get("CI"):
        pytest.fail(
            f"{callsheet.DEJAVU_REGULAR} missing: apt-get install fonts-dejavu-core"
        )
    return False


def test_the_pdf_has_the_sheet_on_two_pages() -> None:
    sheet = callsheet.build_call_sheet(
        episode(REPORTED, NOTIFIED_LE), OBLIGATIONS, now=NOW
    )
    pdf = callsheet.render_pdf(sheet, compress=False)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    # A typical sheet: one sheet of paper printed on both sides.
    assert page_count(pdf) == 2
    text = pdf_text(pdf)
    for expected in (
        "Missing child call sheet",
        EPISODE_ID,
        "NC-063",
        "DUR-2026-0412",
        "2026-11-30 05:00 UTC",
        "Find these before you call (2 missing items):",
        "Missing: Photo",
        "Missing: Suicidal tendencies",
        "MISSING",
        "DPD-26-118842",
        "Report the missing child to NCMEC",
        "due 2026-12-01 03:10 UTC (in 22 h 10 min)",
        callsheet.FOOTER,
        "Page 1 of 2",
        "Page 2 of 2",
    ):
        assert expected in text, expected
    # The photo is a link at most: no image is ever embedded.
    assert b"/Subtype /Image" not in pdf
    if require_dejavu():
        assert b"DejaVuSans" in pdf
        assert "Thảo Nguyễn Muñoz" in text
    else:
        pytest.skip("fonts-dejavu-core is not installed (and CI is unset)")


def test_a_compressed_pdf_is_smaller_and_the_same_length_in_pages() -> None:
    sheet = full_sheet()
    compressed = callsheet.render_pdf(sheet)
    plain = callsheet.render_pdf(sheet, compress=False)
    assert compressed.startswith(b"%PDF-")
    assert len(compressed) < len(plain)
    assert "Nothing missing" not in pdf_text(plain)


def test_a_long_sheet_runs_over_pages_numbered_n_of_total() -> None:
    data = reported_data()
    data["endangerments"]["prescription_medications"] = [
        f"medication number {n}, 10 mg twice a day with food" for n in range(50)
    ]
    data["endangerments"]["other_health_or_risk_factors"] = [
        f"risk factor {n}: described at some length to fill the page" for n in range(50)
    ]
    data["child"]["distinguishing_marks"] = "; ".join(
        f"tattoo {n} on the left forearm" for n in range(80)
    )
    sheet = callsheet.build_call_sheet(
        episode(entry(callsheet.REPORTED, data, "2026-11-30T03:12:05Z")),
        OBLIGATIONS,
        now=NOW,
    )
    pdf = callsheet.render_pdf(sheet, compress=False)
    pages = page_count(pdf)
    assert pages >= 3
    text = pdf_text(pdf)
    for page in range(1, pages + 1):
        assert f"Page {page} of {pages}" in text
    assert f"Page {pages + 1} of" not in text
    assert text.count(callsheet.FOOTER) == pages
    # The header repeats from page 2 on, naming the child by initials only.
    assert text.count(f"Episode {EPISODE_ID}  |  Child T.N.") == pages - 1
    flat = " ".join(text.split())  # wrapped lines are separate text operators
    assert "medication number 49, 10 mg twice a day with food" in flat
    assert "risk factor 49: described at some length to fill the page" in flat


def test_without_dejavu_helvetica_prints_latin_1(monkeypatch) -> None:
    monkeypatch.setattr(callsheet, "DEJAVU_REGULAR", Path("/nonexistent/DejaVu.ttf"))
    sheet = full_sheet()
    pdf = callsheet.render_pdf(sheet, compress=False)
    assert b"/BaseFont /Helvetica" in pdf
    assert b"DejaVu" not in pdf
    text = pdf_text(pdf)
    assert "Thao Nguyen Muñoz" in text  # ả, ễ lose their marks; ñ is Latin-1
    assert "Missing: Suicidal tendencies" in text
    assert "Page 2 of 2" in text


def test_characters_dejavu_lacks_become_question_marks() -> None:
    if not require_dejavu():
        pytest.skip("fonts-dejavu-core is not installed (and CI is unset)")
    data = reported_data()
    data["child"]["first_name"] = "小明"
    sheet = callsheet.build_call_sheet(
        episode(entry(callsheet.REPORTED, data, "2026-11-30T03:12:05Z")), [], now=NOW
    )
    text = pdf_text(callsheet.render_pdf(sheet, compress=False))
    assert "?? Nguyễn Muñoz" in text
