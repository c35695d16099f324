"""Builds unloc_nb from the metadata in settings.ini (the nbdev 2 convention)."""
from configparser import ConfigParser
from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]
scripts = [s for s in cfg.get("console_scripts", "").split() if s]


def requirements(key: str) -> list[str]:
    "The requirements under `key`: one per word, except a line with ';', which is one requirement with a marker."
    lines = [line.strip() for line in cfg.get(key, "").splitlines() if line.strip()]
    return [r for line in lines for r in ([line] if ";" in line else line.split())]


lib = cfg["lib_path"]
notebooks = requirements("notebooks_requirements")

setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    python_requires=">=" + cfg["min_python"],
    # data_samples/ (the sample videos and annotations, 0.3 MB) installs as unloc_nb/data_samples (sample_path)
    packages=find_packages(include=[lib, lib + ".*"]) + [f"{lib}.data_samples", f"{lib}.data_samples.videos"],
    package_dir={f"{lib}.data_samples": "data_samples"},
    include_package_data=True,
    package_data={lib: ["weights/*.safetensors"],  # the shipped tiny weights (12_pretrain, 11_train)
                  f"{lib}.data_samples": ["*.json", "*.jsonl", "*.txt", "*.csv", "*.md"],
                  f"{lib}.data_samples.videos": ["*.mp4"]},
    install_requires=requirements("requirements"),
    extras_require={"notebooks": notebooks, "dev": notebooks + requirements("dev_requirements")},
    entry_points={"console_scripts": scripts, "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
