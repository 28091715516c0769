"""The float16 benchmark's bookkeeping: which epoch is best and how the two runs compare. (The
benchmark itself trains two 6-minute runs: `python -m benchmarks float16`, BENCHMARKS.md.)"""

from __future__ import annotations

import pytest

from benchmarks import float16


def write_history(run_dir, rows):
    run_dir.mkdir()
    lines = ["epoch,loss,val_pr_auc_macro,val_pr_auc_micro,val_roc_auc_macro,val_roc_auc_micro"]
    lines += [f"{k},0.1,{pr},0.1,{roc},0.5" for k, (pr, roc) in enumerate(rows)]
    (run_dir / "history.csv").write_text("\n".join(lines) + "\n")


def test_best_epoch_is_the_monitored_pr_auc_and_the_report_says_whether_within(
    tmp_path, monkeypatch
):
    write_history(tmp_path / "a", [(0.1, 0.60), (0.3, 0.80), (0.2, 0.90)])
    history = float16._history(tmp_path / "a")
    assert history["best_epoch"] == 2 and history["best_val_roc_auc_macro"] == 0.80
    assert history["val_roc_auc_macro"] == [0.60, 0.80, 0.90]

    runs = {"npy": [(0.1, 0.60), (0.3, 0.800)], "packed": [(0.1, 0.61), (0.3, 0.803)]}

    def fake_train(out, name, model, seed, extra, env):
        run_dir = out / name
        write_history(run_dir, runs["packed" if extra else "npy"])
        assert ("--data-dir" in extra) == bool(extra) and env["EMOTION_KERAS_DEMO_DIR"]
        return {"run_dir": str(run_dir), "seconds": 1.0, **float16._history(run_dir)}

    monkeypatch.setattr(float16, "_train", fake_train)
    monkeypatch.setattr(
        "emotion_keras.data.demo.ensure_demo_dataset",
        lambda out, **_: (_tiny_demo(out), out / "metadata"),
    )
    monkeypatch.setattr("emotion_keras.data.packed.pack_subsets", lambda meta: [])
    monkeypatch.setattr(
        "emotion_keras.data.packed.pack_melspecs", lambda *a, **k: a[2].write_bytes(b"")
    )
    monkeypatch.setattr(
        "emotion_keras.data.packed.verify_packed", lambda *a, **k: {"max_abs_error": 0.01}
    )
    result = float16.run_float16_benchmark(tmp_path / "out")
    assert result["best_val_roc_auc_macro_difference"] == pytest.approx(0.003)
    assert result["within_tolerance"]
    assert "+0.0030 (within 0.005)" in float16.format_report(result)
    runs["packed"][1] = (0.3, 0.790)
    result = float16.run_float16_benchmark(tmp_path / "out2")
    assert not result["within_tolerance"] and "NOT within" in float16.format_report(result)


def _tiny_demo(out):
    out.mkdir(parents=True, exist_ok=True)
    return out / "melspecs"
