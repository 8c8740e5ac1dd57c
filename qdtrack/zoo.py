"""The published QDTrack checkpoints by name: downloaded once, checked, converted once.

``--weights`` takes a zoo name (:data:`MODELS`), an http(s) URL or a local file. A name
resolves to mmtracking's published URL under :data:`DEFAULT_BASE_URL` (or under
``$QDTRACK_ZOO_URL``, e.g. a mirror); the file goes to the torch hub cache
(``torch.hub.get_dir()``: ``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``) as
``checkpoints/<file name>``, exactly where ``torch.hub.load_state_dict_from_url`` puts it.
Published file names end in the first hex digits of the file's SHA-256 (torch hub's
convention); a download or a manually placed file whose hash does not start with them is
refused and deleted. The file is then converted once (:mod:`qdtrack.convert`) into
``checkpoints/qdtrack/<stem>.qdtrack-v<N>.pt``, and later calls return that file without
any network request.

Offline, the error names the URL and the exact path where a manually downloaded copy of
the file makes the name work without network access. docs/model-zoo.md has the table.
"""

from __future__ import annotations

import argparse
import difflib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from qdtrack.convert import convert_checkpoint_file, sha256_file

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "MODELS",
    "WeightsError",
    "ZooModel",
    "cache_dir",
    "download",
    "models_table",
    "resolve_weights",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://download.openmmlab.com/mmtracking/mot/qdtrack"
#: Environment variable that replaces :data:`DEFAULT_BASE_URL` (a mirror, a test server).
BASE_URL_ENV = "QDTRACK_ZOO_URL"
#: Part of converted file names; raise it when the converted checkpoint format changes so
#: that files converted by an older version are converted again.
CONVERTED_VERSION = 1
#: torch hub's rule for the hash in a file name: ``<stem>-<hex prefix>.<ext>``.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


class WeightsError(ValueError):
    """Weights that cannot be fetched or used; the CLI prints it and exits with code 2."""


@dataclass(frozen=True)
class ZooModel:
    """One published checkpoint.

    Attributes:
        name: the ``--weights`` name.
        folder: the folder under the base URL.
        file_name: the published file name (it ends in a SHA-256 prefix).
        architecture: backbone and classes.
        trained_on: the training data.
        results: the published figures and what they were measured on.
        mmtracking_config: the mmtracking config that trained it.
    """

    name: str
    folder: str
    file_name: str
    architecture: str
    trained_on: str
    results: str
    mmtracking_config: str

    @property
    def sha256_prefix(self) -> str:
        """The hash prefix in :attr:`file_name`."""
        prefix = hash_prefix_in_name(self.file_name)
        assert prefix is not None, self.file_name
        return prefix

    def url(self, base_url: str | None = None) -> str:
        """The download URL under ``base_url`` (default: ``$QDTRACK_ZOO_URL`` or mmtracking's)."""
        base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return f"{base.rstrip('/')}/{self.folder}/{self.file_name}"


#: mmtracking's QDTrack model zoo (its configs/mot/qdtrack README and metafile).
MODELS: dict[str, ZooModel] = {
    model.name: model
    for model in (
        ZooModel(
            name="qdtrack-r50-mot17-half",
            folder="mot_dataset",
            file_name="qdtrack_faster-rcnn_r50_fpn_4e_mot17_20220315_145635-76f295ef.pth",
            architecture="R-50-FPN, 1 class",
            trained_on="MOT17 half-train",
            results="MOT17 half-val HOTA 57.1 / MOTA 68.2 / IDF1 68.5",
            mmtracking_config="qdtrack_faster-rcnn_r50_fpn_4e_mot17-private-half",
        ),
        ZooModel(
            name="qdtrack-r50-crowdhuman-mot17-half",
            folder="mot_dataset",
            file_name="qdtrack_faster-rcnn_r50_fpn_4e_crowdhuman_mot17_20220315_163453-68899b0a.pth",
            architecture="R-50-FPN, 1 class",
            trained_on="CrowdHuman + MOT17 half-train",
            results="MOT17 half-val HOTA 59.1 / MOTA 71.7 / IDF1 71.6",
            mmtracking_config="qdtrack_faster-rcnn_r50_fpn_4e_crowdhuman_mot17-private-half",
        ),
        ZooModel(
            name="qdtrack-r101-lvis",
            folder="tao_dataset",
            file_name="qdtrack_faster-rcnn_r101_fpn_24e_lvis_20220430_024513-88911daf.pth",
            architecture="R-101-FPN, 482 classes",
            trained_on="LVIS v0.5 + COCO 2017 train",
            results="TAO val box AP 17.2 / AP50 28.6 / AP75 17.7",
            mmtracking_config="qdtrack_faster-rcnn_r101_fpn_24e_lvis",
        ),
        ZooModel(
            name="qdtrack-r101-tao",
            folder="tao_dataset",
            file_name="qdtrack_faster-rcnn_r101_fpn_12e_tao_20220613_211934-7cbf4062.pth",
            architecture="R-101-FPN, 482 classes",
            trained_on="TAO train (from qdtrack-r101-lvis)",
            results="TAO val Track AP 11.0 / AP50 15.8 / AP75 6.1",
            mmtracking_config="qdtrack_faster-rcnn_r101_fpn_12e_tao",
        ),
    )
}


def hash_prefix_in_name(file_name: str) -> str | None:
    """The SHA-256 prefix a file name carries (``...-76f295ef.pth`` -> ``76f295ef``)."""
    match = _HASH_IN_NAME.search(file_name)
    return match.group(1) if match else None


def cache_dir() -> Path:
    """``<torch hub dir>/checkpoints``: where downloads go (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def converted_path(stem: str) -> Path:
    """Where the converted project checkpoint of a source file with ``stem`` is cached."""
    return cache_dir() / "qdtrack" / f"{stem}.qdtrack-v{CONVERTED_VERSION}.pt"


def _offline_error(url: str, dest: Path, reason: str) -> WeightsError:
    return WeightsError(
        f"could not download {url} ({reason}). Without network access, download that file "
        f"on another machine and copy it to exactly this path: {dest} -- it is then used "
        "(hash-checked and converted) without any request."
    )


def _check_hash(path: Path, expected_prefix: str, *, origin: str, delete: bool) -> None:
    actual = sha256_file(path)
    if actual.startswith(expected_prefix):
        return
    if delete:
        path.unlink(missing_ok=True)
    what = "refused and deleted" if delete else "refused"
    raise WeightsError(
        f"{origin}: SHA-256 {actual[: len(expected_prefix)]}... does not start with "
        f"{expected_prefix}, the prefix in its file name: the file is corrupt or not the "
        f"published one ({what})."
    )


def download(url: str, dest: Path, *, expected_prefix: str | None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through a ``.partial`` file, with a progress bar.

    Args:
        url: http(s) URL.
        dest: final path; it appears only once the download is complete and checked.
        expected_prefix: SHA-256 prefix the file must have (``None``: no check).
        progress: show a tqdm bar on stderr.

    Returns:
        ``dest``.

    Raises:
        WeightsError: network failure (naming ``url`` and ``dest``, for a manual download)
            or a hash mismatch (the partial file is deleted).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    logger.info("downloading %s to %s", url, dest)
    try:
        try:
            _stream_to(url, partial, desc=dest.name, progress=progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _offline_error(url, dest, str(reason)) from exc
        if expected_prefix is not None:
            _check_hash(partial, expected_prefix, origin=url, delete=True)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)  # an interrupted or refused download leaves nothing
    return dest


def _stream_to(url: str, out_path: Path, *, desc: str, progress: bool) -> None:
    """Copy the response body of ``url`` into ``out_path``, showing bytes received."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            out_path.open("wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                disable=not progress,
                file=sys.stderr,
                dynamic_ncols=True,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _fetch_and_convert(url: str, file_name: str, *, progress: bool) -> Path:
    """The converted checkpoint of the file at ``url`` (named ``file_name``), cached."""
    prefix = hash_prefix_in_name(file_name)
    raw = cache_dir() / file_name
    if prefix is not None:
        converted = converted_path(Path(file_name).stem)
        if converted.is_file():
            return converted
    if raw.is_file():
        if prefix is not None:  # a manually placed copy, or one left by an earlier run
            _check_hash(raw, prefix, origin=str(raw), delete=True)
    else:
        if prefix is None:
            logger.warning(
                "%s: no SHA-256 prefix in the file name; its content is not checked", url
            )
        download(url, raw, expected_prefix=prefix, progress=progress)
    return _converted_or_project(raw, known_prefix=prefix)


def _is_project_checkpoint(path: Path) -> bool:
    """True for a checkpoint of this project (``model`` + ``config``), read lazily."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint (mmap needs one) or not torch at all
        return False
    return isinstance(state, Mapping) and "model" in state and "config" in state


def _converted_or_project(path: Path, *, known_prefix: str | None) -> Path:
    """``path`` itself if it is a project checkpoint, else its cached conversion."""
    if _is_project_checkpoint(path):
        return path
    stem = path.stem if known_prefix is not None else f"{path.stem}-{sha256_file(path)[:12]}"
    converted = converted_path(stem)
    if not converted.is_file():
        logger.info("converting %s to %s", path.name, converted)
        convert_checkpoint_file(path, converted)
    return converted


def _closest_names(spec: str) -> str:
    close = difflib.get_close_matches(spec, list(MODELS), n=2, cutoff=0.5)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def resolve_weights(spec: str, *, progress: bool = True) -> Path:
    """A local project checkpoint for ``--weights NAME|FILE|URL``.

    Args:
        spec: a zoo name (:data:`MODELS`), an http(s) URL of a checkpoint (mmtracking or
            project format) or a local file (a project checkpoint, used as it is, or an
            mmtracking one, converted once into the cache).
        progress: show download progress.

    Returns:
        Path of a project checkpoint (``model`` + ``config``).

    Raises:
        WeightsError: unknown name, download failure or hash mismatch.
        FileNotFoundError: ``spec`` looks like a path but no such file exists.
        ValueError: the file is not a checkpoint of a supported layout.
    """
    if spec in MODELS:
        model = MODELS[spec]
        return _fetch_and_convert(model.url(), model.file_name, progress=progress)
    parsed = urllib.parse.urlparse(spec)
    if parsed.scheme in ("http", "https"):
        file_name = Path(urllib.parse.unquote(parsed.path)).name
        if not file_name:
            raise WeightsError(f"--weights {spec}: the URL names no file")
        return _fetch_and_convert(spec, file_name, progress=progress)
    path = Path(spec).expanduser()
    if path.is_file():
        prefix = hash_prefix_in_name(path.name)
        if prefix is not None and not _is_project_checkpoint(path):
            _check_hash(path, prefix, origin=str(path), delete=False)
        return _converted_or_project(path, known_prefix=None)
    if path.suffix or os.sep in spec:
        raise FileNotFoundError(f"--weights {spec}: no such file")
    raise WeightsError(
        f"--weights {spec!r}: not a model name, an existing file or an http(s) URL"
        f"{_closest_names(spec)}; the names are: {', '.join(MODELS)} (qdtrack weights list)"
    )


def models_table() -> str:
    """The zoo as a text table: name, network, training data, published figures, cached."""
    header = ("name", "network", "trained on", "published results", "cached")
    rows = [header]
    for model in MODELS.values():
        converted = converted_path(Path(model.file_name).stem).is_file()
        downloaded = (cache_dir() / model.file_name).is_file()
        state = "converted" if converted else "downloaded" if downloaded else "no"
        rows.append((model.name, model.architecture, model.trained_on, model.results, state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    base = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    lines.append("")
    lines.append(f"source: {base}/<mot_dataset|tao_dataset>/<file>; cache: {cache_dir()}")
    return "\n".join(lines)


def main_list(args: argparse.Namespace) -> int:
    """``qdtrack weights list``."""
    sys.stdout.write(models_table() + "\n")
    return 0


def main_fetch(args: argparse.Namespace) -> int:
    """``qdtrack weights fetch NAME|URL|FILE``: download and convert now, print the path."""
    path = resolve_weights(args.spec)
    sys.stdout.write(f"{path}\n")
    return 0
