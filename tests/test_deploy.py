"""Deployment files: the compose file is valid and safe by default; the image installs like the README;
the Kubernetes Job and the SLURM script run `hpsearch worker` with the database URL from the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required under CI=true (Debian package docker-compose)")
        pytest.skip("docker-compose not installed (Debian package docker-compose)")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("POSTGRES")})


def test_compose_config_is_valid_and_binds_to_localhost() -> None:
    run = _compose("--env-file", ".env.example", "config")
    assert run.returncode == 0, run.stderr
    cfg = yaml.safe_load(run.stdout)
    services = cfg["services"]
    assert set(services) == {"postgres", "dashboard", "worker"}
    assert services["postgres"]["healthcheck"]["test"] and "pgdata" in cfg["volumes"]
    dash_ports = [str(p.get("host_ip", "")) if isinstance(p, dict) else p.split(":")[0]
                  for p in services["dashboard"]["ports"]]
    pg_ports = [str(p.get("host_ip", "")) if isinstance(p, dict) else p.split(":")[0]
                for p in services["postgres"]["ports"]]
    assert dash_ports == ["127.0.0.1"] and pg_ports == ["127.0.0.1"]
    worker = services["worker"]
    assert worker["restart"] == "on-failure" and worker["command"][0] == "worker"
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "HPSEARCH_STORAGE" in worker["environment"]  # the URL never appears in a command line
    assert not any("postgresql" in str(arg) for arg in worker["command"] + services["dashboard"]["command"])


def test_compose_refuses_to_start_without_a_password(tmp_path: Path) -> None:
    (tmp_path / "empty.env").write_text("")
    run = _compose("--env-file", str(tmp_path / "empty.env"), "config")
    assert run.returncode != 0 and "set it in .env (see .env.example)" in run.stderr + run.stdout


def test_env_file_is_ignored_and_not_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", ".env"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 0
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ""


def test_image_installs_the_package_the_way_the_readme_does() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    for step in ("pip install torch==2.13.0", "pip install"):
        assert step in dockerfile and step in readme
    assert 'ENTRYPOINT ["hpsearch"]' in dockerfile and "USER hpsearch" in dockerfile


def test_kubernetes_job_and_slurm_script_run_the_same_worker() -> None:
    job = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "worker-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "worker" and container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["env"][0]["name"] == "HPSEARCH_STORAGE" and "secretKeyRef" in container["env"][0]["valueFrom"]
    assert job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    script = ROOT / "deploy" / "slurm" / "workers.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert 'exec hpsearch worker "$STUDY"' in text and "--signal=B:TERM@60" in text
    run = subprocess.run(["bash", str(script), "studies/digits_quick.yaml"], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"]})
    assert run.returncode != 0 and "HPSEARCH_STORAGE" in run.stderr  # refuses to start without the URL
