"""Install anywhere: the requirements' environment markers, and a built wheel installed in a fresh venv running the
main job and the README example from an empty directory.

The fresh venv gets unloc_nb ONLY from the wheel; torch and the other heavy requirements (about 6 GB to install)
come from this interpreter's site-packages through a `.pth` file. What that proves: the sdist holds everything the
build needs (settings.ini, README.md, data_samples/, the weights), the wheel built from it holds the modules, the
console scripts, the sample data and the weights, and they work from a directory that is not the repository, with
no checkout on the path (`unloc_nb.__file__` is asserted inside the fresh venv); the wheel's requirements (markers
evaluated here) are all met by the distributions the fresh venv sees. What it does not prove: that pip can download
and install those requirements on another platform (no index is reached), nor that decord is left out where its
marker says so (`test_requirement_markers` checks the markers' logic instead).
"""
import json
import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import setuptools
from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "unloc_nb" / "weights" / "tiny_synthetic.safetensors"  # the prior the main job starts from


def setup_arguments() -> dict:
    "The keyword arguments setup.py passes to setuptools.setup (read from settings.ini)."
    captured = {}
    real, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        os.chdir(ROOT); runpy.run_path(str(ROOT / "setup.py"))
    finally: setuptools.setup = real; os.chdir(cwd)
    return captured


PLATFORMS = {  # (platform_system, platform_machine) -> decord has a wheel there (PyPI, decord 0.6.0)
    ("Linux", "x86_64"): True, ("Windows", "AMD64"): True, ("Darwin", "arm64"): False, ("Darwin", "x86_64"): False,
    ("Linux", "aarch64"): False}


def test_requirement_markers():
    args = setup_arguments()
    required = {Requirement(r).name: Requirement(r) for r in args["install_requires"]}
    assert {"torch", "av", "decord", "open_clip_torch", "safetensors"} <= set(required)
    assert not {"jupyterlab", "plotly", "ipywidgets"} & set(required)  # the notebooks' extra, not the library's
    assert {"jupyterlab", "plotly", "ipywidgets"} <= {Requirement(r).name for r in args["extras_require"]["notebooks"]}
    dev = {Requirement(r).name for r in args["extras_require"]["dev"]}
    assert {"jupyterlab", "playwright", "pytest", "nbdev"} <= dev  # `pip install -e ".[dev]"` brings every test's needs
    marker = required["decord"].marker
    for (system, machine), wheel in PLATFORMS.items():
        for python in ("3.10", "3.13"):
            env = {"platform_system": system, "platform_machine": machine, "python_version": python}
            assert marker.evaluate(env) == wheel, (system, machine, python)
    assert all(Requirement(r).marker is None for r in args["install_requires"] if not r.startswith("decord"))
    packages = set(args["packages"])
    assert {"unloc_nb", "unloc_nb.data_samples", "unloc_nb.data_samples.videos"} <= packages


def source_tree(dest: Path) -> Path:
    "A copy of the files `pip install .` would see in this checkout: tracked and untracked, not the ignored ones."
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # no git: every file but the usual build and cache folders
        skip = {".git", ".venv", "build", "dist", "_proc", "_docs", "__pycache__", ".pytest_cache", "runs"}
        listed = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.parts)]
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def run(cmd: list, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    "Run a command; on failure, fail the test with its output."
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


CHECK_REQUIREMENTS = r"""
import importlib.metadata as md, json, sys
from packaging.requirements import Requirement
unmet = []
for text in md.requires("unloc_nb"):
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}): continue
    try: version = md.version(req.name)
    except md.PackageNotFoundError: unmet.append(f"{text} (not installed)"); continue
    if not req.specifier.contains(version, prereleases=True): unmet.append(f"{text} (found {version})")
print(json.dumps(unmet))
"""

README_EXAMPLE = r"""
from unloc_nb.data import read_video, sample_path
from unloc_nb.model import UnLoc, UnLocConfig
from unloc_nb.postprocess import postprocess
import torch, unloc_nb
torch.manual_seed(0)
model = UnLoc(UnLocConfig.preset("tiny")).eval()
clip = read_video(sample_path("videos/syn_00.mp4"), num_frames=model.config.num_frames, size=model.config.image_size)
with torch.no_grad(): out = model(clip.frames[None], ["a red circle moves up"], task="mr")
pred = postprocess(out, torch.tensor([clip.unit_seconds]), torch.tensor([clip.duration]), task="mr")[0]
assert 0 <= pred["segments"].min() and pred["segments"].max() <= clip.duration
print(unloc_nb.__file__, sample_path(), tuple(clip.frames.shape))
"""


def test_wheel_in_a_fresh_venv_runs_the_main_job_from_an_empty_directory(tmp_path):
    if not WEIGHTS.is_file():
        pytest.fail(f"{WEIGHTS} is missing: the main job starts from it, so a wheel without it cannot run the main "
                    "job (make it with tools/ship_weights.py, or commit unloc_nb/weights/)")
    source, dist, venv, empty = (tmp_path / name for name in ("src", "dist", "venv", "empty"))
    source.mkdir(); empty.mkdir()
    source_tree(source)
    # the sdist, then the wheel built from the sdist: both must hold everything (no build isolation: no download)
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], cwd=tmp_path)
    wheel = next(dist.glob("unloc_nb-*.whl"))
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    fresh = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}  # no checkout on the path
    env.update(MPLBACKEND="Agg", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], tmp_path, env)
    heavy = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))  # this interpreter's packages
    (fresh / "_unloc_test_heavy_deps.pth").write_text("\n".join(heavy) + "\n")  # plain paths: their .pth files stay unread

    found = run([python, "-c", "import unloc_nb; print(unloc_nb.__file__)"], empty, env).stdout.strip()
    assert Path(found).resolve().is_relative_to(venv.resolve()), f"unloc_nb came from {found}, not from the wheel"
    unmet = json.loads(run([python, "-c", CHECK_REQUIREMENTS], empty, env).stdout.strip().splitlines()[-1])
    assert not unmet, f"requirements of the wheel that the fresh venv lacks: {unmet}"

    script = venv / ("Scripts/unloc-train.exe" if os.name == "nt" else "bin/unloc-train")
    out = run([script, "--data", "samples", "--epochs", "1", "--out-dir", "run"], empty, env)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (empty / summary["checkpoint"]).resolve().is_relative_to(empty.resolve()), summary["checkpoint"]
    assert (empty / "run" / "metrics.json").is_file() and summary["metrics"], summary
    assert set(os.listdir(empty)) == {"run"}  # nothing else written to the working directory

    example = run([python, "-c", README_EXAMPLE], empty, env).stdout.strip().splitlines()[-1]
    module, samples, shape = example.split(" ", 2)
    assert Path(module).resolve().is_relative_to(venv.resolve()) and Path(samples).resolve().is_relative_to(venv.resolve())
    assert shape == "(16, 3, 64, 64)", example
