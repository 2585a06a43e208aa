"""``python -m console``: read settings from the environment and serve."""

from console.bootstrap import create_app
from console.config import ConsoleSettings
from shared.serve import serve


def main() -> None:
    settings = ConsoleSettings()  # values come from the environment
    serve("console", settings, create_app(settings))


if __name__ == "__main__":
    main()
