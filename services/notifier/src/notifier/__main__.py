"""``python -m notifier``: read settings from the environment and serve."""

from notifier.bootstrap import create_app
from notifier.config import NotifierSettings
from shared.serve import serve


def main() -> None:
    settings = NotifierSettings()  # values come from the environment
    serve("notifier", settings, create_app(settings))


if __name__ == "__main__":
    main()
