"""Use case: augment a finished dataset by asking the build function, as the `api`'s augment_dataset op does.

The api writes no dataset (CONTRACT: its writes are reports/ and restores): it uploads a build request
`dataset-requests/api-augment/<dataset>-<digest>.json` naming the finished dataset (`augment_dataset_id`) and
the transforms, and build_dataset, which holds the lease, the longer timeout and the audio read grant, writes
the augmented dataset and its version (dataset_builds.augment_finished_dataset). The upload is create-only
(if_generation_match=0) and its name is a digest of the request's content, so the same dataset and transforms
(and options) always name the same request: a repeated call finds it, uploads nothing, and answers the same
build. The answer is where that build stands (work_progress.build_status) and, once done, its result from
`dataset_results/<name>.json`; asked to wait, it polls until then or its timeout.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from shared.domain import audio_transforms
from shared.domain import bucket_layout as layout
from shared.domain.dataset_request import parse_build_request
from shared.errors import BadInput, NotFound
from shared.ports import Bucket, ProgressBoard
from shared.services.datasets import read_metadata
from shared.services.work_progress import build_status

# The api function's timeout is 60 s (infra/modules/function): a wait must end, with an answer, before it.
MAX_WAIT_S = 50.0
POLL_S = 1.0
DIGEST_CHARS = 12
# Build states after which nothing changes (work_progress.build_status).
DONE_STATES = frozenset({"built", "no eligible cases", "rejected", "object gone"})


def augment_request(
    dataset_id: str, transforms: Sequence[audio_transforms.Transform], *, create_version: bool,
    version_name: str | None, parent_version: str | None, allow_failed_quality: bool,
) -> dict[str, Any]:
    """The build request's body: the dataset, its transforms as specs (numbers as floats, so `0.9` and `0.90`
    name one request) and only the options given, so a body means one thing and dumps one way."""
    body: dict[str, Any] = {"augment_dataset_id": dataset_id, "augment": [t.spec() for t in transforms],
                            "create_version": create_version}
    optional = {"version_name": version_name, "parent_version": parent_version,
                "allow_failed_quality": allow_failed_quality or None}
    return body | {key: value for key, value in optional.items() if value is not None}


def request_object_name(body: dict[str, Any]) -> str:
    """`dataset-requests/api-augment/<dataset>-<digest of the body>.json`: the same body, the same name."""
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:DIGEST_CHARS]
    return f"{layout.API_AUGMENT_REQUESTS}{body['augment_dataset_id']}-{digest}.json"


def ask_augmentation(
    bucket: Bucket, progress: ProgressBoard, dataset_id: str, augmentations: Any, *,
    create_version: bool = True, version_name: str | None = None, parent_version: str | None = None,
    allow_failed_quality: bool = False, wait: bool = False, timeout_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Upload (once) the build request augmenting `dataset_id`; where its build stands, with its result when
    done. InvalidAugmentation / InvalidBuildRequest name a bad argument and NotFound an unknown dataset, before
    anything is written."""
    if not 0 <= timeout_s <= MAX_WAIT_S:
        raise BadInput(f"timeout_s must be between 0 and {MAX_WAIT_S:g} seconds (the api's own timeout is 60 s), "
                       f"got {timeout_s:g}; follow a longer build with build_status")
    transforms = audio_transforms.parse_transforms(augmentations)
    body = augment_request(dataset_id, transforms, create_version=create_version, version_name=version_name,
                           parent_version=parent_version, allow_failed_quality=allow_failed_quality)
    data = orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    parse_build_request(data)  # what the build function will parse: a bad name is refused here, unwritten
    if read_metadata(bucket, dataset_id) is None:
        raise NotFound(f"no finished dataset {dataset_id!r} ({layout.DATASET_METADATA} missing)")
    name = request_object_name(body)
    created = bucket.put_once(name, data, "application/json")
    generation = bucket.generation(name)
    status = _status(bucket, progress, name, generation)
    deadline = clock() + timeout_s
    while wait and status["state"] not in DONE_STATES and clock() < deadline:
        sleep(POLL_S)
        status = _status(bucket, progress, name, generation)
    return {
        "request": name, "request_uri": bucket.uri(name), "created": created,
        "result_object": layout.build_result_name(name), "source_dataset_id": dataset_id,
        "dataset_id": audio_transforms.augmented_dataset_id(dataset_id, transforms), **status,
    }


def _status(bucket: Bucket, progress: ProgressBoard, name: str, generation: int) -> dict[str, Any]:
    return build_status(name, generation or None, progress, bucket)
