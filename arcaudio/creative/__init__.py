"""The paper's creative controls on top of generation: beat-aligned loops (loops.py), voice-to-audio (voice.py) and
style transfer (audio-to-audio with a prompt that names another sound; see voice.py and generation.generate)."""
