"""Fixtures of the training tests."""

from __future__ import annotations

import pytest

from emotion_keras.data import demo


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    demo.write_demo_dataset(root / "demo", n_train=32, n_validation=10, n_test=4)
    return demo.demo_paths(root / "demo")
