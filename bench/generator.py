"""Seeded, realistic reports of missing children: invented data only.

The same seed gives the same reports, so two runs of a benchmark send the same load.
Names come from short lists of invented surnames; dates, descriptions and
endangerments follow rough proportions of real caseloads (most episodes are
runaways from congregate care, a few are abductions), without any real record behind
them.
"""

import random
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

FIRST_NAMES = (
    "Avery", "Jordan", "Riley", "Casey", "Quinn", "Rowan", "Skyler", "Emerson",
    "Harper", "Micah", "Reese", "Sage", "Dakota", "Parker", "Hayden", "Kai",
)  # fmt: skip
LAST_NAMES = (
    "Testchild", "Exampleton", "Sampleford", "Fictivale", "Placeholder",
    "Mockridge", "Inventado", "Nobodyson", "Demoway", "Specimen",
)  # fmt: skip
CIRCUMSTANCES = (("runaway", 80), ("unknown", 12), ("family_abduction", 6),
                 ("non_family_abduction", 2))  # fmt: skip
PLACEMENTS = (("congregate_care", 45), ("foster_home", 35), ("kinship", 15),
              ("other", 5))  # fmt: skip
HAIR = ("black", "brown", "blond", "red", "auburn", "gray")
EYES = ("brown", "blue", "green", "hazel", "gray")
MEDICATIONS = ("sertraline", "methylphenidate", "insulin", "albuterol inhaler")
RISKS = ("asthma", "type 1 diabetes", "seizure disorder", "prior self-harm")


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    values, weights = zip(*choices, strict=True)
    chosen: str = rng.choices(values, weights)[0]
    return chosen


def report(
    rng: random.Random, *, county: str, learned: datetime, n: int
) -> dict[str, Any]:
    """One report as a county system sends it to ``POST /v1/episodes``."""
    age_days = rng.randint(9 * 365, 17 * 365)
    last_seen = learned - timedelta(minutes=rng.randint(20, 600))
    sex = rng.choice(("female", "male"))
    return {
        "county_code": county,
        "case_id": f"bench-{UUID(int=rng.getrandbits(128)).hex[:16]}-{n}",
        "child": {
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES),
            "date_of_birth": (learned - timedelta(days=age_days)).date().isoformat(),
            "sex": sex,
            "race": "unknown",
            "height_cm": rng.randint(130, 185),
            "weight_kg": rng.randint(30, 90),
            "hair_color": rng.choice(HAIR),
            "eye_color": rng.choice(EYES),
            "photo_url": f"https://photos.example.org/bench/{n}.jpg",
        },
        "last_seen_at": last_seen.isoformat(),
        "discovered_at": (last_seen + (learned - last_seen) / 2).isoformat(),
        "agency_learned_at": learned.isoformat(),
        "circumstance": _weighted(rng, CIRCUMSTANCES),
        "placement_type": _weighted(rng, PLACEMENTS),
        "prior_episodes": min(int(rng.expovariate(0.7)), 12),
        "endangerments": {
            "pregnant": sex == "female" and rng.random() < 0.03,
            "prescription_medications": rng.sample(
                MEDICATIONS, k=rng.choice((0, 0, 0, 1, 2))
            ),
            "suicidal_tendencies": rng.random() < 0.05,
            "sex_trafficking_vulnerability": rng.choice(("unknown", True, False)),
            "other_health_or_risk_factors": rng.sample(RISKS, k=rng.choice((0, 0, 1))),
        },
        "caseworker": {
            "id": f"cw-{rng.randint(1, 40)}",
            "name": "Casey Worker",
            "email": "caseworker@agency.example",
        },
        "supervisor": {
            "id": f"sv-{rng.randint(1, 8)}",
            "name": "Sam Supervisor",
            "email": "supervisor@agency.example",
        },
    }
