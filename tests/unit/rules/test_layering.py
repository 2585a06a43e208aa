"""``rules`` sits on top of ``shared``: the policy's schema and loader are the
contract, and the runtime library never reaches up into rule evaluation."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[3]
IMPORTS_RULES = re.compile(r"^\s*(from|import)\s+rules\b", re.MULTILINE)


def test_shared_never_imports_rules():
    sources = sorted(ROOT.glob("shared/src/shared/**/*.py"))
    assert sources
    offenders = [s for s in sources if IMPORTS_RULES.search(s.read_text())]
    assert not offenders, offenders
