"""Shard addresses: brace patterns expanded to lists, and each address opened as a stream of bytes.

An address is a local path (or `file://` URL), `pipe:COMMAND` (the command's standard output: `pipe:curl -s URL`,
`pipe:aws s3 cp s3://bucket/shard.tar -`), or any URL an installed fsspec filesystem opens (`s3://`, `gs://`,
`https://`, ...). These come from the person running training (a command line or config), never from a network
client.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_BRACE = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """`shard-{000..003}.tar` -> shard-000.tar ... shard-003.tar (zero padding kept), `{a,b}` -> both; several
    braces combine in order. Raises ValueError for a malformed range."""
    parts, choices, pos = [], [], 0
    for match in _BRACE.finditer(pattern):
        parts.append(pattern[pos:match.start()])
        body = match.group(1)
        if ".." in body:
            lo, _, hi = body.partition("..")
            if not (lo.isdigit() and hi.isdigit()) or int(hi) < int(lo):
                raise ValueError(f"bad range {{{body}}} in {pattern!r}: expected {{FIRST..LAST}} with FIRST <= LAST, "
                                 "both non-negative integers")
            width = len(lo) if lo.startswith("0") else 0
            choices.append([str(k).zfill(width) for k in range(int(lo), int(hi) + 1)])
        else:
            choices.append(body.split(","))
        pos = match.end()
    parts.append(pattern[pos:])
    out = []
    for combo in itertools.product(*choices):
        out.append("".join(p + c for p, c in zip(parts, [*combo, ""])))
    return out


def shard_urls(source: str | Path | list[str]) -> list[str]:
    """The shard addresses of a source: a list of addresses, a brace pattern (several joined with '::', as
    WebDataset writes them), or a local folder (its `*.tar` files, sorted)."""
    if isinstance(source, (list, tuple)):
        urls = [str(u) for u in source]
    else:
        text = str(source)
        folder = Path(text).expanduser()
        if "://" not in text and not text.startswith("pipe:") and folder.is_dir():
            urls = [str(p) for p in sorted(folder.glob("*.tar"))]
            if not urls:
                raise ValueError(f"{text!r} is a folder without .tar shards (write them with arcaudio pack)")
        else:
            urls = [u for part in text.split("::") for u in expand_braces(part)]
    if not urls:
        raise ValueError(f"no shards in {source!r}")
    return urls


@contextmanager
def open_url(url: str) -> Iterator[IO[bytes]]:
    """A readable binary stream of one shard address (see the module docstring); the stream is closed on exit and
    a `pipe:` command that fails raises OSError naming it and its exit status."""
    if url.startswith("pipe:"):
        command = url[5:]
        stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty command never blocks on it
        proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=stderr)
        try:
            yield proc.stdout
            while proc.stdout.read(1 << 16):  # the rest (a tar's end padding), so the command ends normally
                pass
        except BaseException:  # the reader stopped early: the command is not needed any more
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            status = proc.wait()
            stderr.seek(0)
            err = stderr.read().decode(errors="replace").strip()
            stderr.close()
        if status != 0:
            raise OSError(f"pipe command {command!r} exited with status {status}: {err[-500:]}")
        return
    if url.startswith("file://"):
        url = url[7:]
    if "://" not in url:
        path = Path(url).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"shard {url!r} does not exist")
        with open(path, "rb") as f:
            yield f
        return
    try:
        import fsspec
    except ImportError as err:
        raise ImportError(f"reading {url!r} needs fsspec (and the package of its protocol, e.g. s3fs, gcsfs): "
                          "pip install fsspec; or give a pipe: command that writes the shard to stdout") from err
    with fsspec.open(url, "rb") as f:
        yield f
