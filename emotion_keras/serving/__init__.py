"""Serving a trained run: a SavedModel that needs nothing of this package, and tags for files.

- `export`: the SavedModel (with the `.keras` model and the tag list) of a run's best checkpoint.
- `ensemble_export`: one SavedModel averaging the members of an ensemble (`evaluation.ensemble`).
- `predict`: tags for audio or `.npy` files through a run directory or an export.
"""
