"""The docs, the container files and the code agree (no Docker engine runs here; see README)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`RESTORA_{name.upper()}`" in readme, f"RESTORA_{name.upper()} is not in the README"


def test_readme_gives_the_two_fresh_machine_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "restora serve" in makefile and "pytest" in makefile


def test_compose_file_names_real_targets_and_production_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    targets = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, flags=re.M))
    services = compose["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (ROOT / build["dockerfile"]).is_file() and build["target"] in targets, name
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command and "noeviction" in redis_command
    assert all("healthcheck" in services[s] or "HEALTHCHECK" in dockerfile for s in services)
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["worker-gpu"]["stop_grace_period"]


def test_images_install_the_same_pinned_torch_as_ci():
    pin = re.search(r"TORCH := (torch==[\d.]+)", (ROOT / "Makefile").read_text()).group(1)
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    assert dockerfile.count(pin) == 2, "both worker images must install the Makefile's torch pin"
    assert pin in (ROOT / "pyproject.toml").read_text()
