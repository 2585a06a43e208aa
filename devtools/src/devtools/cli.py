"""``mfc``: the project's command line.

``mfc audit keygen|verify`` makes the audit signing key and verifies an exported
log offline. ``mfc token`` signs a bearer token with the development key (never for
production: there, tokens come from the agency's identity provider). ``mfc dev`` runs the whole system on embedded infrastructure (or on the Kafka and
PostgreSQL that ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` name) until Ctrl-C or
SIGTERM, then stops everything in order.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devtools.devstack import EmbeddedInfrastructure, ServiceSet, describe


class _StopError(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _StopError(signal.Signals(signum).name)


def dev(args: argparse.Namespace) -> int:
    from devtools import devfront

    data_dir = Path(args.data_dir).resolve()
    infrastructure = EmbeddedInfrastructure(
        data_dir=data_dir, kafka_port=args.kafka_port, env=os.environ
    )
    services: ServiceSet | None = None
    front = (
        devfront.FrontDoor(state_dir=data_dir, echo=_echo)
        if devfront.wanted()
        else None
    )
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        print(f"mfc dev: starting infrastructure (data in {data_dir})", flush=True)  # noqa: T201
        infra = infrastructure.start()
        env = dict(os.environ)
        if front is not None:
            front.start()
            env = front.service_env(env)
        services = ServiceSet(infra, log_dir=data_dir / "logs", env=env, echo=_echo)
        services.start()
        services.wait_ready(timeout=args.ready_timeout)
        if front is not None:
            front.start_console(services, env)
            front.wait_ready(timeout=args.ready_timeout)
            if os.environ.get("MFC_DEV_DEMO", "1") != "0" and front.seed_demo(services):
                print("mfc dev: reported an invented missing child (demo)", flush=True)  # noqa: T201
        people = front.describe() if front is not None else None
        print(describe(infra, services, people=people), flush=True)  # noqa: T201
        while True:
            exited = services.first_exited()
            if exited is None and front is not None and not front.console_alive():
                exited = front.console
            if exited is not None:
                print(f"mfc dev: {exited.name} exited; stopping", file=sys.stderr)  # noqa: T201
                return 1
            time.sleep(0.5)
    except _StopError as stop:
        print(f"mfc dev: {stop}, stopping", flush=True)  # noqa: T201
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"mfc dev: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        # Ignore a second Ctrl-C while we shut down in order.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if front is not None and front.console is not None:
            front.console.stop()
        if services is not None:
            services.stop()
        if front is not None:
            front.stop()
        infrastructure.stop()
        print("mfc dev: stopped", flush=True)  # noqa: T201


def _echo(line: str) -> None:
    print(line, flush=True)  # noqa: T201


def token(args: argparse.Namespace) -> int:
    from devtools.devtokens import DEV_AUDIENCE, dev_issuer, dev_key_paths, mint
    from shared.auth import Role
    from shared.durations import parse_duration

    key_file = (
        Path(args.key_file)
        if args.key_file
        else dev_key_paths(Path(args.data_dir) / "auth")[0]
    )
    if not key_file.exists():
        print(  # noqa: T201
            f"mfc token: no signing key at {key_file}; `mfc dev` makes one",
            file=sys.stderr,
        )
        return 2
    known = {r.value for r in Role}
    unknown = sorted(set(args.role) - known)
    if unknown:
        print(  # noqa: T201
            f"mfc token: unknown roles {', '.join(unknown)} (known: {', '.join(sorted(known))})",
            file=sys.stderr,
        )
        return 2
    print(  # noqa: T201
        mint(
            key_file.read_bytes(),
            subject=args.subject,
            roles=args.role,
            counties=[c.upper() for c in args.county] or ["*"],
            issuer=args.issuer
            or os.environ.get("AUTH_ISSUER")
            or dev_issuer(os.environ),
            audience=args.audience or os.environ.get("AUTH_AUDIENCE", DEV_AUDIENCE),
            ttl=parse_duration(args.ttl),
        )
    )
    return 0


def docs(args: argparse.Namespace) -> int:
    from devtools.configdoc import generated_files

    root = Path(args.root)
    for relative, text in generated_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")  # noqa: T201
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mfc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev_parser = commands.add_parser(
        "dev", help="run the whole system on embedded infrastructure"
    )
    dev_parser.add_argument(
        "--data-dir",
        default=os.environ.get("MFC_DATA_DIR", ".mfc-data"),
        help="where PostgreSQL keeps its data and services their logs (env MFC_DATA_DIR)",
    )
    dev_parser.add_argument(
        "--kafka-port", type=int, default=int(os.environ.get("MFC_KAFKA_PORT", "9092"))
    )
    dev_parser.add_argument("--ready-timeout", type=float, default=90.0)
    dev_parser.set_defaults(func=dev)
    token_parser = commands.add_parser(
        "token",
        help="sign a bearer token with the development key (development and tests only)",
    )
    token_parser.add_argument(
        "--role", action="append", required=True, help="a role; repeat for more"
    )
    token_parser.add_argument(
        "--county",
        action="append",
        default=[],
        help="a county code in scope; repeat for more (default: every county)",
    )
    token_parser.add_argument("--subject", default="dev-user", help="the sub claim")
    token_parser.add_argument("--ttl", default="8h", help="lifetime, e.g. 30m or 8h")
    token_parser.add_argument(
        "--data-dir",
        default=os.environ.get("MFC_DATA_DIR", ".mfc-data"),
        help="the `mfc dev` data directory that holds the key (env MFC_DATA_DIR)",
    )
    token_parser.add_argument("--key-file", help="a PEM private key instead")
    token_parser.add_argument(
        "--issuer",
        help="iss (default: env AUTH_ISSUER, else the `mfc dev` sign-in provider)",
    )
    token_parser.add_argument("--audience", help="aud (default: env AUTH_AUDIENCE)")
    token_parser.set_defaults(func=token)
    docs_parser = commands.add_parser(
        "docs", help="write the generated docs (configuration, AsyncAPI, OpenAPI)"
    )
    docs_parser.add_argument("--root", default=".", help="the repository root")
    docs_parser.set_defaults(func=docs)
    # The audit service's own commands (keygen, offline verify); imported here
    # so `mfc` stays the one command line.
    from audit.cli import add_commands
    from devtools.policycli import add_commands as add_policy_commands

    add_commands(commands)
    add_policy_commands(commands)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
