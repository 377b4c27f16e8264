"""LAION-CLAP through `transformers` (ClapModel and its processor from a local folder, e.g. a download of
`laion/clap-htsat-fused`), preprocessed as the stable-audio-metrics protocol does: 48 kHz mono, peak-normalised to
-1 dB, the processor's fusion / repeat-padding for the 10 s input; projected audio and text embeddings (unit norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .base import Embedder

CLAP_RATE = 48000
CLAP_HINT = ("download a CLAP checkpoint in transformers format (e.g. `huggingface-cli download "
             "laion/clap-htsat-fused --local-dir models/clap`) and pass its folder: --embedders clap=models/clap")


class ClapEmbedder(Embedder):
    name = "clap"
    sample_rate = CLAP_RATE
    channels = 1

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", batch_size: int = 8):
        from transformers import ClapModel, ClapProcessor

        path = Path(path).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise FileNotFoundError(f"no CLAP model at {str(path)!r} (a folder with config.json, model weights and "
                                    f"the processor files is needed); {CLAP_HINT}")
        try:
            self.model = ClapModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
            self.processor = ClapProcessor.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as err:
            raise FileNotFoundError(f"could not load CLAP from {str(path)!r}: {err}; {CLAP_HINT}") from err
        self.path, self.device, self.batch_size = path, torch.device(device), batch_size
        positions = self.model.config.text_config.max_position_embeddings - 2  # RoBERTa's padding offset
        self._text_limit = min(positions, getattr(self.processor.tokenizer, "model_max_length", positions))

    def describe(self) -> str:
        return f"clap ({self.path.name})"

    @staticmethod
    def preprocess(clip, sample_rate: int) -> np.ndarray:
        """(channels, samples) or (samples,) at `sample_rate` -> mono float32 at 48 kHz, peak at -1 dBFS."""
        from ...data.audio import resample

        audio = torch.as_tensor(np.asarray(clip.detach().cpu() if hasattr(clip, "detach") else clip),
                                dtype=torch.float32)
        audio = audio[None] if audio.ndim == 1 else audio
        mono = resample(audio.mean(0, keepdim=True), sample_rate, CLAP_RATE)[0]  # (L',)
        peak = float(mono.abs().max())
        if peak > 1e-9:
            mono = mono * (10 ** (-1 / 20) / peak)
        return mono.numpy()

    @torch.no_grad()
    def embed(self, clips: Sequence, sample_rate: int) -> np.ndarray:
        out = []
        for start in range(0, len(clips), self.batch_size):
            batch = [self.preprocess(c, sample_rate) for c in clips[start:start + self.batch_size]]
            inputs = self._audio_inputs(batch).to(self.device)
            out.append(_projected(self.model.get_audio_features(**inputs)))
        return np.concatenate(out).astype(np.float64)

    def _audio_inputs(self, batch: list[np.ndarray]):
        """The processor's features, made deterministic: its random crops of clips over 10 s drawn from a fixed
        seed (numpy's global generator restored afterwards), and `is_longer` set to the truth (the processor marks
        a random clip "longer" when none is, so a clip's embedding depended on its batch and on chance)."""
        state = np.random.get_state()
        try:
            np.random.seed(0)
            inputs = self.processor(audio=batch, sampling_rate=CLAP_RATE, return_tensors="pt")
        finally:
            np.random.set_state(state)
        limit = self.processor.feature_extractor.nb_max_samples
        inputs["is_longer"] = torch.tensor([[len(x) > limit] for x in batch])  # (B, 1)
        return inputs

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self.processor(text=list(texts[start:start + self.batch_size]), return_tensors="pt",
                                    padding=True, truncation=True, max_length=self._text_limit).to(self.device)
            out.append(_projected(self.model.get_text_features(**inputs)))
        return np.concatenate(out).astype(np.float64)


def _projected(features) -> np.ndarray:
    """transformers 4 returns the projected embeddings, 5 a model output holding them as `pooler_output`."""
    tensor = features if isinstance(features, torch.Tensor) else features.pooler_output
    return torch.nn.functional.normalize(tensor.float(), dim=-1).cpu().numpy()


def save_random_clap(folder: str | Path, seed: int = 0) -> Path:
    """Write a small randomly initialised CLAP (HTSAT audio tower with fusion, RoBERTa text tower, a byte-level BPE
    tokenizer trained on a few captions) in transformers format, loadable by ClapEmbedder: the pipeline run offline,
    without the real weights. Its embeddings mean nothing."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizerFast,
    )

    torch.manual_seed(seed)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(["a dog barking", "white noise on the left", "a drum loop at 120 bpm", "a rising sweep",
                             "a plucked sine note", "a minor chord, loud"],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=specials))
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                     unk_token="<unk>", mask_token="<mask>")
    text = ClapTextConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=37, max_position_embeddings=130, projection_dim=16)
    audio = ClapAudioConfig(depths=[1, 1], num_attention_heads=[1, 2], hidden_size=64, patch_embeds_hidden_size=32,
                            window_size=8, projection_dim=16, enable_fusion=True)
    model = ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16))
    folder = Path(folder)
    model.save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder
