"""Every on-disk format of the workflow: one reader and one writer each, every write atomic.

``atomic`` (temporary file, then rename), ``hdf5`` (string datasets, JSON attributes, opening with a clear
error), ``pairs_file`` (the explained views), ``maps_file`` (attribution maps and dreamed images),
``scores_file`` (per-image scores and curves), ``download`` (fetching files and their digests).
"""
