"""``mfc audit``: make a signing key, and verify an exported log offline.

``mfc audit verify`` needs no database and no service: an export (the JSON lines of
``GET /v1/audit/entries?format=jsonl``), the checkpoint copies kept outside the
database (a directory, or a JSON lines file of ``GET /v1/audit/checkpoints``), and
the public key(s). It exits 0 when everything verifies and 1 naming the first entry
and checkpoint that fail.
"""

import argparse
import base64
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.adapters.outside import CheckpointDirectory
from audit.domain import bundle, compliance, note
from audit.domain.checkpoint import Checkpoint, load_private_key, load_public_keys
from audit.domain.verify import LogVerifier, StoredEntry, VerifyReport


def read_export(path: Path) -> Iterator[StoredEntry]:
    """Entries of a JSON lines export; redacted entries can only be checked by hash."""
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                yield StoredEntry(
                    seq=int(entry["seq"]),
                    topic=str(entry["topic"]),
                    leaf_hash=base64.b64decode(entry["leaf_hash"]),
                    event=None if entry.get("redacted") else entry["event"],
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{number}: not an export entry ({exc!r})"
                ) from exc


def read_checkpoints(path: Path) -> list[Checkpoint]:
    if path.is_dir():
        return CheckpointDirectory(path).read()
    document = json.loads(path.read_text())
    items = document["checkpoints"] if isinstance(document, dict) else document
    return [Checkpoint.from_json(item) for item in items]


def _witnesses(given: list[str]) -> list[note.Witness]:
    """Witness verifier keys, each given as the key or a file holding it."""
    keys = []
    for value in given:
        path = Path(value)
        text = path.read_text() if "+" not in value and path.exists() else value
        keys.append(note.parse_vkey(text))
    return keys


def verify_export(
    *,
    entries: Path,
    checkpoints: Path,
    public_keys: list[Path],
    witness_keys: list[str] = [],  # noqa: B006
) -> VerifyReport:
    verifier = LogVerifier(
        checkpoints=[(c, str(checkpoints)) for c in read_checkpoints(checkpoints)],
        public_keys=load_public_keys(public_keys),
        witnesses=_witnesses(witness_keys),
    )
    for entry in read_export(entries):
        verifier.add(entry)
    return verifier.finish()


def _verify(args: argparse.Namespace) -> int:
    if args.bundle is not None:
        return _verify_bundle(args)
    if args.entries is None or args.checkpoints is None:
        print(  # noqa: T201
            "mfc audit verify: give --bundle FILE, or --entries and --checkpoints",
            file=sys.stderr,
        )
        return 2
    try:
        report = verify_export(
            entries=Path(args.entries),
            checkpoints=Path(args.checkpoints),
            public_keys=[Path(p) for p in args.public_key],
            witness_keys=args.witness_key,
        )
    except (OSError, ValueError) as exc:
        print(f"mfc audit verify: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    print(json.dumps(report.to_json(), indent=2))  # noqa: T201
    if report.contents_checked < report.tree_size:
        print(  # noqa: T201
            f"note: {report.tree_size - report.contents_checked} redacted entries "
            "were checked by their leaf hash only",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def _verify_bundle(args: argparse.Namespace) -> int:
    """A scoped proof bundle, offline: the first bad item is named."""
    try:
        raw = Path(args.bundle).read_bytes()
        keys = load_public_keys([Path(p) for p in args.public_key])
        witnesses = _witnesses(args.witness_key)
    except (OSError, ValueError) as exc:
        print(f"mfc audit verify: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    report = bundle.verify_bundle(raw, keys, witnesses)
    print(json.dumps(report.to_json(), indent=2))  # noqa: T201
    if not report.ok:
        print(f"mfc audit verify: {args.bundle}: {report.problems[0]}", file=sys.stderr)  # noqa: T201
        return 1
    hashed = report.entries - report.checked_by_content
    if hashed:
        print(  # noqa: T201
            f"note: {hashed} redacted entries were checked by their leaf hash only",
            file=sys.stderr,
        )
    return 0


def _witness_key(args: argparse.Namespace) -> int:
    """A witness's verifier key, for AUDIT_WITNESS_KEYS and --witness-key."""
    try:
        public = load_private_key(Path(args.path)).public_key()
    except (OSError, ValueError) as exc:
        print(f"mfc audit witness-key: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    print(note.vkey(args.name, note.COSIGNATURE_V1, public))  # noqa: T201
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from audit.bootstrap import write_key_pair

    path = Path(args.path)
    if path.exists():
        print(f"mfc audit keygen: {path} exists; not overwriting", file=sys.stderr)  # noqa: T201
        return 1
    public = write_key_pair(path)
    print(f"wrote {path} (private, mode 0600) and {public} (public)")  # noqa: T201
    return 0


def policies_in_export(lines: Iterator[str] | list[str]) -> dict[str, dict[str, Any]]:
    """The policy files an export holds (``mfc.policy.adopted`` entries), by
    digest; each one's content is checked against its digest."""
    found: dict[str, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        for file in compliance.adopted_files([entry.get("event") or {}]):
            if (fault := file.fault()) is not None:
                raise ValueError(f"entry {entry.get('seq')}: {fault}")
            found.setdefault(file.digest, dict(file.data))
    return found


def _policy(args: argparse.Namespace) -> int:
    try:
        with Path(args.export).open(encoding="utf-8") as lines:
            found = policies_in_export(list(lines))
    except (OSError, ValueError, KeyError) as exc:
        print(f"mfc audit policy: {args.export}: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.digest is None:
        for digest, data in found.items():
            line = f"{digest}  {data['version']}  {data['file_name']}  {data['adopted_at']}"
            print(line)  # noqa: T201
        return 0
    chosen = found.get(args.digest)
    if chosen is None:
        print(  # noqa: T201
            f"mfc audit policy: no policy with sha256 {args.digest} in {args.export} "
            "(an export made before policies were announced lacks it: ask "
            "GET /v1/audit/policies/{digest})",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(chosen["content"])
    return 0


def moment_arg(text: str) -> datetime:
    """A command-line date or time (ISO 8601; UTC when it names no offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; write e.g. 2026-01-31 or "
            "2026-01-31T12:00:00Z"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compliance_from_export(
    lines: Iterable[str],
    *,
    as_of: datetime,
    counties: list[str] | None = None,
    clock_from: datetime | None = None,
    clock_to: datetime | None = None,
) -> dict[str, Any]:
    """The compliance report of an export (both views), as the audit service
    computes it online (the same code, the same filters)."""
    events = []
    for line in lines:
        if line.strip():
            entry = json.loads(line)
            event = entry.get("event") or {}
            if compliance.reads(entry.get("topic", ""), event.get("type")):
                events.append(event)
    return compliance.report_of_events(
        events,
        now=as_of,
        counties=counties,
        clock_from=clock_from,
        clock_to=clock_to,
    )


def _entry_lines(args: argparse.Namespace) -> list[str]:
    """The entries of the export or, with ``--offline``, of the proof bundle."""
    if args.offline:
        entries = bundle.entries_of(Path(args.offline).read_bytes())
        return [json.dumps(entry) for entry in entries]
    return Path(args.export).read_text(encoding="utf-8").splitlines()


def _compliance(args: argparse.Namespace) -> int:
    try:
        result = compliance_from_export(
            _entry_lines(args),
            as_of=args.as_of or datetime.now(UTC),
            counties=[c.upper() for c in args.county] or None,
            clock_from=args.from_,
            clock_to=args.to,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        source = args.offline or args.export
        print(f"mfc audit compliance: {source}: {exc!r}", file=sys.stderr)  # noqa: T201
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(compliance.csv_text(result, args.view))
    return 0


def add_commands(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> None:
    audit = commands.add_parser("audit", help="audit log keys and offline verification")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair for checkpoints")
    keygen.add_argument("path", help="private key file to write (PATH.pub: public)")
    keygen.set_defaults(func=_keygen)
    witness_key = sub.add_parser(
        "witness-key", help="print a witness's verifier key from its private key"
    )
    witness_key.add_argument("path", help="the witness's private key (PEM)")
    witness_key.add_argument(
        "--name",
        default="witness.localhost/mfc",
        help="the witness's name (WITNESS_NAME)",
    )
    witness_key.set_defaults(func=_witness_key)
    verify = sub.add_parser(
        "verify", help="verify an exported log or a proof bundle, offline"
    )
    verify.add_argument("--entries", help="JSON lines export of the whole log")
    verify.add_argument(
        "--checkpoints",
        help="the outside checkpoint directory, or a JSON file of checkpoints",
    )
    verify.add_argument(
        "--bundle",
        help="a proof bundle (GET /v1/audit/bundle): an auditor's counties and "
        "period, checked without the rest of the log",
    )
    verify.add_argument(
        "--public-key",
        action="append",
        required=True,
        help="PEM public key; repeat for keys of before a rotation",
    )
    verify.add_argument(
        "--witness-key",
        action="append",
        default=[],
        help="a witness's verifier key (GET /vkey of the witness), or a file holding "
        "it; repeatable. Checkpoints must then be co-signed by one of them",
    )
    verify.set_defaults(func=_verify)
    policy = sub.add_parser(
        "policy",
        help="list the policy files an export holds, or print one by its sha256",
    )
    policy.add_argument("--export", required=True, help="JSON lines export")
    policy.add_argument("digest", nargs="?", help="the policy_digest of an obligation")
    policy.set_defaults(func=_policy)
    report = sub.add_parser(
        "compliance",
        help="the compliance report of an export, offline (the online report's bytes)",
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", help="JSON lines export")
    source.add_argument(
        "--offline",
        metavar="BUNDLE",
        help="a proof bundle (verify it first with mfc audit verify --bundle)",
    )
    report.add_argument("--county", action="append", default=[], help="repeatable")
    report.add_argument(
        "--from", dest="from_", type=moment_arg, help="clock start from"
    )
    report.add_argument("--to", type=moment_arg, help="clock start before")
    report.add_argument(
        "--as-of",
        type=moment_arg,
        help="judge outcomes at this moment (default now); give the online report's "
        "as_of to reproduce it byte for byte",
    )
    report.add_argument("--format", choices=("csv", "json"), default="csv")
    report.add_argument(
        "--view",
        choices=compliance.VIEWS,
        default="obligations",
        help="CSV rows: the notifier's obligations, or per episode and kind both "
        "views side by side with each finding",
    )
    report.set_defaults(func=_compliance)
