"""Serving a trained run: a SavedModel that needs nothing of this package, and tags for files.

- `export`: the SavedModel (with the `.keras` model, the tag list, the thresholds of an evaluated
  run and its decisions output, and the model card) of a run's best checkpoint.
- `formats`: TFLite and ONNX files converted from it, and runners for them.
- `model_card`: the export's `MODEL_CARD.md`, read from the run directory.
- `ensemble_export`: one SavedModel averaging the members of an ensemble (`evaluation.ensemble`).
- `predict`: tags for audio or `.npy` files through a run directory or an export.
- `tagger`: the Python API (`emotion_keras.Tagger`), a DataFrame of probabilities per input.
- `timeline`: per-window probabilities of one track (`predict --timeline`, `--plot`).
"""
