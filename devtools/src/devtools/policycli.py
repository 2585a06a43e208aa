"""``mfc policy check FILE`` (validate a policy file as the services would) and
``mfc policy what-if`` (replay a period's episodes under a candidate policy)."""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from audit.cli import moment_arg, policies_in_export
from devtools.whatif import (
    WhatIf,
    WhatIfError,
    export_lines,
    read_trail,
    render_csv,
    render_table,
    what_if,
)
from shared.policy import (
    Policy,
    PolicyError,
    default_policy_path,
    load_policy,
    parse_policy,
)


def _check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(Path(args.file))
    except (PolicyError, OSError) as exc:
        print(f"refused: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"{args.file}: valid (sha256 {policy.digest})")  # noqa: T201
    return 0


def _what_if(args: argparse.Namespace) -> int:
    try:
        candidate = load_policy(Path(args.candidate))
        given = [load_policy(Path(p)) for p in args.policy]
        lines = list(export_lines(Path(args.export)))
        left_out: list[str] = []
        trails = read_trail(lines, origin=args.export, left_out=left_out)
        # The versions the trail archived (mfc.policy.adopted), after those given;
        # the first given (else the shipped one) stands in for a version not found.
        archived = _archived(policies_in_export(lines))
        in_force = [*(given or [load_policy(default_policy_path())]), *archived]
    except (PolicyError, WhatIfError, OSError, ValueError) as exc:
        print(f"what-if: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if left_out:
        print(  # noqa: T201
            f"what-if: warning: {len(left_out)} events of episodes whose report is not "
            "in the export were left out (export a period that starts before them)",
            file=sys.stderr,
        )
    if not trails:
        print(f"what-if: {args.export} holds no reported episode", file=sys.stderr)  # noqa: T201
        return 1
    result = asyncio.run(
        what_if(
            trails,
            candidate=candidate,
            in_force=in_force,
            as_of=args.as_of,
            learned_from=args.from_,
            learned_to=args.to,
            counties=[c.upper() for c in args.county] or None,
        )
    )
    text = _render(result, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _archived(found: dict[str, dict[str, Any]]) -> list[Policy]:
    """The trail's policy versions that load today; one that no longer does (the
    loader grew stricter) is left out with a warning: its episodes are then replayed
    under the stand-in, and the output says so."""
    loaded = []
    for digest, data in found.items():
        try:
            loaded.append(
                parse_policy(
                    data["content"].encode(), origin=f"trail:{data['file_name']}"
                )
            )
        except PolicyError as exc:
            warning = (
                f"what-if: warning: archived policy {digest[:12]} does not load: {exc}"
            )
            print(warning, file=sys.stderr)  # noqa: T201
    return loaded


def _render(result: WhatIf, fmt: str) -> str:
    if fmt == "csv":
        return render_csv(result)
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n"
    return render_table(result)


def add_commands(commands: Any) -> None:
    policy = commands.add_parser(
        "policy", help="check a policy file, or try one on past episodes"
    )
    sub = policy.add_subparsers(dest="policy_command", required=True)
    check = sub.add_parser("check", help="validate a policy file as the services would")
    check.add_argument("file")
    check.set_defaults(func=_check)
    whatif = sub.add_parser(
        "what-if",
        help="replay a period's episodes from an audit export under a candidate policy",
        description=(
            "Replay the episodes of an audit export (GET /v1/audit/entries?format=jsonl, "
            "made with the auditor_pii role) under the policy they ran under and under "
            "a candidate, and show what would change. Nothing is written anywhere."
        ),
    )
    whatif.add_argument("--candidate", required=True, help="the policy file to try")
    whatif.add_argument("--export", required=True, help="the audit export (JSON lines)")
    whatif.add_argument(
        "--policy",
        action="append",
        default=[],
        help="a policy file the episodes ran under; repeat for several versions "
        "(matched by sha256 to each episode's obligations; default: the shipped policy)",
    )
    whatif.add_argument(
        "--from",
        dest="from_",
        type=moment_arg,
        help="episodes the agency learned of from then (a date or time; UTC unless "
        "it gives an offset, e.g. 2026-01-01T00:00:00-05:00)",
    )
    whatif.add_argument("--to", type=moment_arg, help="... and before then")
    whatif.add_argument(
        "--county", action="append", default=[], help="a county code; repeat for more"
    )
    whatif.add_argument(
        "--as-of",
        type=moment_arg,
        help="judge outcomes at this time (default: the last event of the episodes chosen)",
    )
    whatif.add_argument("--format", choices=("table", "csv", "json"), default="table")
    whatif.add_argument("--output", help="write to this file instead of the terminal")
    whatif.set_defaults(func=_what_if)
