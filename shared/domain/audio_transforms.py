"""Audio augmentation transforms: their parameters, validated, and the signal work, as pure functions.

A transform is ``{"type": "speed", "factor": 0.9}``, ``{"type": "noise", "snr_db": 20}`` or
``{"type": "gain", "db": -6}``:

- speed: speed perturbation by resampling, as Kaldi's and ESPnet's recipes do it (sox ``speed``): the clip is
  resampled by soxr from its rate to rate / factor and read back at its rate, so its duration scales by
  1 / factor and its pitch by factor, at the same sample rate.
- noise: white Gaussian noise added at a signal-to-noise ratio of ``snr_db``, measured on this clip: the
  noise is scaled so that 10 log10(signal power / noise power) is ``snr_db`` over the whole clip (silence
  included). Seeded by the case and the transform (``transform_seed``), so the same case gets the same noise.
- gain: the clip scaled by ``db`` decibels.

Every output is clipped to [-1, 1] before it is encoded (a gain above 0 dB may clip; ``clipped_samples``
counts it). Parameters outside their range, an unknown type, a repeated transform or an empty list are
refused with the reason (``InvalidAugmentation``) before anything is read or written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import soxr
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.domain.json_payload import shown_input, validation_message
from shared.errors import InvalidAugmentation

MAX_TRANSFORMS = 8
SPEED_RANGE = (0.5, 2.0)  # Kaldi/ESPnet use 0.9 and 1.1; past 2x the speech is no longer speech
SNR_RANGE = (-10.0, 60.0)  # dB: from noise louder than speech to barely audible
GAIN_RANGE = (-40.0, 20.0)  # dB
DurationRange = tuple[float | None, float | None]  # (min, max) seconds, either optional


class _Transform(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    type: str

    @property
    def params(self) -> dict[str, float]:
        """The transform's parameters, without its type."""
        return {name: float(value) for name, value in self.model_dump(exclude={"type"}).items()}

    @property
    def key(self) -> str:
        """A short, exact, path-safe name: ``speed_0.9``, ``noise_20``, ``gain_-6``."""
        return "_".join([str(self.type), *(_number(value) for value in self.params.values())])

    def spec(self) -> dict[str, Any]:
        """The transform as a request gives it: ``{"type": "speed", "factor": 0.9}``."""
        return {"type": self.type, **self.params}


class Speed(_Transform):
    """Speed perturbation by resampling: duration x 1/factor, same sample rate."""

    type: Literal["speed"]
    factor: float = Field(ge=SPEED_RANGE[0], le=SPEED_RANGE[1], allow_inf_nan=False)


class Noise(_Transform):
    """White Gaussian noise at a measured signal-to-noise ratio."""

    type: Literal["noise"]
    snr_db: float = Field(ge=SNR_RANGE[0], le=SNR_RANGE[1], allow_inf_nan=False)


class Gain(_Transform):
    """A gain in decibels."""

    type: Literal["gain"]
    db: float = Field(ge=GAIN_RANGE[0], le=GAIN_RANGE[1], allow_inf_nan=False)


Transform = Speed | Noise | Gain
KNOWN: dict[str, type[_Transform]] = {"speed": Speed, "noise": Noise, "gain": Gain}
_ADAPTER: TypeAdapter[Transform] = TypeAdapter(
    Annotated[Speed | Noise | Gain, Field(discriminator="type")]
)

# The augmentation field of an augmented row, as Hugging Face `datasets` names its type (params: the union of
# every transform's parameters; a row has only its own).
PARAM_NAMES = sorted({name for model in KNOWN.values() for name in model.model_fields if name != "type"})
AUGMENTATION_FEATURE = (
    "struct<source_case_id: string, type: string, params: struct<"
    + ", ".join(f"{name}: float64" for name in PARAM_NAMES) + ">>"
)


def _number(value: float) -> str:
    """A float exactly (repr), without a trailing ``.0``."""
    text = repr(float(value))
    return text.removesuffix(".0")


def parse_transform(value: Any, where: str = "augmentations[0]") -> Transform:
    """One transform, or InvalidAugmentation saying what is wrong with it (`where` names it)."""
    if not isinstance(value, dict):
        raise InvalidAugmentation(f"{where}: must be an object like {{\"type\": \"speed\", \"factor\": 0.9}}, "
                                  f"got {shown_input(value)}")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in KNOWN:
        raise InvalidAugmentation(f"{where}.type: unknown transform {shown_input(kind)} (known: {', '.join(KNOWN)})")
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        parts = []
        for item in exc.errors(include_url=False):
            field = ".".join(str(p) for p in item["loc"][1:]) or "transform"
            if item["type"] == "extra_forbidden":
                known = ", ".join(n for n in KNOWN[kind].model_fields if n != "type")
                parts.append(f"{where}.{field}: unknown parameter of {kind} (its parameters: {known})")
            else:
                parts.append(f"{where}.{field}: {validation_message(item)} (got {shown_input(item.get('input'))})")
        raise InvalidAugmentation("; ".join(parts)) from None


def parse_transforms(values: Any, what: str = "augmentations") -> tuple[Transform, ...]:
    """A non-empty list of distinct transforms, in order; InvalidAugmentation naming the first bad one."""
    if not isinstance(values, list | tuple) or not values:
        raise InvalidAugmentation(f"{what}: must be a non-empty list of transforms like "
                                  f'[{{"type": "speed", "factor": 0.9}}], got {shown_input(values)}')
    if len(values) > MAX_TRANSFORMS:
        raise InvalidAugmentation(f"{what}: at most {MAX_TRANSFORMS} transforms, got {len(values)}")
    transforms = tuple(parse_transform(value, f"{what}[{i}]") for i, value in enumerate(values))
    keys = [t.key for t in transforms]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidAugmentation(f"{what}: each transform once; repeated: {', '.join(repeated)}")
    return transforms


def transforms_key(transforms: Sequence[Transform]) -> str:
    """A digest of the transforms in order: the same list names the same augmented dataset."""
    return hashlib.sha256("|".join(t.key for t in transforms).encode()).hexdigest()[:10]


def augmented_dataset_id(
    dataset_id: str, transforms: Sequence[Transform], duration_range: DurationRange = (None, None),
) -> str:
    """`<source id>-aug-<digest of the transforms in order>` (and of the duration range, when one is given)."""
    digest = transforms_key(transforms)
    if duration_range != (None, None):
        digest = hashlib.sha256(f"{digest}|{duration_range[0]}|{duration_range[1]}".encode()).hexdigest()[:10]
    return f"{dataset_id}-aug-{digest}"


def transform_seed(case_id: str, transform: Transform) -> int:
    """The random seed of one transform of one case: the same case and transform draw the same noise."""
    digest = hashlib.blake2b(f"{case_id}\x00{transform.key}".encode(), digest_size=8, person=b"sttdata-aug")
    return int.from_bytes(digest.digest(), "big")


# -- the signal work: float32 samples, shape (frames,) or (frames, channels) ---------------------------------


def speed(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Speed perturbation: resampled to sample_rate / factor by soxr, to be read at sample_rate (frames x
    1/factor, pitch x factor)."""
    if factor == 1.0:
        return samples.copy()
    return np.asarray(soxr.resample(samples, sample_rate, sample_rate / factor, quality="HQ"), dtype=np.float32)


def power(samples: np.ndarray) -> float:
    """Mean power of the samples (every channel)."""
    return float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10 log10 of the signal's power over the noise's."""
    return float(10 * np.log10(power(signal) / power(noise)))


def add_noise(samples: np.ndarray, target_snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise from `rng` scaled so that the clip's SNR is `target_snr_db` as measured on this
    noise draw; ValueError for a silent clip (no SNR exists)."""
    signal_power = power(samples)
    if signal_power == 0.0:
        raise ValueError("silent audio: no signal-to-noise ratio exists")
    noise = rng.standard_normal(samples.shape, dtype=np.float32)
    scale = np.sqrt(signal_power / (power(noise) * 10 ** (target_snr_db / 10)))
    return samples + (noise * np.float32(scale))


def gain(samples: np.ndarray, db: float) -> np.ndarray:
    """The samples scaled by `db` decibels."""
    return samples * np.float32(10 ** (db / 20))


def apply(transform: Transform, samples: np.ndarray, sample_rate: int, seed: int) -> np.ndarray:
    """One transform of a clip (float32 in [-1, 1]); the result is float32, not yet clipped."""
    if isinstance(transform, Speed):
        return speed(samples, sample_rate, transform.factor)
    if isinstance(transform, Noise):
        return add_noise(samples, transform.snr_db, np.random.default_rng(seed))
    return gain(samples, transform.db)


def clipped(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """The samples clipped to [-1, 1] and how many were outside."""
    outside = int(np.count_nonzero(np.abs(samples) > 1.0))
    return (np.clip(samples, -1.0, 1.0) if outside else samples), outside
