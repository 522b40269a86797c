"""scripts/wheelhouse.sh: an offline wheelhouse under 30 MiB whose slimmed wheels keep a valid RECORD, installed with
`pip install --no-index` into a fresh venv that has only JAX (from the index, as a GPU machine brings its own), where
a tiny training run and a render work."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20


def _record_problems(wheel: Path) -> list[str]:
    """What is wrong with a wheel's RECORD: files missing from it, listed but absent, or with another hash or size."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
        listed = {}
        for line in z.read(name).decode().splitlines():
            path, digest, size = line.rsplit(",", 2)
            listed[path] = (digest, size)
        problems = [f"not in RECORD: {n}" for n in z.namelist() if n not in listed and not n.endswith("/")]
        for path, (digest, size) in listed.items():
            if path == name:
                continue
            if path not in z.namelist():
                problems.append(f"listed, absent: {path}")
                continue
            data = z.read(path)
            want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if (digest, size) != (want, str(len(data))):
                problems.append(f"wrong hash or size: {path}")
    return problems


@pytest.mark.slow
def test_wheelhouse_installs_offline_on_its_own_jax_and_trains(tmp_path):
    house, venv = tmp_path / "house", tmp_path / "venv"
    done = subprocess.run(["bash", "scripts/wheelhouse.sh", str(house), "--with-jax-libs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pip install --no-index --find-links" in done.stdout
    manifest = json.loads((house / "manifest.json").read_text())
    core = sum(m["bytes"] for m in manifest if m["group"] == "core")
    assert core == sum(p.stat().st_size for p in house.glob("*.whl")) and core < 30 * MiB, core / MiB
    assert not any(m["wheel"].startswith(("jax-", "jaxlib-", "numpy-", "scipy-")) for m in manifest)
    slimmed = [m for m in manifest if m["slimmed"]]
    assert {m["wheel"].split("-")[0] for m in slimmed} == {"dm_control", "mujoco", "labmaze", "pyopengl"}
    for m in slimmed:
        assert _record_problems(house / m["wheel"]) == [], m["wheel"]
        assert m["bytes"] < m["bytes_before"]
    with zipfile.ZipFile(next(house.glob("dm_control-*.whl"))) as z:
        gone = ("/soccer/", "/dog_assets/", "/assets/fruitfly_v2/", "/assets/build_fruitfly/", "/mujoco/testing/")
        assert not any(part in n for n in z.namelist() for part in gone)

    # A fresh venv (no system site-packages) with JAX only, from the index: the machine's own JAX.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "jax==0.10.2", "jaxlib==0.10.2"], check=True, timeout=600)
    install = subprocess.run([*pip, "--no-index", "--find-links", str(house), "--find-links", str(house / "jax-libs"),
                              "-r", str(house / "requirements.txt")], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(ROOT), MUJOCO_GL="egl", HRL_JAX_CACHE="")
    hrl = [str(venv / "bin" / "python"), "-m", "hrl_core"]
    run = tmp_path / "run"
    done = subprocess.run([*hrl, "train", "--agent", "dreamer", "--task", "walker_walk", "--preset", "tiny",
                           "--steps", "64", "--logdir", str(run), "--log-every", "32", "--no-progress",
                           "--config", "batch_size=2", "--config", "batch_length=8", "--config", "train_ratio=16"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] >= 64 and summary["updates"] > 0, summary
    done = subprocess.run([*hrl, "render", "maze_train", "--steps", "2", "--out", str(tmp_path / "maze.png")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (tmp_path / "maze.png").stat().st_size > 0, done.stderr[-3000:]
    print(f"wheelhouse: {core / MiB:.1f} MiB without the JAX libraries, "
          f"{sum(m['bytes'] for m in manifest) / MiB:.1f} MiB with them")
