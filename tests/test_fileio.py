"""Atomic writes: all or nothing, with the permissions the user's umask gives."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from emotion_keras.fileio import atomic_directory, atomic_save_npy, atomic_write_text


@pytest.fixture
def umask():
    def set_mask(mask: int):
        os.umask(mask)

    before = os.umask(0o022)
    os.umask(before)
    yield set_mask
    os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_and_folders_get_the_mode_the_umask_gives(tmp_path, umask, mask):
    umask(mask)
    atomic_write_text(tmp_path / "config.json", "{}")
    atomic_save_npy(tmp_path / "p.npy", np.zeros(3))
    with atomic_directory(tmp_path / "export") as folder:
        (folder / "inside.txt").write_text("x")
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "config.json") == mode(tmp_path / "p.npy") == 0o666 & ~mask
    assert mode(tmp_path / "export") == 0o777 & ~mask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        from emotion_keras.fileio import atomic_path

        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
