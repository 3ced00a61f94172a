"""The docs, the container files and the code agree (no Docker engine runs here; see README)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml

from core.queues import RESTORE_QUEUES, queue
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
    pins = re.search(r"TORCH := (torch==[\d.]+) (torchvision==[\d.]+)", (ROOT / "Makefile").read_text()).groups()
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    for pin in pins:
        assert dockerfile.count(pin) == 2, f"both worker images must install the Makefile's {pin}"
        assert pin in (ROOT / "pyproject.toml").read_text()


def k8s_documents() -> list[dict]:
    return [doc for path in sorted((ROOT / "docker/k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers(doc: dict) -> list[dict]:
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def test_every_restora_variable_in_compose_and_kubernetes_is_a_setting():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    names = {name for service in compose["services"].values() for name in service.get("environment", {})}
    for doc in k8s_documents():
        names |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
        names |= {env["name"] for container in containers(doc) for env in container.get("env", [])}
    restora = {n for n in names if n.startswith("RESTORA_")}
    assert {"RESTORA_REDIS_URL", "RESTORA_STORAGE_URL", "RESTORA_S3_ENDPOINT_URL"} <= restora
    unknown = {n for n in restora if n.removeprefix("RESTORA_").lower() not in Settings.model_fields}
    assert not unknown, f"not settings: {unknown}"


def test_compose_gates_start_order_on_health_and_pins_third_party_images():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    built = {s["image"] for s in services.values() if "build" in s}
    for name, service in services.items():
        image = service["image"]
        assert image in built or re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), f"{name}: {image}"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services and condition["condition"].startswith("service_"), f"{name} -> {dependency}"
    for worker in ("worker-gpu", "worker-cpu"):
        assert services[worker]["depends_on"]["api"]["condition"] == "service_healthy"
        # the job is requeued before Docker's SIGKILL
        assert services[worker]["stop_grace_period"] == "10m" and float(services[worker]["environment"]["RESTORA_WORKER_STOP_GRACE_S"]) < 600
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert services["minio"]["profiles"] == ["s3"] and "healthcheck" in services["minio"]
    assert services["api"]["depends_on"]["minio-bucket"]["required"] is False  # only with --profile s3


def test_dockerfile_targets_run_as_non_root_with_healthchecks():
    stages = re.split(r"^FROM ", (ROOT / "docker/Dockerfile").read_text(), flags=re.M)[1:]
    final = {stage.split()[2]: stage for stage in stages if stage.split()[2] in ("api", "worker-cpu", "worker-gpu")}
    assert set(final) == {"api", "worker-cpu", "worker-gpu"}
    for name, stage in final.items():
        assert "USER restora" in stage and "HEALTHCHECK" in stage, name


def test_kubernetes_manifests_scale_gpu_workers_on_the_restore_queue():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in k8s_documents() if d.get("kind") != "Kustomization"}
    listed = yaml.safe_load((ROOT / "docker/k8s/kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "docker/k8s").glob("*.yaml") if p.name != "kustomization.yaml")

    worker = docs["Deployment", "restora-worker-gpu"]
    assert containers(worker)[0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    stop_grace = next(float(env["value"]) for env in containers(worker)[0]["env"] if env["name"] == "RESTORA_WORKER_STOP_GRACE_S")
    assert stop_grace < worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    scaled = docs["ScaledObject", "restora-worker-gpu"]
    triggers = scaled["spec"]["triggers"]
    assert all(t["type"] == "redis" for t in triggers)
    assert sorted(t["metadata"]["listName"] for t in triggers) == sorted(queue(redis.Redis(), name).key for name in RESTORE_QUEUES)
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]

    redis_args = " ".join(containers(docs["StatefulSet", "redis"])[0]["args"])
    assert "--appendonly yes" in redis_args and "noeviction" in redis_args
    compose_images = {s["image"] for s in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"].values()}
    ours = {image.split(":")[0] for image in compose_images if image.startswith("restora-")}  # tagged in kustomization.yaml
    for doc in docs.values():
        for container in containers(doc):
            assert container["image"] in compose_images | ours, f"{doc['metadata']['name']}: {container['image']}"
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                assert ("ConfigMap", ref["name"]) in docs or ("Secret", ref["name"]) in docs


def _imported_modules(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from models import formats" names the module models.formats
            names |= {f"models.{alias.name}" for alias in node.names} if node.module == "models" else {node.module}
    return names


def test_layering_models_stand_alone_and_the_api_shares_only_formats_and_the_contract():
    """models/ imports nothing of app/, core/, workers/ or restora/; app/ and core/ take only the
    dependency-free ``models.formats`` (file formats), ``models.metadata`` (orientation and colour profiles,
    with Pillow and tifffile) and ``models.interface`` (tasks, levels, the model contract)."""
    for path in (ROOT / "models").rglob("*.py"):
        outside = {m for m in _imported_modules(path) if m.split(".")[0] in ("app", "core", "workers", "restora")}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"
    for package in ("app", "core"):
        for path in (ROOT / package).rglob("*.py"):
            from_models = {m for m in _imported_modules(path) if m.split(".")[0] == "models"}
            assert from_models <= {"models.formats", "models.metadata", "models.interface"}, f"{path.relative_to(ROOT)} imports {sorted(from_models)}"


def test_the_web_page_offers_every_accepted_file_type():
    """The page's file picker lists exactly what the API takes (models.formats owns the list)."""
    from models.formats import INPUT_SUFFIXES

    accept = re.search(r'<input type="file" id="file" accept="([^"]+)"', (ROOT / "app" / "static" / "index.html").read_text()).group(1)
    assert sorted(accept.split(",")) == sorted(INPUT_SUFFIXES)


def test_the_api_never_imports_torch_or_opencv():
    import os
    import subprocess
    import sys

    probe = "import sys; from app.main import create_app; create_app(); print(sorted(m for m in ('torch', 'cv2', 'skimage') if m in sys.modules))"
    env = {**os.environ, "RESTORA_REDIS_URL": "redis://127.0.0.1:1/0"}  # never connected to: building the app is enough
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ruff_finds_nothing():
    """The lint rules of pyproject.toml ([tool.ruff]): unused or undefined names and imports, import order."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("script", sorted(p.stem for p in (ROOT / "models").glob("*.py") if p.stem.startswith(("train_", "eval_"))))
def test_every_training_and_evaluation_script_parses_its_options(script):
    """Their options are only parsed by hand-started runs; a clash (two ``--init``) would go unseen until then."""
    done = subprocess.run([sys.executable, "-m", f"models.{script}", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
