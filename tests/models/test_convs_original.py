"""`convs` against the original PyTorch model, with the same weights (eval mode).

Needs what this project does not ship: a checkout of vibour/emotion-theme-recognition (its
`models/convs.py` and `models/modules.py`) and a Python with PyTorch, named by two environment
variables; without them the test skips, saying so:

    ORIGINAL_CONVS_CHECKOUT=/path/to/emotion-theme-recognition \\
    ORIGINAL_CONVS_PYTHON=/path/to/venv-with-torch/bin/python \\
    pytest tests/models/test_convs_original.py

The PyTorch side runs in that interpreter (a subprocess): it builds their `Convs(n_mels=96,
input_length=224)` with its own initialisation and BatchNorm statistics moved away from their
initial values, and writes its weights, random inputs and outputs (`averaged_sigmoid`: sigmoid
of each time window, averaged) to a `.npz`; this side loads the weights into our `convs` and
compares, on 224-frame crops and on whole tracks of 1,366 and 3,001 frames (6 and 13 windows).
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.models import build_model, whole_track_model

CHECKOUT = os.environ.get("ORIGINAL_CONVS_CHECKOUT")
PYTHON = os.environ.get("ORIGINAL_CONVS_PYTHON")

TORCH_SIDE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    sys.path.insert(0, sys.argv[1])
    from models.convs import Convs

    torch.manual_seed(0)
    model = Convs(n_mels=96, input_length=224, n_class=56, dropout=0.2)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    model.eval()
    mean, std = float(sys.argv[3]), float(sys.argv[4])
    out = {f"w/{k}": v.numpy() for k, v in model.state_dict().items()}
    out["trainable"] = np.array(sum(p.numel() for p in model.parameters() if p.requires_grad))
    rng = np.random.default_rng(0)
    for name, shape in [("crops", (3, 96, 224)), ("track1366", (1, 96, 1366)),
                        ("track3001", (1, 96, 3001))]:
        x = rng.normal(-24, 19, shape).astype("float32")
        with torch.no_grad():
            logits = model(torch.from_numpy((x - mean) / std))
        out[f"x/{name}"] = x
        out[f"p/{name}"] = torch.sigmoid(logits).mean(-1).numpy()
    np.savez(sys.argv[2], **out)
    """
)


def load_original_weights(model, weights):
    units = ["conv1", "conv2", "conv3", "filter1", "filter2", "filter3", "filter4"]
    for name, prefix in [(u, u) for u in units] + [("collapse", "collapse.conv")]:
        kernel = weights[f"{prefix}.conv.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        model.get_layer(f"{name}_conv").set_weights([kernel, weights[f"{prefix}.conv.bias"]])
        norm = [weights[f"{prefix}.batchnorm.{p}"] for p in ("weight", "bias")]
        norm += [weights[f"{prefix}.batchnorm.running_{p}"] for p in ("mean", "var")]
        model.get_layer(f"{name}_bn").set_weights(norm)
    for name, prefix in (("fc", "fco"), ("logits", "output")):  # Conv1d(k=1) -> Dense
        kernel = weights[f"{prefix}.dense.weight"][:, :, 0].T
        model.get_layer(name).set_weights([kernel, weights[f"{prefix}.dense.bias"]])


@pytest.mark.skipif(
    not (CHECKOUT and PYTHON),
    reason="set ORIGINAL_CONVS_CHECKOUT (vibour/emotion-theme-recognition) and "
    "ORIGINAL_CONVS_PYTHON (a Python with torch) to compare with the original",
)
def test_convs_computes_what_the_original_computes_on_crops_and_whole_tracks(tmp_path):
    script = tmp_path / "torch_side.py"
    script.write_text(TORCH_SIDE)
    result = tmp_path / "original.npz"
    subprocess.run(
        [PYTHON, str(script), str(Path(CHECKOUT)), str(result)]
        + [repr(MTG_JAMENDO.mean_db), repr(MTG_JAMENDO.std_db)],
        check=True,
        timeout=600,
    )
    original = np.load(result, allow_pickle=False)
    weights = {k[2:]: original[k] for k in original.files if k.startswith("w/")}
    model = build_model("convs", (96, 224, 1))
    assert int(original["trainable"]) == 3_156_856
    load_original_weights(model, weights)
    ours = np.asarray(model(original["x/crops"][..., None], training=False))
    np.testing.assert_allclose(ours, original["p/crops"], atol=1e-5)
    track = whole_track_model(model)
    for name in ("track1366", "track3001"):
        ours = np.asarray(track(original[f"x/{name}"][..., None], training=False))
        np.testing.assert_allclose(ours, original[f"p/{name}"], atol=1e-5)
