"""The procedural world: a synthesiser of tones, chords, noise, drum loops and sweeps with known attributes and
captions (synth.py), and the analytic probes that read those attributes back from any audio (probes.py). The
built-in models are trained on it and every adherence figure is measured with it; real-data I/O lives in `data/`,
the instruments that score models in `eval/`."""

# synth first: captions.py builds on synth's definitions, and synth re-exports the captions (importing
# arcaudio.procedural.captions on its own would otherwise meet a half-initialised synth)
from . import synth  # noqa: E402, F401
