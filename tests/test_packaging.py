"""The package as a user installs it: a wheel in a clean environment, outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_an_installed_wheel_trains_a_named_configuration_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = wheels.glob("emotion_keras-*.whl")
    # A fresh environment that sees this one's dependencies (TensorFlow...) but not the
    # checkout: the dependencies' folder is added by a .pth file, which is not a site folder,
    # so the editable install's hooks there are not run.
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = Path(sysconfig.get_paths()["purelib"])
    (Path(purelib) / "dependencies.pth").write_text(f"{ours}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    where = subprocess.run(
        [python, "-c", "import emotion_keras, sys; print(emotion_keras.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=work,
        env=environment,
    ).stdout.strip()
    assert str(ROOT) not in where and str(env_dir) in where
    subprocess.run(
        [
            env_dir / "bin" / "emotion-keras",
            "demo-data",
            "demo",
            "--train",
            "8",
            "--validation",
            "8",
            "--test",
            "4",
        ],
        check=True,
        capture_output=True,
        cwd=work,
        env=environment,
    )
    result = subprocess.run(
        [
            env_dir / "bin" / "emotion-keras",
            "train",
            "--config",
            "demo",
            "--data-dir",
            "demo/melspecs",
            "--meta-dir",
            "demo/metadata",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--val-crops",
            "1",
            "--model",
            "baseline5",
            "--run-dir",
            "run",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=environment,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / "run" / "checkpoints" / "best.keras").is_file()
    assert '"learning_rate": 0.001' in (work / "run" / "config.json").read_text()
