"""The procedural dataset (arcaudio.procedural.synth) and its analytic probes (arcaudio.procedural.probes)."""

import collections
import json
import re

import numpy as np
import pytest
import soundfile as sf

from arcaudio.cli import main
from arcaudio.data.manifest import read_manifest
from arcaudio.procedural.probes import probe_all, probe_pan, probe_pitch, probe_waveform, score
from arcaudio.procedural.synth import (
    ATTRIBUTE_VALUES,
    CAPTION_STYLES,
    CORE_TEMPLATES,
    KIND_ATTRIBUTES,
    LOUDNESS_DB,
    MIN_SECONDS,
    TEMPLATES,
    allowed_values,
    caption_for,
    contradicting_caption,
    loudness_db,
    make_clip,
    nameable_attributes,
    named_training_caption,
    probed_attributes,
    render,
    sample_attributes,
    short_prompt,
    subset_caption,
    synonyms,
    training_caption,
    write_dataset,
)

SHORT = 1.7  # max_seconds for the tests that write files


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_audio(tmp_path):
    a = _files(write_dataset(tmp_path / "a", 5, seed=3, max_seconds=SHORT))
    b = _files(write_dataset(tmp_path / "b", 5, seed=3, max_seconds=SHORT))
    c = _files(write_dataset(tmp_path / "c", 5, seed=4, max_seconds=SHORT))
    assert sorted(a) == ["audio/000000.wav", "audio/000001.wav", "audio/000002.wav", "audio/000003.wav",
                         "audio/000004.wav", "manifest.jsonl"]
    assert a == b
    assert all(a[name] != c[name] for name in a)
    # clip i depends only on (seed, i): a longer dataset starts with the same clips
    audio, attributes, caption = make_clip(3, 2, max_seconds=SHORT)
    assert json.loads(a["manifest.jsonl"].decode().splitlines()[2])["caption"] == caption
    again = make_clip(3, 2, max_seconds=SHORT)
    assert np.array_equal(audio, again[0]) and attributes == again[1] and caption == again[2]


def test_manifest_format(tmp_path):
    out = write_dataset(tmp_path / "ds", 6, seed=0, max_seconds=SHORT, style="heldout")
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 6
    for i, line in enumerate(lines):
        entry = json.loads(line)
        assert list(entry) == ["path", "caption", "seconds", "attributes"]
        assert entry["path"] == f"audio/{i:06d}.wav"
        info = sf.info(out / entry["path"])
        assert (info.samplerate, info.channels, info.subtype, info.format) == (44100, 2, "PCM_16", "WAV")
        assert info.frames == round(entry["seconds"] * 44100) and entry["seconds"] == info.frames / 44100
        assert MIN_SECONDS <= entry["seconds"] <= SHORT
        assert entry["attributes"] == make_clip(0, i, max_seconds=SHORT)[1]
        assert entry["caption"] == make_clip(0, i, max_seconds=SHORT, style="heldout")[2]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left behind
    entries = read_manifest(out / "manifest.jsonl")  # the training side reads it
    assert [e["caption"] for e in entries] == [json.loads(line)["caption"] for line in lines]


def test_every_attribute_value_is_reachable():
    seen = collections.defaultdict(set)
    for i in range(2000):
        attributes = sample_attributes(np.random.default_rng([9, i]))
        assert list(attributes) == ["kind", *KIND_ATTRIBUTES[attributes["kind"]], "loudness", "pan", "envelope"]
        for name, value in attributes.items():
            assert value in allowed_values(attributes["kind"], name)
            seen[(attributes["kind"], name)].add(value)
    for kind in KIND_ATTRIBUTES:
        assert seen[(kind, "kind")] == {kind}
        for name in (*KIND_ATTRIBUTES[kind], "loudness", "pan", "envelope"):
            assert seen[(kind, name)] == set(allowed_values(kind, name)), (kind, name)
    union = collections.defaultdict(set)
    for (_, name), values in seen.items():
        union[name] |= values
    for name, values in ATTRIBUTE_VALUES.items():
        assert set(values) <= union[name], name
    assert seen[("chord", "pitch")] == {"A2", "E3", "A3", "E4", "A4"}
    assert seen[("chord", "waveform")] == {"sine", "triangle"}
    assert seen[("drums", "envelope")] == {"percussive"}


def test_probed_attributes():
    assert probed_attributes({"kind": "tone"}) == ["kind", "waveform", "pitch", "loudness", "pan", "envelope"]
    assert probed_attributes({"kind": "chord"}) == ["kind", "quality", "pitch", "loudness", "pan", "envelope"]
    assert probed_attributes({"kind": "drums"}) == ["kind", "tempo", "loudness", "pan"]
    with pytest.raises(ValueError, match="got 'bell'"):
        probed_attributes({"kind": "bell"})


def _mentions(caption: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase.lower()) + r"(?!\w)", caption.lower()) is not None


@pytest.mark.parametrize("style", CAPTION_STYLES)
def test_captions_name_every_attribute_and_nothing_else(style):
    table = synonyms(style)
    captions = set()
    for i in range(400):
        rng = np.random.default_rng([5, i])
        attributes = sample_attributes(rng)
        caption = caption_for(attributes, rng, style)
        captions.add(caption)
        for name, value in attributes.items():
            true = [p for p in table[name][value] if _mentions(caption, p)]
            assert true, f"{caption!r} does not name {name}={value!r}"
            others = [p for other, phrases in table[name].items() if other != value for p in phrases
                      if _mentions(caption, p) and not any(_mentions(t, p) for t in true)]
            assert not others, f"{caption!r} ({name}={value!r}) also says {others}"
    assert len(captions) > 380  # varied phrasing


def test_train_and_heldout_phrasings_are_disjoint():
    assert not set(TEMPLATES["train"]) & set(TEMPLATES["heldout"])
    for kind in KIND_ATTRIBUTES:
        assert not set(CORE_TEMPLATES["train"][kind]) & set(CORE_TEMPLATES["heldout"][kind])
    train, heldout = synonyms("train"), synonyms("heldout")
    for name in train:
        for value in train[name]:
            shared = {p.lower() for p in train[name][value]} & {p.lower() for p in heldout[name][value]}
            assert not shared, (name, value, shared)
    for i in range(50):
        attributes = sample_attributes(np.random.default_rng([2, i]))
        a = caption_for(attributes, np.random.default_rng(i), "train")
        b = caption_for(attributes, np.random.default_rng(i), "heldout")
        assert a != b


def test_bad_input_is_named():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="pitch must be one of .* for a chord clip, got 'E5'"):
        render({"kind": "chord", "quality": "major", "pitch": "E5", "waveform": "sine", "loudness": "loud",
                "pan": "left", "envelope": "steady"}, 1.0, rng)
    with pytest.raises(ValueError, match="got 'purple'"):
        caption_for({"kind": "noise", "colour": "purple", "loudness": "loud", "pan": "left", "envelope": "steady"},
                    rng)
    with pytest.raises(ValueError, match="style must be one of"):
        make_clip(0, 0, style="test")
    with pytest.raises(ValueError, match="max_seconds must be >= 1.5, got 1.0"):
        make_clip(0, 0, max_seconds=1.0)
    with pytest.raises(ValueError, match="unknown attribute"):
        probe_all(np.zeros((2, 10)), 44100, ["timbre"])
    with pytest.raises(ValueError, match="got shape"):
        probe_all(np.zeros((3, 10)), 44100, ["kind"])


def test_levels_and_panning():
    for i in range(40):
        audio, attributes, _ = make_clip(11, i)
        assert audio.dtype == np.float32 and audio.shape[0] == 2 and np.all(np.isfinite(audio))
        assert np.max(np.abs(audio)) <= 0.95 + 1e-6
        assert abs(loudness_db(audio, 44100) - LOUDNESS_DB[attributes["loudness"]]) <= 3.0
        left, right = (float(np.sum(c.astype(np.float64) ** 2)) for c in audio)
        ratio = 10 * np.log10(left / right)
        assert abs(ratio - {"left": 15, "center": 0, "right": -15}[attributes["pan"]]) < 0.1


def test_probes_read_clean_clips():
    right, total = collections.Counter(), collections.Counter()
    for i in range(200):
        audio, attributes, _ = make_clip(21, i)
        for name, ok in score(audio, 44100, attributes).items():
            right[name] += ok
            total[name] += 1
    assert set(total) == set(ATTRIBUTE_VALUES)
    accuracy = {name: right[name] / total[name] for name in total}
    assert min(accuracy.values()) >= 0.95, accuracy


def test_probes_on_hand_made_signals():
    t = np.arange(44100) / 44100
    sine = 0.3 * np.sin(2 * np.pi * 440 * t)
    assert probe_pitch(np.stack([sine, 0.1 * sine]), 44100) == "A4"
    assert probe_waveform(sine, 44100) == "sine"
    assert probe_pan(np.stack([0.1 * sine, sine]), 44100) == "right"
    square = sum(np.sin(2 * np.pi * k * 164.81 * t) / k for k in range(1, 60, 2))
    assert probe_all(0.2 * square, 44100, ["pitch", "waveform", "kind"]) == {"pitch": "E3", "waveform": "square",
                                                                            "kind": "tone"}
    # any sample rate, no resampling
    t16 = np.arange(24000) / 16000
    assert probe_pitch(np.sin(2 * np.pi * 220 * t16), 16000) == "A3"


@pytest.mark.parametrize("audio", [np.zeros((2, 44100)), np.full((2, 44100), np.nan), np.full((2, 500), np.inf),
                                   np.random.default_rng(0).standard_normal((2, 100)), np.ones((2, 1)),
                                   np.zeros((2, 0)), np.sign(np.random.default_rng(1).standard_normal((2, 44100))),
                                   np.where(np.arange(44100) % 2, np.nan, 0.5)],
                         ids=["silence", "nan", "inf", "100-samples", "1-sample", "empty", "clipped", "half-nan"])
def test_probes_never_crash(audio):
    found = probe_all(audio, 44100, list(ATTRIBUTE_VALUES))
    for name, value in found.items():
        assert value in ATTRIBUTE_VALUES[name]
    result = score(audio, 44100, make_clip(0, 0)[1])
    assert all(isinstance(v, bool) for v in result.values())


def test_silence_and_nan_read_alike():
    assert probe_all(np.zeros((2, 8000)), 44100, ["kind", "loudness"]) == \
        probe_all(np.full((2, 8000), np.nan), 44100, ["kind", "loudness"]) == {"kind": "noise", "loudness": "quiet"}


def test_cli_synth_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["synth", str(out), "-n", "3", "--seed", "7", "--max-seconds", str(SHORT), "--style", "heldout"]) == 0
    assert "wrote 3 clip(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["000000.wav", "000001.wav", "000002.wav"]
    first = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert first["caption"] == make_clip(7, 0, max_seconds=SHORT, style="heldout")[2]
    assert main(["synth", str(out), "-n", "2", "--seed", "7", "--max-seconds", "1.0"]) == 2
    assert "max_seconds must be >= 1.5, got 1.0" in capsys.readouterr().err


def test_paraphrase_style_has_heldout_structures_and_training_words():
    assert synonyms("paraphrase") == synonyms("train")
    assert TEMPLATES["paraphrase"] == TEMPLATES["heldout"] and CORE_TEMPLATES["paraphrase"] == CORE_TEMPLATES["heldout"]
    attributes = sample_attributes(np.random.default_rng([2, 0]))
    assert caption_for(attributes, np.random.default_rng(0), "paraphrase") != caption_for(
        attributes, np.random.default_rng(0), "train")


def _named_exactly(caption: str, attributes: dict, names) -> None:
    """`caption` names each of `names` with a training phrase of its value, and says no phrase of another value or
    of any unnamed attribute."""
    table = synonyms("train")
    for name in nameable_attributes(attributes):
        value = attributes[name]
        if name not in names:
            said = [p for phrases in table[name].values() for p in phrases if _mentions(caption, p)]
            assert not said, f"{caption!r} (names {sorted(names)}) also names {name}: {said}"
            continue
        true = [p for p in table[name][value] if _mentions(caption, p)]
        assert true, f"{caption!r} does not name {name}={value!r}"
        said = [p for other, phrases in table[name].items() if other != value for p in phrases
                if _mentions(caption, p) and not any(_mentions(t, p) for t in true)]
        assert not said, f"{caption!r} ({name}={value!r}) also says {said}"


def test_subset_captions_name_exactly_their_attributes_in_training_words():
    heldout = synonyms("heldout")
    train_words = set()
    for i in range(300):
        train_words |= set(re.findall(r"[a-z0-9-]+", caption_for(sample_attributes(np.random.default_rng([6, i])),
                                                                np.random.default_rng(i)).lower()))
    captions = set()
    for i in range(600):
        rng = np.random.default_rng([8, i])
        attributes = sample_attributes(rng)
        nameable = nameable_attributes(attributes)
        names = [n for n in nameable if rng.random() < 0.4] or [nameable[i % len(nameable)]]
        caption = subset_caption(attributes, names, np.random.default_rng(i))
        captions.add(caption)
        _named_exactly(caption, attributes, names)
        assert caption == subset_caption(attributes, names[::-1], np.random.default_rng(i))  # the set, not the order
        for name, value in attributes.items():  # no held-out synonym
            assert not [p for p in heldout[name][value] if _mentions(caption, p)], caption
        # the words are the training captions' words, plus the neutral heads "something" and "{waveform} wave"
        assert set(re.findall(r"[a-z0-9-]+", caption.lower())) - train_words <= {"something", "wave"}, caption
    assert len(captions) > 550
    with pytest.raises(ValueError, match=r"names must be a non-empty subset of .* for a noise clip, got \['tempo'\]"):
        subset_caption({"kind": "noise", "colour": "white", "loudness": "loud", "pan": "left", "envelope": "steady"},
                       ["tempo"], np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-empty"):
        subset_caption(make_clip(0, 0)[1], [], np.random.default_rng(0))


@pytest.mark.parametrize("attributes, names, prompt", [
    ({"kind": "tone", "waveform": "sine", "pitch": "A4", "loudness": "quiet", "pan": "left", "envelope": "plucked"},
     ["kind", "waveform"], "a sine note"),
    ({"kind": "tone", "waveform": "sine", "pitch": "A4", "loudness": "quiet", "pan": "left", "envelope": "plucked"},
     ["pan"], "something on the left"),
    ({"kind": "tone", "waveform": "sine", "pitch": "A4", "loudness": "quiet", "pan": "left", "envelope": "plucked"},
     ["envelope", "pitch"], "plucked a4"),
    ({"kind": "tone", "waveform": "sine", "pitch": "A4", "loudness": "loud", "pan": "right", "envelope": "plucked"},
     ["kind", "waveform", "envelope", "pan"], "a plucked sine note on the right"),
    ({"kind": "tone", "waveform": "sawtooth", "pitch": "A3", "loudness": "loud", "pan": "center",
      "envelope": "steady"}, ["waveform", "pitch"], "sawtooth at 220 hz"),
    ({"kind": "noise", "colour": "white", "loudness": "loud", "pan": "left", "envelope": "steady"},
     ["kind", "colour", "pan"], "white noise on the left"),
    ({"kind": "noise", "colour": "brown", "loudness": "loud", "pan": "left", "envelope": "steady"},
     ["kind", "colour"], "brown noise"),
    ({"kind": "sweep", "direction": "up", "loudness": "loud", "pan": "left", "envelope": "swelling"},
     ["kind", "direction"], "a rising sweep"),
    ({"kind": "sweep", "direction": "up", "loudness": "loud", "pan": "left", "envelope": "swelling"},
     ["envelope"], "something swelling"),
    ({"kind": "drums", "tempo": 120, "loudness": "loud", "pan": "left", "envelope": "percussive"},
     ["kind", "tempo"], "drum loop at 120 bpm"),
    ({"kind": "chord", "quality": "minor", "pitch": "A3", "waveform": "sine", "loudness": "quiet", "pan": "left",
      "envelope": "steady"}, ["kind", "quality", "loudness"], "a quiet minor chord"),
    ({"kind": "chord", "quality": "minor", "pitch": "A3", "waveform": "sine", "loudness": "loud", "pan": "left",
      "envelope": "steady"}, ["loudness"], "loud"),
])
def test_subset_captions_reach_the_prompts_users_type(attributes, names, prompt):
    said = set()
    for i in range(4000):
        caption = subset_caption(attributes, names, np.random.default_rng(i))
        _named_exactly(caption, attributes, names)
        said.add(caption.lower().rstrip("."))
        if prompt in said:
            return
    raise AssertionError(f"{prompt!r} never drawn; e.g. {sorted(said)[:8]}")


def test_short_prompts_name_one_to_three_probed_attributes():
    counts, named = collections.Counter(), collections.Counter()
    for i in range(400):
        rng = np.random.default_rng([4, i])
        attributes = sample_attributes(rng)
        caption, names = short_prompt(attributes, rng)
        probed = probed_attributes(attributes)
        assert 1 <= len(names) <= 3 and names == [n for n in probed if n in names], names
        _named_exactly(caption, attributes, names)
        counts[len(names)] += 1
        named.update((attributes["kind"], n) for n in names)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 100
    assert ("chord", "waveform") not in named and ("drums", "envelope") not in named  # not probed
    assert ("tone", "waveform") in named and ("chord", "quality") in named and ("drums", "tempo") in named
    with pytest.raises(ValueError, match="most must be a positive integer, got 0"):
        short_prompt(attributes, rng, most=0)


def test_training_captions_mix_subsets_in_at_the_given_share(monkeypatch):
    import arcaudio.procedural.captions as captions

    clips = [sample_attributes(np.random.default_rng([3, i])) for i in range(200)]
    a, b = np.random.default_rng(0), np.random.default_rng(0)
    assert [training_caption(c, a, 0.0) for c in clips] == [caption_for(c, b, "train") for c in clips]
    assert a.random() == b.random()  # share 0 draws nothing more: recaptioned runs are unchanged
    full = [caption_for(c, np.random.default_rng(i)) for i, c in enumerate(clips)]

    def named(caption: str, attributes: dict) -> int:
        table = synonyms("train")
        return sum(any(_mentions(caption, p) for p in table[n][attributes[n]]) for n in nameable_attributes(attributes))

    assert all(named(c, attributes) == len(nameable_attributes(attributes)) for c, attributes in zip(full, clips))
    calls = []
    monkeypatch.setattr(captions, "caption_for", lambda *args: calls.append(args) or "full")
    rng = np.random.default_rng(1)
    subsets = [training_caption(c, rng, 1.0) for c in clips]
    assert not calls and "full" not in subsets
    sizes = collections.Counter(named(c, attributes) for c, attributes in zip(subsets, clips))
    assert set(sizes) == set(range(1, 8)) and sizes[1] > sizes[7]  # 1 to all (7 for a chord), uniform per clip
    rng = np.random.default_rng(2)
    mixed = [training_caption(c, rng, 0.25) for c in clips]
    assert 0.6 < mixed.count("full") / len(mixed) < 0.9
    with pytest.raises(ValueError, match=r"short_share must be in \[0, 1\], got 1.5"):
        training_caption(clips[0], rng, 1.5)



def test_contradicting_captions_move_exactly_one_named_attribute():
    moved = collections.Counter()
    for i in range(400):
        rng = np.random.default_rng([9, i])
        attributes = sample_attributes(rng)
        _, named = named_training_caption(attributes, rng, 0.7)
        caption, wrong = contradicting_caption(attributes, named, rng)
        kind = wrong.get("kind", attributes["kind"])
        if kind != attributes["kind"]:  # the kind moved: only its loudness, pan or envelope stay named, unchanged
            moved["kind"] += 1
            assert set(wrong) - {"kind"} <= {"loudness", "pan", "envelope"} & set(named)
            assert all(attributes[n] == v for n, v in wrong.items() if n != "kind")
        else:
            assert set(wrong) == set(named)
            changed = [n for n in named if wrong[n] != named[n]]
            assert len(changed) == 1 and wrong[changed[0]] in allowed_values(kind, changed[0])
            moved[changed[0]] += 1
        # a clip of the wrong kind (unnamed attributes: any class), the caption names exactly `wrong`
        clip = {"kind": kind, **{n: allowed_values(kind, n)[0] for n in KIND_ATTRIBUTES[kind]},
                "loudness": "quiet", "pan": "left", "envelope": allowed_values(kind, "envelope")[0], **wrong}
        _named_exactly(caption, clip, list(wrong))
    assert set(moved) == set(ATTRIBUTE_VALUES)  # every attribute gets moved
    drums = {"kind": "drums", "tempo": 80, "loudness": "loud", "pan": "left", "envelope": "percussive"}
    _, wrong = contradicting_caption(drums, {"envelope": "percussive"}, np.random.default_rng(0))
    assert wrong["kind"] != "drums"  # nothing else named can move: the kind does
    with pytest.raises(ValueError, match="named must be a non-empty subset"):
        contradicting_caption(drums, {"colour": "white"}, np.random.default_rng(0))


@pytest.mark.parametrize("module", ["arcaudio.procedural.captions", "arcaudio.procedural.synth",
                                    "arcaudio.procedural.probes"])
def test_each_procedural_module_imports_on_its_own(module):
    """A fresh interpreter can import any of them first (captions.py and synth.py import each other)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
