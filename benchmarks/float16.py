"""Does float16 storage change what a model learns? Two training runs on the demo data.

`python -m benchmarks float16` trains the demo recipe twice with the same seed and settings: once
from the float32 `.npy` files, once from a float16 packed copy of them (`melspecs pack
--dtype float16`), then compares their validation ROC-AUC-macro, epoch by epoch and at the best
epoch (the issue's acceptance: within 0.005). The two runs are not bit-identical: float16 rounds
every input value (by at most 2^-11 of it), which perturbs every gradient a little, and the
difference grows over training; what matters is whether the models end up as good.

Each run is the `emotion-keras` command a user would type, in a process of its own, so that the
two start from the same state. The demo dataset, the packed file and both run directories go
under `--out` (default `.cache/bench/float16`); a finished run is kept and not trained again.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(".cache") / "bench" / "float16"
#: The issue's tolerance on validation ROC-AUC-macro.
TOLERANCE = 0.005


def _train(out: Path, name: str, model: str, seed: int, extra: list[str], env: dict) -> dict:
    run_dir = out / name
    command = [
        sys.executable,
        "-m",
        "emotion_keras",
        "train",
        "--config",
        "demo",
        "--model",
        model,
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
        *extra,
    ]
    print(f"float16 benchmark: {' '.join(command[2:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    # The run's own output goes to stderr: stdout carries only the report (or its JSON).
    subprocess.run(command, check=True, env=env, stdout=sys.stderr)
    return {"run_dir": str(run_dir), "seconds": time.perf_counter() - started, **_history(run_dir)}


def _history(run_dir: Path) -> dict:
    with open(run_dir / "history.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    roc = [float(row["val_roc_auc_macro"]) for row in rows]
    pr = [float(row["val_pr_auc_macro"]) for row in rows]
    best = max(range(len(pr)), key=pr.__getitem__)  # the demo recipe monitors PR-AUC-macro
    return {
        "val_roc_auc_macro": roc,
        "val_pr_auc_macro": pr,
        "best_epoch": best + 1,
        "best_val_roc_auc_macro": roc[best],
        "best_val_pr_auc_macro": pr[best],
    }


def run_float16_benchmark(out: str | Path | None = None, model: str = "vgg6", seed: int = 0):
    """Trains from `.npy` float32 and from a float16 packed copy; returns both histories and
    their differences."""
    import os

    from emotion_keras.data.demo import ensure_demo_dataset
    from emotion_keras.data.packed import pack_melspecs, pack_subsets, verify_packed

    out = Path(out or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    melspecs, meta = ensure_demo_dataset(out / "demo")
    packed = out / "demo-float16.h5"
    if not packed.is_file():
        pack_melspecs(melspecs, pack_subsets(meta), packed, dtype="float16")
    checked = verify_packed(packed, melspecs, n_tracks=20)
    env = {**os.environ, "EMOTION_KERAS_DEMO_DIR": str(out / "demo")}
    npy = _train(out, f"npy-{model}-seed{seed}", model, seed, [], env)
    from_packed = _train(
        out,
        f"packed-float16-{model}-seed{seed}",
        model,
        seed,
        ["--data-dir", str(packed), "--meta-dir", str(meta)],
        env,
    )
    differences = [
        b - a for a, b in zip(npy["val_roc_auc_macro"], from_packed["val_roc_auc_macro"])
    ]
    best_difference = from_packed["best_val_roc_auc_macro"] - npy["best_val_roc_auc_macro"]
    return {
        "model": model,
        "seed": seed,
        "packed_file": str(packed),
        "float16_max_abs_error": checked["max_abs_error"],
        "npy_float32": npy,
        "packed_float16": from_packed,
        "val_roc_auc_macro_differences": differences,
        "best_val_roc_auc_macro_difference": best_difference,
        "last_val_roc_auc_macro_difference": differences[-1],
        "tolerance": TOLERANCE,
        "within_tolerance": abs(best_difference) <= TOLERANCE,
    }


def format_report(result: dict) -> str:
    npy, packed = result["npy_float32"], result["packed_float16"]
    lines = [
        f"float16 benchmark: {result['model']}, demo recipe, seed {result['seed']}; "
        f"float16 rounding moved values by at most {result['float16_max_abs_error']:.4f}",
        "epoch  val ROC-AUC-macro: .npy float32   packed float16   difference",
    ]
    for epoch, (a, b) in enumerate(zip(npy["val_roc_auc_macro"], packed["val_roc_auc_macro"])):
        lines.append(f"{epoch + 1:5d}  {a:30.4f}   {b:14.4f}   {b - a:+10.4f}")
    lines += [
        f"best epoch (val PR-AUC-macro): .npy {npy['best_epoch']} "
        f"(ROC-AUC-macro {npy['best_val_roc_auc_macro']:.4f}), packed {packed['best_epoch']} "
        f"({packed['best_val_roc_auc_macro']:.4f}): difference "
        f"{result['best_val_roc_auc_macro_difference']:+.4f} "
        f"({'within' if result['within_tolerance'] else 'NOT within'} "
        f"{result['tolerance']})",
        f"training time: .npy {npy['seconds']:.0f} s, packed {packed['seconds']:.0f} s",
    ]
    return "\n".join(lines)
