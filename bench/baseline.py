"""Benchmarks side by side with an old commit, on the same machine in the same run.

    .venv/bin/python -m bench.escalations --baseline cd897c4 --runs 3
    .venv/bin/python -m bench.baseline cd897c4     # where each tree's code imports from

Machines differ in speed, so a target is a ratio against an old commit measured
alongside. ``worktree(REF)`` materialises a commit as a git worktree in the temporary
directory (``git worktree add --detach``; one already there is reused and kept,
one made here is removed afterwards); ``Tree.env()`` is the environment that runs
that tree's code with this venv: ``PYTHONPATH`` names its ``shared/src``,
``services/*/src`` (and ``rules/src``, ``devtools/src`` where present) ahead of the
editable installs, so ``python -m notifier`` imports the old notifier. The venv has
the union of both trees' dependencies installed.

``alternate`` runs one benchmark run at a time as ``python -m bench.<name> ...
--one-run`` in a child process: always this bench code (the current directory),
on the sources of one tree or the other, new and baseline in turn. The child
starts its own stack (its PostgreSQL migrations, its services) from the tree it
runs on, and prints its result as one JSON line.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULT_MARK = "BENCH-RESULT "
"""How a ``--one-run`` child marks the line of stdout that carries its result."""


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass(frozen=True)
class Tree:
    """A tree of the project's sources: the working tree or a commit's worktree."""

    root: Path
    label: str  # what the results call it, e.g. "baseline cd897c4"

    def sources(self) -> list[Path]:
        optional = [self.root / "rules" / "src", self.root / "devtools" / "src"]
        return [
            self.root / "shared" / "src",
            *sorted((self.root / "services").glob("*/src")),
            *(path for path in optional if path.is_dir()),
        ]

    def packages(self) -> list[str]:
        """Top-level packages of this tree (shared, each service, ...)."""
        return sorted(
            package.name
            for source in self.sources()
            for package in source.iterdir()
            if (package / "__init__.py").is_file()
        )

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        paths = [str(path) for path in self.sources()]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env


def working_tree() -> Tree:
    """This checkout as it is now, uncommitted changes included."""
    head = git("rev-parse", "--short=7", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return Tree(REPO, f"working tree {head}" + (" + changes" if dirty else ""))


@contextmanager
def worktree(ref: str, *, role: str = "baseline") -> Iterator[Tree]:
    """``ref`` checked out (detached) in the temporary directory while in use."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = Path(tempfile.gettempdir()) / f"mfc-baseline-{commit[:12]}"
    git("worktree", "prune")
    listed = git("worktree", "list", "--porcelain").splitlines()
    made = f"worktree {path}" not in listed
    if made:
        git("worktree", "add", "--detach", str(path), commit)
    try:
        yield Tree(path, f"{role} {commit[:7]}")
    finally:
        if made:
            git("worktree", "remove", "--force", str(path))


_WHERE = (
    "import importlib, json, sys\n"
    "print(json.dumps({n: importlib.import_module(n).__file__ for n in sys.argv[1:]}))"
)


def imported_from(tree: Tree) -> dict[str, str]:
    """Where each of the tree's packages imports from, run as the children run."""
    answer = subprocess.run(
        [sys.executable, "-c", _WHERE, *tree.packages()],
        cwd=REPO,
        env=tree.env(),
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, str] = json.loads(answer.stdout)
    return found


def verify(tree: Tree) -> None:
    """Fail unless every package of the tree imports from the tree itself."""
    elsewhere = {
        name: file
        for name, file in imported_from(tree).items()
        if not Path(file).resolve().is_relative_to(tree.root.resolve())
    }
    if elsewhere:
        raise RuntimeError(f"{tree.label}: imported from elsewhere: {elsewhere}")


def run_child(tree: Tree, module: str, argv: Sequence[str]) -> dict[str, Any]:
    """One ``--one-run`` of ``module`` on ``tree``'s sources; its result."""
    child = subprocess.run(
        [sys.executable, "-m", module, *argv, "--one-run"],
        cwd=REPO,
        env=tree.env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    results = [
        json.loads(line.removeprefix(RESULT_MARK))
        for line in child.stdout.splitlines()
        if line.startswith(RESULT_MARK)
    ]
    if child.returncode != 0 or not results:
        raise RuntimeError(f"{module} on {tree.label} failed ({child.returncode})")
    result: dict[str, Any] = results[-1]
    return result


def emit(result: dict[str, Any]) -> None:
    """A ``--one-run`` child's answer to ``run_child``."""
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)  # noqa: T201


@dataclass
class Sides:
    new: Tree
    baseline: Tree
    new_runs: list[dict[str, Any]]
    baseline_runs: list[dict[str, Any]]


def alternate(
    module: str,
    argv: Callable[[int], Sequence[str]],
    *,
    baseline: str,
    new: str | None = None,
    runs: int,
) -> Sides:
    """``runs`` runs of ``module`` on each tree, alternated (new, baseline, new,
    ...); run n gets ``argv(n)``. ``new``: a ref, else the working tree."""
    with ExitStack() as stack:
        old_tree = stack.enter_context(worktree(baseline))
        new_tree = (
            stack.enter_context(worktree(new, role="new")) if new else working_tree()
        )
        sides = Sides(new_tree, old_tree, [], [])
        for tree in (new_tree, old_tree):
            verify(tree)
        for n in range(runs):
            for tree, into in ((new_tree, sides.new_runs),
                               (old_tree, sides.baseline_runs)):  # fmt: skip
                into.append(run_child(tree, module, argv(n)))
                print(f"{tree.label}: {json.dumps(into[-1])}", flush=True)  # noqa: T201
        return sides


def child_argv(args: argparse.Namespace, *, drop: Sequence[str] = ()) -> list[str]:
    """The options of ``args`` as a command line again, less the comparison's own
    and those in ``drop``."""
    skip = {"baseline", "new", "runs", "no_write", "one_run", *drop}
    argv: list[str] = []
    for name, value in vars(args).items():
        option = "--" + name.replace("_", "-")
        if name in skip or value is None or value is False:
            continue
        argv.extend([option] if value is True else [option, str(value)])
    return argv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--baseline REF``, ``--new REF`` and the children's ``--one-run``."""
    parser.add_argument("--baseline", metavar="REF",
                        help="also run this commit, alternating; report both "
                        "and their ratio")  # fmt: skip
    parser.add_argument("--new", metavar="REF",
                        help="with --baseline: this commit as the new side "
                        "(default: the working tree)")  # fmt: skip
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", nargs="?", help="a commit (default: none, only this)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        trees = [working_tree()]
        if args.ref:
            trees.append(stack.enter_context(worktree(args.ref)))
        for tree in trees:
            print(f"{tree.label} ({tree.root}):")  # noqa: T201
            for name, file in imported_from(tree).items():
                print(f"  {name:<10} {file}")  # noqa: T201
            verify(tree)


if __name__ == "__main__":
    main()
