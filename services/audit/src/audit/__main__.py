"""``python -m audit``: read settings from the environment and serve."""

from audit.bootstrap import create_app
from audit.config import AuditSettings
from shared.serve import serve


def main() -> None:
    settings = AuditSettings()  # values come from the environment
    serve("audit", settings, create_app(settings))


if __name__ == "__main__":
    main()
