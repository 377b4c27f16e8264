"""arcaudio: fast text-to-audio generation with rectified flows and ARC post-training.

The top-level names are imported on first use, so that torch-free parts (the ONNX runner, arcaudio.export.runner)
can be imported where torch is not installed."""

__version__ = "0.1.0"

__all__ = ["PRESETS", "Conditioning", "ModelConfig", "TextToAudioModel", "build_model", "load", "load_config",
           "preset", "__version__"]

_LAZY = {"PRESETS": "config", "ModelConfig": "config", "preset": "config", "build_model": "loading",
         "load": "loading", "load_config": "loading", "Conditioning": "models.text_to_audio",
         "TextToAudioModel": "models.text_to_audio"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'arcaudio' has no attribute {name!r}")
