"""The data path: from MTG-Jamendo files (or audio) to batches of crops.

- `dataset`: the facts of the dataset's mel-spectrograms (bands, frame rate, pad value).
- `metadata`: split TSVs, the tag list, multi-hot labels.
- `melspec_files`: `.npy` headers, the start-up scan, crops read without the rest of a file.
- `crops`: crop positions and the batch crop reader (NumPy only).
- `pipeline`: the `tf.data` pipelines (random crops to train, regular crops to evaluate).
- `audio`: any audio file to the dataset's own mel-spectrogram.
- `demo`: the synthetic demo dataset in the MTG-Jamendo layout.
"""
