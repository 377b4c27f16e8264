"""arcaudio: fast text-to-audio generation with rectified flows and ARC post-training."""

__version__ = "0.1.0"

from .config import PRESETS, ModelConfig, preset  # noqa: E402
from .loading import build_model, load, load_config  # noqa: E402
from .models.text_to_audio import Conditioning, TextToAudioModel  # noqa: E402

__all__ = ["PRESETS", "Conditioning", "ModelConfig", "TextToAudioModel", "build_model", "load", "load_config",
           "preset", "__version__"]
