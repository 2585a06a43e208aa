"""``python -m intake``: read settings from the environment and serve."""

from intake.bootstrap import create_app
from intake.config import IntakeSettings
from shared.serve import serve


def main() -> None:
    settings = IntakeSettings()  # values come from the environment
    serve("intake", settings, create_app(settings))


if __name__ == "__main__":
    main()
