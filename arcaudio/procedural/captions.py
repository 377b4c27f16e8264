"""Captions of the procedural set (`synth`): every attribute of a clip in words, in three styles ("train",
"paraphrase", "heldout"), or only some of them (`subset_caption`: "a sine note", "plucked A4"), and a caption that
contradicts a clip in one attribute (`contradicting_caption`, the minimal wrong prompt of ARC's contrastive term).
`arcaudio.procedural.synth` re-exports every name here."""

from __future__ import annotations

import re

import numpy as np

from .synth import KIND_ATTRIBUTES, PITCH_HZ, TEMPOS, _check_attributes, _pick, allowed_values, probed_attributes

# "train": the training captions. "paraphrase": sentence structures never used in training around the training
# vocabulary (the held-out phrasing a from-scratch text encoder can be asked to follow). "heldout": those unseen
# structures with unseen words for every attribute as well (synonyms only a pre-trained text encoder would know).
CAPTION_STYLES = ("train", "paraphrase", "heldout")
_WORDS = {
    "train": {
        "kind": {"tone": ["tone", "note"], "chord": ["chord", "triad"], "noise": ["noise", "noise hiss"],
                 "drums": ["drum loop", "drum beat", "drum groove"], "sweep": ["sweep", "glide"]},
        "waveform": {"sine": ["sine", "pure sine"], "square": ["square", "hollow square"],
                     "sawtooth": ["sawtooth", "saw"], "triangle": ["triangle", "mellow triangle"]},
        "quality": {"major": ["major"], "minor": ["minor"]},
        "colour": {"white": ["white"], "pink": ["pink"], "brown": ["brown", "brownian"]},
        "direction": {"up": ["rising", "upward", "ascending"], "down": ["falling", "downward", "descending"]},
        "loudness": {"quiet": ["quiet", "soft", "gentle"], "loud": ["loud", "strong", "punchy"]},
        "envelope": {"steady": ["steady", "sustained", "constant"],
                     "plucked": ["plucked", "decaying", "quickly decaying"],
                     "swelling": ["swelling", "slowly swelling", "fading-in"],
                     "percussive": ["percussive", "rhythmic"]},
        "pan": {"left": ["panned left", "on the left side", "left-panned", "on the left"],
                "center": ["centered", "in the center", "panned center", "center-panned"],
                "right": ["panned right", "on the right side", "right-panned", "on the right"]},
    },
    "heldout": {
        "kind": {"tone": ["single note", "lone pitch"], "chord": ["three-note chord", "harmony"],
                 "noise": ["static", "noise texture"], "drums": ["percussion pattern", "rhythm track"],
                 "sweep": ["chirp", "frequency glide"]},
        "waveform": {"sine": ["sinusoidal", "clean sinusoidal"], "square": ["square-shaped", "50% pulse"],
                     "sawtooth": ["ramp", "saw-shaped"], "triangle": ["triangular", "triangle-shaped"]},
        "quality": {"major": ["major-key", "major-mode"], "minor": ["minor-key", "minor-mode"]},
        "colour": {"white": ["flat-spectrum", "hissy white"], "pink": ["1/f", "pink-spectrum"],
                   "brown": ["red", "rumbling brown"]},
        "direction": {"up": ["from low to high", "upwards in pitch"],
                      "down": ["from high to low", "downwards in pitch"]},
        "loudness": {"quiet": ["faint", "hushed", "low-volume"], "loud": ["powerful", "forceful", "high-volume"]},
        "envelope": {"steady": ["unwavering", "even-level"], "plucked": ["struck", "fast-fading"],
                     "swelling": ["slowly blooming", "gradually emerging"], "percussive": ["snappy", "staccato"]},
        "pan": {"left": ["off to the left", "in the left channel", "from the left speaker"],
                "center": ["in the middle", "dead centre", "from both speakers equally"],
                "right": ["off to the right", "in the right channel", "from the right speaker"]},
    },
}
_PITCH_FORMS = {"train": ("{name}", "{hz} Hz", "{name} ({hz} Hz)"),
                "heldout": ("{hz} hertz", "the note {name}", "{name} ({hz} hertz)")}
_TEMPO_FORMS = {"train": ("{bpm} bpm", "{bpm} beats per minute"),
                "heldout": ("a tempo of {bpm}", "{bpm} beats a minute")}
# A core names the kind and its kind-specific attributes; a template adds loudness, envelope and pan around it.
CORE_TEMPLATES = {
    "train": {"tone": ("{waveform} {kind} at {pitch}", "{pitch} {waveform} {kind}",
                       "{waveform} {kind} pitched at {pitch}"),
              "chord": ("{pitch} {quality} {kind} in {waveform} waves", "{waveform} {pitch} {quality} {kind}"),
              "noise": ("{colour} {kind}", "{kind} with a {colour} spectrum"),
              "drums": ("{kind} at {tempo}", "{kind} playing at {tempo}"),
              "sweep": ("{direction} {kind}", "{direction} frequency {kind}")},
    "heldout": {"tone": ("{waveform} {kind} sounding {pitch}", "{kind} with a {waveform} waveform at {pitch}"),
                "chord": ("{quality} {kind} on {pitch}, built from {waveform} waves",
                          "{kind} rooted at {pitch}: {quality}, {waveform} timbre"),
                "noise": ("{kind} of the {colour} kind", "{kind} with {colour} colouring"),
                "drums": ("{kind} with {tempo}", "{kind} moving at {tempo}"),
                "sweep": ("{kind} moving {direction}", "{kind} that travels {direction}")},
}
TEMPLATES = {
    "train": ("a {loudness} {envelope} {core}, {pan}", "{envelope} {core}, {loudness}, {pan}",
              "a {core}, {loudness} and {envelope}, {pan}", "{pan}: a {loudness}, {envelope} {core}",
              "a {loudness} {core} {pan}, {envelope}", "{loudness} and {envelope} {core} {pan}",
              "a {envelope} {core} {pan}, {loudness}"),
    "heldout": ("{core} ({loudness}, {envelope}), {pan}", "picture a {envelope} {core} {pan} - {loudness} overall",
                "{pan} you hear a {loudness}, {envelope} {core}", "a {core}; {loudness}, {envelope}, {pan}",
                "{loudness}, {envelope} sound: a {core} {pan}", "the sound of a {envelope} {core}, {loudness}, {pan}"),
}
# paraphrase: the held-out structures, the training words
_WORDS["paraphrase"] = _WORDS["train"]
_PITCH_FORMS["paraphrase"], _TEMPO_FORMS["paraphrase"] = _PITCH_FORMS["train"], _TEMPO_FORMS["train"]
CORE_TEMPLATES["paraphrase"], TEMPLATES["paraphrase"] = CORE_TEMPLATES["heldout"], TEMPLATES["heldout"]
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU8]|1[18]\b)")


def _check_style(style: str) -> None:
    if style not in CAPTION_STYLES:
        raise ValueError(f"style must be one of {list(CAPTION_STYLES)}, got {style!r}")


def synonyms(style: str = "train") -> dict[str, dict]:
    """attribute -> value -> the phrases a caption of this style may use for it (pitch and tempo included)."""
    _check_style(style)
    table = {name: {value: list(words) for value, words in values.items()} for name, values in _WORDS[style].items()}
    table["pitch"] = {name: [form.format(name=name, hz=round(hz)) for form in _PITCH_FORMS[style]]
                      for name, hz in PITCH_HZ.items()}
    table["tempo"] = {bpm: [form.format(bpm=bpm) for form in _TEMPO_FORMS[style]] for bpm in TEMPOS}
    return table


def caption_for(attributes: dict, rng: np.random.Generator, style: str = "train") -> str:
    """A natural-language caption naming every attribute of the clip (a chord's waveform and drums' "percussive"
    included), with phrasings and word order drawn from `rng`. `style` "train" and "heldout" share no template and
    no phrase, to test generalisation to unseen wordings."""
    _check_style(style)
    _check_attributes(attributes)
    words = synonyms(style)
    kind = attributes["kind"]

    def say(name: str) -> str:
        return _pick(rng, words[name][attributes[name]])

    fields = {"kind": say("kind"), **{name: say(name) for name in KIND_ATTRIBUTES[kind]}}
    core = _pick(rng, CORE_TEMPLATES[style][kind]).format(**fields)
    template = _pick(rng, TEMPLATES[style])
    text = template.format(core=core, loudness=say("loudness"), envelope=say("envelope"), pan=say("pan"))
    text = _ARTICLE.sub(r"\1n ", text)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.3 else text


# Captions that name only some attributes ("a sine note", "something on the left", "plucked A4"): short prompts
# to evaluate on and, mixed into recaptioned training batches, to train on. Their attribute phrases are exactly the
# training words (`synonyms("train")`); only the small grammar around them is new. A noun head is the kind word;
# when the kind is not named the head is a tone's "{waveform} wave", "something", or nothing (the modifiers stand
# alone), so that no kind word is said. Without the kind, a noise's colour is "with a {colour} spectrum" ("white
# noise" would name the kind) and a chord's waveform is "in {waveform} waves" ("a sine wave" would suggest a tone).
_PAN_ADJECTIVES = ("left-panned", "center-panned", "right-panned", "centered")  # pan words that can precede a noun
_LINKS = {"pitch": ("at {}", "pitched at {}"), "tempo": ("at {}", "playing at {}")}  # a number after its head


def nameable_attributes(attributes: dict) -> list[str]:
    """The attribute names a caption of the clip can name: kind, its kind-specific ones, loudness, pan, envelope
    (a chord's waveform and drums' "percussive" included, unlike `probed_attributes`)."""
    kind = attributes.get("kind")
    if kind not in KIND_ATTRIBUTES:
        raise ValueError(f"kind must be one of {list(KIND_ATTRIBUTES)}, got {kind!r}")
    return ["kind", *KIND_ATTRIBUTES[kind], "loudness", "pan", "envelope"]


def _series(items: list[str], rng: np.random.Generator, listable: bool) -> str:
    """Modifiers side by side: "quiet plucked", or when `listable` also "quiet, plucked" or "quiet and plucked"."""
    joint = _pick(rng, (" ", ", ", " and ")) if listable and len(items) > 1 else " "
    return " ".join(items) if joint == " " else ", ".join(items[:-1]) + joint + items[-1]


def subset_caption(attributes: dict, names, rng: np.random.Generator) -> str:
    """A caption naming exactly the attributes `names` of the clip (any non-empty subset of `nameable_attributes`,
    in any order) in training words, and no other attribute: "a sine note", "something on the left", "plucked A4",
    "a quiet minor chord". Adjectives (loudness, envelope, direction, a "-panned" pan; then mostly nearer the head
    waveform, colour, quality) go before the head, or after "something"; pitch and tempo stand bare next to the
    head ("440 Hz sine tone", "plucked A4") or follow it ("at A4"); pan mostly trails ("on the left"), sometimes
    leads ("on the left: ..."). The caption depends on the set of names, not their order, and on `rng`."""
    _check_attributes(attributes)
    nameable = nameable_attributes(attributes)
    wanted = set(names)
    if not wanted or not wanted <= set(nameable):
        raise ValueError(f"names must be a non-empty subset of {nameable} for a {attributes['kind']} clip, "
                         f"got {list(names)!r}")
    words = synonyms("train")
    kind = attributes["kind"]

    def say(name: str) -> str:
        return _pick(rng, words[name][attributes[name]])

    spoken = [name for name in nameable if name in wanted and name != "kind"]
    if "kind" in wanted:
        head = say("kind")
    elif "waveform" in wanted and kind == "tone" and rng.random() < 0.5:
        head = say("waveform") + " wave"
        spoken.remove("waveform")
    else:
        head = _pick(rng, ("something", ""))
    described, classified, numbers, after = [], [], [], []  # adjectives of manner and of class, bare numbers
    trailing_pan = None
    for name in spoken:
        phrase = say(name)
        if name in _LINKS:
            if head != "something" and rng.random() < 0.5:
                numbers.append(phrase)
            else:
                after.append(_pick(rng, _LINKS[name]).format(phrase))
        elif name == "pan" and (phrase not in _PAN_ADJECTIVES or rng.random() < 0.5):
            trailing_pan = phrase
            after.append(phrase)
        elif name == "colour" and "kind" not in wanted:
            after.append(f"with a {phrase} spectrum")
        elif name == "waveform" and kind == "chord" and "kind" not in wanted:
            after.append(f"in {phrase} waves")
        else:
            (described if name in ("loudness", "envelope", "direction", "pan") else classified).append(phrase)
    before = [*described, *classified]
    order = (np.concatenate([rng.permutation(len(described)), len(described) + rng.permutation(len(classified))])
             if rng.random() < 0.7 else rng.permutation(len(before)))
    before = [before[i] for i in order]  # mostly "quiet plucked sine", sometimes "sine quiet plucked"
    listable = not classified
    if head == "something":
        text = " ".join(["something", _series(before, rng, listable)]).strip()
    elif head:
        text = " ".join([*before, *numbers, head])
        text = "a " + text if rng.random() < 0.5 else text
    else:
        text = " ".join(part for part in (_series(before, rng, listable), *numbers) if part)
    after = [after[i] for i in rng.permutation(len(after))]
    leading = None
    if text not in ("", "something") and trailing_pan is not None and rng.random() < 0.2:
        leading = trailing_pan
        after.remove(leading)
    joint = _pick(rng, (" ", " ", ", "))
    for phrase in after:
        text = text + joint + phrase if text else phrase
    if leading is not None:
        text = f"{leading}: {text}"
    text = _ARTICLE.sub(r"\1n ", text)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.3 else text


def short_prompt(attributes: dict, rng: np.random.Generator, most: int = 3) -> tuple[str, list[str]]:
    """An evaluation prompt naming 1 to `most` (uniformly many) of the clip's probed attributes, chosen uniformly
    (so a chord's waveform and drums' envelope, which are not probed, are never named): (caption, names in
    `probed_attributes` order)."""
    if int(most) != most or most < 1:
        raise ValueError(f"most must be a positive integer, got {most!r}")
    probed = probed_attributes(attributes)
    count = int(rng.integers(1, min(int(most), len(probed)) + 1))
    chosen = set(rng.choice(len(probed), size=count, replace=False).tolist())
    names = [name for i, name in enumerate(probed) if i in chosen]
    return subset_caption(attributes, names, rng), names


def training_caption(attributes: dict, rng: np.random.Generator, short_share: float = 0.0) -> str:
    """A training caption: with probability `short_share` a `subset_caption` naming k of the clip's nameable
    attributes (k uniform over 1..all of them, the names drawn uniformly), else `caption_for(..., "train")`.
    `short_share` 0 draws nothing more from `rng` than `caption_for` does, so it gives the same captions."""
    return named_training_caption(attributes, rng, short_share)[0]


def named_training_caption(attributes: dict, rng: np.random.Generator,
                           short_share: float = 0.0) -> tuple[str, dict[str, str]]:
    """`training_caption` (the same draws, the same caption) and the attributes it names, {name: class}: what a clip
    must have for the caption to describe it."""
    if not 0 <= short_share <= 1:
        raise ValueError(f"short_share must be in [0, 1], got {short_share!r}")
    nameable = nameable_attributes(attributes)
    if short_share > 0 and rng.random() < short_share:
        count = int(rng.integers(1, len(nameable) + 1))
        chosen = set(rng.choice(len(nameable), size=count, replace=False).tolist())
        names = [name for i, name in enumerate(nameable) if i in chosen]
        return subset_caption(attributes, names, rng), {name: attributes[name] for name in names}
    return caption_for(attributes, rng, "train"), {name: attributes[name] for name in nameable}


def contradicting_caption(attributes: dict, named: dict, rng: np.random.Generator) -> tuple[str, dict]:
    """A minimal wrong prompt for a clip: the attributes its caption names (`named`, {name: class}) with one of
    them, drawn uniformly among those that can take another class, moved to another class, captioned in training
    words ("a plucked minor chord" -> "a plucked major chord"). Moving the kind keeps the loudness, pan and
    envelope it named and drops the old kind's own attributes ("drum loop at 100 bpm" -> "a noise"). Returns
    (caption, the {name: class} it names), which no clip with `attributes` satisfies."""
    _check_attributes(attributes)
    kind = attributes["kind"]
    if not named or not set(named) <= set(nameable_attributes(attributes)):
        raise ValueError(f"named must be a non-empty subset of {nameable_attributes(attributes)}, got {named!r}")
    movable = [name for name in named if name == "kind" or len(allowed_values(kind, name)) > 1]
    name = _pick(rng, movable) if movable else "kind"  # drums named only as "percussive": move the kind
    wrong = dict(attributes)
    if name == "kind":
        new_kind = _pick(rng, [k for k in KIND_ATTRIBUTES if k != kind])
        wrong = {"kind": new_kind, **{n: _pick(rng, allowed_values(new_kind, n)) for n in KIND_ATTRIBUTES[new_kind]},
                 "loudness": attributes["loudness"], "pan": attributes["pan"]}
        keeps_envelope = attributes["envelope"] in allowed_values(new_kind, "envelope")
        wrong["envelope"] = attributes["envelope"] if keeps_envelope else _pick(rng, allowed_values(new_kind,
                                                                                                    "envelope"))
        names = ["kind"] + [n for n in named if n in ("loudness", "pan") or (n == "envelope" and keeps_envelope)]
    else:
        wrong[name] = _pick(rng, [v for v in allowed_values(kind, name) if v != attributes[name]])
        names = list(named)
    return subset_caption(wrong, names, rng), {n: wrong[n] for n in names}
