"""``python -m followup``: read settings from the environment and serve."""

from followup.bootstrap import create_app
from followup.config import FollowupSettings
from shared.serve import serve


def main() -> None:
    settings = FollowupSettings()  # values come from the environment
    serve("followup", settings, create_app(settings))


if __name__ == "__main__":
    main()
