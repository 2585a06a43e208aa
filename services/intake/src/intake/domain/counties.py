"""County codes: state postal code + 3-digit county FIPS, checked against the Census
county list (2020) that the ``addfips`` package ships as data files."""

import csv
import io
from functools import cache
from importlib import resources


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("addfips").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def known_counties() -> dict[str, str]:
    """``{"NC-063": "Durham County", ...}`` for every US county and equivalent."""
    postal = {row["fips"]: row["postal"] for row in _rows("states.csv")}
    return {
        f"{postal[row['statefp']]}-{row['countyfp']}": row["name"]
        for row in _rows("counties_2020.csv")
        if row["statefp"] in postal
    }


def is_us_county(code: str) -> bool:
    return code.upper() in known_counties()
