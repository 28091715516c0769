"""Export formats besides the SavedModel: TensorFlow Lite and ONNX.

Both are converted from what the SavedModel serves, so they take the same input (one melspec
`[96, frames]`, any number of frames) and give the same `probabilities` (and `decisions` when the
run was evaluated). The TFLite file also has the SavedModel's `tags` output; the ONNX file has no
string output (the tag order is in `export.json` and `tags.txt`).

- TFLite: TensorFlow's own converter (`tf.lite.TFLiteConverter.from_saved_model`) on the
  SavedModel's `serve` signature, builtin ops only, float32 weights, dynamic time axis.
- ONNX: `tf2onnx` (the maintained converter for TensorFlow) on the same crop-averaging function,
  opset 17; it needs the optional extra `onnx` (tf2onnx, onnxruntime).

`runner(path)` loads either file for inference, so that tests and users check one against the
SavedModel the same way. This module must not decide what the model computes: that is
`emotion_keras.serving.export`'s crop-averaging function.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotion_keras.errors import ConfigError

#: File name of each format in an export folder.
FILES = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
#: Python modules each format needs beyond TensorFlow, and the extra that installs them.
NEEDS = {"onnx": (("tf2onnx", "onnxruntime"), "onnx")}
ONNX_OPSET = 17


def check_formats(formats) -> None:
    """Refuses unknown formats, and formats whose optional extra is not installed.

    Raises:
        ConfigError: naming `formats` and, for a missing extra, what to install.
    """
    for name in formats:
        if name not in FILES:
            raise ConfigError(
                f"formats {name!r}: unknown; choose from {', '.join(FILES)}",
                arguments=("formats",),
            )
        modules, extra = NEEDS.get(name, ((), ""))
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"formats {name}: needs {' and '.join(missing)}; install them with "
                f"pip install 'emotion_keras[{extra}]'",
                arguments=("formats",),
            )


def convert(export_dir: Path, formats, serve_fn: Callable[[], Callable]) -> dict[str, int]:
    """Writes each of `formats` other than the SavedModel into `export_dir` (which holds it).

    Args:
        export_dir: the export folder being built, with `saved_model/` already written.
        formats: names from `FILES`.
        serve_fn: makes the crop-averaging `tf.function` without the string `tags` output.

    Returns:
        File name -> size in bytes, for every format written (the SavedModel's whole folder).
    """
    sizes = {}
    for name in dict.fromkeys(("savedmodel", *formats)):
        path = export_dir / FILES[name]
        if name == "tflite":
            path.write_bytes(_tflite_bytes(export_dir / FILES["savedmodel"]))
        elif name == "onnx":
            _write_onnx(serve_fn(), path)
        sizes[FILES[name]] = _size(path)
    return sizes


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _tflite_bytes(saved_model: Path) -> bytes:
    import tensorflow as tf

    from emotion_keras.serving.export import SERVE_ENDPOINT

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=[SERVE_ENDPOINT]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _write_onnx(function, path: Path) -> None:
    import tf2onnx

    tf2onnx.convert.from_function(
        function,
        input_signature=function.input_signature,
        opset=ONNX_OPSET,
        output_path=str(path),
    )


def runner(path: str | Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A function from one melspec `[96, frames]` to the outputs of a `.tflite` or `.onnx` file."""
    path = Path(path)
    if path.suffix == ".tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(path))
        serve = interpreter.get_signature_runner()

        def run_tflite(melspec: np.ndarray) -> dict[str, np.ndarray]:
            return serve(melspec=np.asarray(melspec, np.float32))

        return run_tflite
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]

        def run_onnx(melspec: np.ndarray) -> dict[str, np.ndarray]:
            values = session.run(None, {"melspec": np.asarray(melspec, np.float32)})
            return dict(zip(names, values))

        return run_onnx
    raise ConfigError(f"path {path}: expected a .tflite or .onnx file", arguments=("path",))
