"""Audio I/O, datasets and the procedural dataset."""
