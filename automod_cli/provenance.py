"""What data a model was trained on (its provenance), from its checkpoint's metadata alone; `locate.open_model`
reads it with the model, and the image commands check their inputs against it (`ops/provenance.py`):
- a training checkpoint (automod's models and LIA) holds its resolved `train_config`: no `data` file means the
  built-in dataset; otherwise a dataset preset (ffhq, celebahq, lsun-bedroom, lsun-car) names the dataset, and for
  the `custom` preset the data file's own record (`automod prep` writes its source and alignment) is read when
  the file is still where training found it;
- a model imported from the authors' code records `source.dataset` (`automod import --dataset`, or the published
  model's, known by its file name `{N}_state.pth`, also for files converted before the field existed);
- any other file (e.g. written by `save_model` from Python) records nothing, and nothing is assumed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from automod_cli import pretrained
from automod_cli.presets import DATASET_PRESETS
from data_prep.hdf5 import read_info

BUILTIN = "builtin"
FACE_DATASETS = (
    "ffhq",
    "celebahq",
)  # trained on FFHQ-aligned faces: inputs are aligned the same way by default
DATASET_NAMES = {
    BUILTIN: "the built-in shapes dataset (generated)",
    "ffhq": "FFHQ faces (aligned)",
    "celebahq": "CelebA-HQ faces (aligned)",
    "lsun-bedroom": "LSUN Bedrooms",
    "lsun-car": "LSUN Cars",
    "lsun": "LSUN images",
    "folder": "a folder of images",
    "custom": "a custom data file",
}
# `automod prep` records how faces were framed; these records mean FFHQ-style aligned faces (data_prep/sources.py)
ALIGNED_RECORDS = ("ffhq procedure", "ffhq release", "celeba-hq release")


@dataclass(frozen=True)
class Provenance:
    """What a checkpoint says about the data its model was trained on."""

    dataset: (
        str | None
    )  # builtin, a dataset preset, a data file's source (folder, lsun, ...), custom; None: unknown
    resolution: int  # the checkpoint's resolution
    data_file: str | None = None  # the HDF5 file given to `automod train --data`
    alignment: str | None = (
        None  # how the data file framed faces (its `automod prep` record), when it was read
    )
    origin: str = "not recorded in the checkpoint"  # where this knowledge comes from

    @property
    def known(self) -> bool:
        return self.dataset is not None

    @property
    def aligned_faces(self) -> bool:
        """Trained on FFHQ-style aligned faces: a face dataset, or a data file prepared with face alignment."""
        return self.dataset in FACE_DATASETS or (self.alignment or "").startswith(ALIGNED_RECORDS)

    def describe(self) -> str:
        """'the built-in shapes dataset (...) at 32²', 'FFHQ faces (aligned) at 256², data file data/ffhq.h5'."""
        if self.dataset is None:
            return f"not recorded in the checkpoint ({self.resolution}² model)"
        text = f"{DATASET_NAMES.get(self.dataset, self.dataset)} at {self.resolution}²"
        if self.data_file:
            text += f", data file {self.data_file}"
        if self.alignment and self.dataset not in FACE_DATASETS and self.aligned_faces:
            text += " (faces aligned at prep)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aligned_faces": self.aligned_faces, "description": self.describe()}


def _data_record(data: str) -> tuple[str | None, str | None]:
    """The source and alignment `automod prep` recorded in a data file; (None, None) when it cannot be read here."""
    if not Path(data).is_file():
        return None, None
    try:
        info = read_info(Path(data))
    except Exception:  # noqa: BLE001 -- a moved, damaged or foreign file: the provenance just knows less
        return None, None
    return info.source, info.alignment


def from_meta(meta: dict[str, Any], resolution: int) -> Provenance:
    """The provenance recorded in a checkpoint's metadata (module docstring)."""
    source = meta.get("source") or {}
    if source.get("format") == "authors":
        dataset = source.get("dataset") or pretrained.dataset_of_file(str(source.get("file", "")))
        return Provenance(dataset, resolution, origin=f"authors' file {source.get('file', '?')} (imported)")
    train = meta.get("train_config")
    if not isinstance(train, dict):
        return Provenance(None, resolution)
    data = train.get("data")
    if data is None:
        return Provenance(BUILTIN, resolution, origin="training config (no data file)")
    recorded, alignment = _data_record(str(data))
    preset = train.get("preset", "custom")
    dataset = preset if preset in DATASET_PRESETS else (recorded or "custom")
    return Provenance(dataset, resolution, str(data), alignment, origin=f"training config (preset {preset})")
