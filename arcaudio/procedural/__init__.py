"""The procedural world: a synthesiser of tones, chords, noise, drum loops and sweeps with known attributes and
captions (synth.py), and the analytic probes that read those attributes back from any audio (probes.py). The
built-in models are trained on it and every adherence figure is measured with it; real-data I/O lives in `data/`,
the instruments that score models in `eval/`."""
