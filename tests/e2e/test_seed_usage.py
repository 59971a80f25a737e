"""The seed document's usage examples, run as its users wrote them, against the local stack, in an empty working
directory: one script, one namespace, block after block.

The blocks are the seed's own text (tests/fixtures/seed/usage.md, a byte-for-byte copy that
tests/unit/test_seed_usage_copy.py keeps in step with the seed). Only two kinds of change are made, both listed
in SUBSTITUTIONS and PLACEHOLDERS below: the import line becomes `from shared import ...`, and the seed's
placeholders get the values its own code implies (a dataset prepared with output_dir="data/finetuning" is at
data/finetuning/<dataset_id>; version ids are those of versions the example created). Each block is run one
"# step" at a time so a placeholder can be bound where the seed first needs it; the steps put together are the
block again (asserted).

Like a user's script, the blocks take the deployment from the environment: the stack's emulators, a collection
prefix of the test's own, and the seed's bucket "stt-project-datasets", which only this test uses (the stack's
functions serve another: tests/conftest.py). A bucket holds one deployment's case snapshot and exports, and the
example's builds and restore expect a deployment holding only its team's cases.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset
from google.cloud import storage

from shared import DataManager
from shared.config import Settings
from stack.local_stack import REPO_ROOT, StackInfo

pytestmark = pytest.mark.emulators

USAGE = REPO_ROOT / "tests/fixtures/seed/usage.md"
SEED_BUCKET = "stt-project-datasets"  # the bucket the seed's examples name
_BLOCK = re.compile(r"^(#{2,3} [^\n]+)\n\n```python\n(.*?)```", re.S | re.M)

# (section heading, text in the seed, text run): the import line, and placeholders that are literals in the text.
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    ("### 1. DataManager", "from src.data import DataManager", "from shared import DataManager"),
    ("### 2. MetadataTracker", "from src.data import MetadataTracker", "from shared import MetadataTracker"),
    ("### 3. FinetuningDatasetPipeline", "from src.data import FinetuningDatasetPipeline, DataManager",
     "from shared import FinetuningDatasetPipeline, DataManager"),
    ("### 4. DataVersionControl", "from src.data import DataVersionControl", "from shared import DataVersionControl"),
    # The dataset the example prepared above, where its pipeline (output_dir="data/finetuning") put it.
    ("### 4. DataVersionControl", '"data/finetuning/dataset_20250101"',
     "f\"data/finetuning/{dataset_info['dataset_id']}\""),
    ("### 5. IntegratedDataManagementSystem", "from src.data.integration import IntegratedDataManagementSystem",
     "from shared import IntegratedDataManagementSystem"),
    # The version the example named "initial" (the seed's "v_initial_20250101").
    ("### Rollback", '"v_initial_20250101"', "version_id"),
]

# (section heading, step heading, names bound before that step runs -> expression over the script's names).
PLACEHOLDERS: list[tuple[str, str, dict[str, str]]] = [
    # Two versions the example made: the "initial" one, and a child of it the same pipeline prepares with a
    # stricter min_error_score (a lineage like the seed's "Version Lineage" draws).
    ("### 4. DataVersionControl", "# Compare versions", {
        "version_id1": "version_id",
        "version_id2": "pipeline.prepare_dataset(min_error_score=0.7, max_samples=1000, create_version=True, "
                       "version_name='refined', parent_version=version_id)['version_id']",
    }),
    # The dataset the integrated system just prepared (its local copy) and its id; the script's own logger.
    ("### 2. Quality Gates", "# Only create versions that pass quality checks",
     {"dataset_path": "dataset_info['local_path']"}),
    ("### 4. Monitoring", "# Regular reporting", {"logger": "logging.getLogger('seed_usage')"}),
    ("### 5. Dataset Validation", "# Always validate before training", {"dataset_id": "dataset_info['dataset_id']"}),
]

# The seed's blocks this test runs, in the seed's order. Left out: "1. Regular Syncing" and "3. Error Handling"
# (fragments: an undefined counter, a literal `...`), and the install/auth shell blocks.
RUN = ["### 1. DataManager", "### 2. MetadataTracker", "### 3. FinetuningDatasetPipeline", "### 4. DataVersionControl",
       "### 5. IntegratedDataManagementSystem", "### Rollback", "### Sync Operations", "### 2. Quality Gates",
       "### 4. Monitoring", "### 5. Dataset Validation", "### GCS Connection Issues", "### Quality Check Failures",
       "### Large Dataset Performance"]


def seed_blocks() -> dict[str, str]:
    """The copy's code blocks by the heading they stand under."""
    return {heading: code for heading, code in _BLOCK.findall(USAGE.read_text())}


def as_run(heading: str, code: str) -> str:
    """The block with its substitutions made, every occurrence (a seed edit that drops one fails here)."""
    for section, seed_text, run_text in SUBSTITUTIONS:
        if section == heading:
            assert seed_text in code, (heading, seed_text)
            code = code.replace(seed_text, run_text)
    return code


def steps(code: str) -> list[str]:
    """The block cut before each top-level comment line ("# Initialize", ...): the seed's own steps."""
    cuts = [m.start() for m in re.finditer(r"^# ", code, re.M)] or [0]
    cuts[0] = 0
    parts = [code[a:b] for a, b in zip(cuts, [*cuts[1:], len(code)], strict=True)]
    assert "".join(parts) == code
    return parts


class Script:
    """The user's script: one namespace the blocks run in (exec, as `python script.py` would run them), its
    printed lines kept per block."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"__name__": "seed_usage", "logging": logging}
        self.printed: dict[str, str] = {}

    def run(self, heading: str, code: str) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            for step in steps(as_run(heading, code)):
                for section, step_heading, binds in PLACEHOLDERS:
                    if section == heading and step.startswith(step_heading):
                        for name, expression in binds.items():
                            self.names[name] = eval(expression, self.names)
                exec(compile(step, f"<seed {heading}>", "exec"), self.names)
        self.printed[heading] = out.getvalue()

    def __getitem__(self, name: str) -> Any:
        return self.names[name]


def store_earlier_cases(settings: Settings, namespace: str) -> None:
    """The team's cases from before the example: 60 corrected ones of 12 speakers, most scored, some not (their
    score is derived from the correction: 3 words of 5 wrong, 0.6), with a label of the team's own besides the
    taxonomy's."""
    manager = DataManager(settings=settings)
    for i in range(60):
        heard = f"THE OLDER LUMBER WAS {i}" if i % 5 == 0 else f"THE ORDER NUMBER IS {i}"
        manager.store_failed_case(
            audio_path=f"audio/{namespace}/{i}.wav", original_transcript=heard,
            corrected_transcript=f"The order number is {i}.", error_types=["all_caps", "accent"][: 1 + i % 2],
            error_score=None if i % 5 == 0 else 0.6 + (i % 4) / 10, speaker_id=f"{namespace}-speaker-{i % 12}",
        )


def test_the_seeds_usage_runs_as_written(
    stack: StackInfo, namespace: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("STT_COLLECTION_PREFIX", f"{namespace}_")
    monkeypatch.setenv("STT_BUCKET", SEED_BUCKET)
    settings = Settings.from_env()
    assert settings.bucket == SEED_BUCKET != stack.settings.bucket and settings.collection_prefix == f"{namespace}_"
    client = storage.Client(project=settings.project)
    if client.lookup_bucket(SEED_BUCKET) is None:
        client.create_bucket(SEED_BUCKET)
    store_earlier_cases(settings, namespace)
    blocks = seed_blocks()
    assert set(RUN) <= set(blocks)
    script = Script()
    run: Callable[[str], None] = lambda heading: script.run(heading, blocks[heading])  # noqa: E731

    run("### 1. DataManager")
    case = script["data_manager"].get_failed_case(script["case_id"])
    assert case["audio_path"] == "gs://stt-project-datasets/audio/sample.wav"
    assert case["audio_path_given"] == "audio/sample.wav" and case["metadata"] == {"confidence": 0.85}
    assert "Total cases: 61\nCorrection rate: 100.00%\n" == script.printed["### 1. DataManager"]

    run("### 2. MetadataTracker")
    assert re.fullmatch(r"WER improvement: -?\d+\.\d\d%\n", script.printed["### 2. MetadataTracker"])
    tracker = script["tracker"]
    assert tracker.current_model_version() == "whisper_base_v1"
    assert [p["wer"] for p in tracker.performance_points()] == [0.12]

    run("### 3. FinetuningDatasetPipeline")
    info = script["dataset_info"]
    dataset_id, sizes = info["dataset_id"], info["split_sizes"]
    assert sum(sizes.values()) == 61 and sizes["train"] > 0
    assert script.printed["### 3. FinetuningDatasetPipeline"] == (
        f"Dataset: {dataset_id}\nTrain samples: {sizes['train']}\nValid: True\n")
    local = tmp_path / "data/finetuning" / dataset_id
    assert info["local_path"] == f"data/finetuning/{dataset_id}" and (local / "train.jsonl").is_file()
    hf = Path(script["hf_path"])
    assert (hf / "README.md").is_file() and hf.is_relative_to(Path("data/finetuning"))
    loaded = load_dataset(str(hf), cache_dir=str(tmp_path_factory.mktemp("hf-cache")))
    assert sum(loaded.num_rows.values()) == 61 and "train" in loaded

    run("### 4. DataVersionControl")
    version_id, version_id2 = script["version_id"], script["version_id2"]
    version_control = script["version_control"]
    initial, refined = version_control.get_version(version_id), version_control.get_version(version_id2)
    assert version_id.startswith("v_initial_") and initial.dataset_id == dataset_id
    assert refined.parent_version == version_id and refined.checksum != initial.checksum
    printed = script.printed["### 4. DataVersionControl"].splitlines()
    assert f"{version_id}: {initial.checksum}" in printed  # (the bucket's registry also lists other tests')
    improvement = script["comparison"]["quality_comparison"]["improvement"]
    assert printed[-3:] == [f"Quality improvement: {improvement:.2f}", "Passed: True", "Score: 1.00"]
    assert script["comparison"]["cases"]["removed"] == 24  # the 24 cases at 0.6 (12 derived), below 0.7
    assert script["quality_report"]["dataset_path"] == f"data/finetuning/{dataset_id}"

    run("### 5. IntegratedDataManagementSystem")
    system_info = script["dataset_info"]
    assert system_info["version_id"] and (tmp_path / system_info["local_path"] / "train.jsonl").is_file()
    assert system_info["local_path"].startswith("data/production/finetuning/")
    trend = script["system"].metadata_tracker.get_performance_trend("wer", model_version="whisper_base_v1")
    assert trend["last"] == 0.12
    report_file = tmp_path / "reports/system_report.json"
    saved = json.loads(report_file.read_text())
    assert saved["recommendations"] == script["report"]["recommendations"]
    assert script["report"]["saved_to"] == "reports/system_report.json"

    run("### Rollback")
    restored = tmp_path / "data/restored"
    entry = script["version_control"].get_version(version_id)
    restored_files = {p.relative_to(restored).as_posix(): p for p in restored.rglob("*") if p.is_file()}
    assert set(entry.files) <= set(restored_files)
    for name, recorded in entry.files.items():
        assert hashlib.sha256(restored_files[name].read_bytes()).hexdigest() == recorded["sha256"]
    assert script["version_control"].generate_version_report()["current_version"] == version_id

    run("### Sync Operations")
    system = script["system"]
    exported = system.adapters.bucket.get("learning_data/failed_cases.jsonl").decode()
    assert script["case_id"] in exported  # the bucket holds this deployment's cases, read back without a change
    assert system.get_system_statistics()["data_management"]["total_failed_cases"] == 62

    run("### 2. Quality Gates")
    assert script["quality_report"]["passed"] and script["quality_report"]["dataset_path"] == system_info["local_path"]
    with caplog.at_level(logging.INFO, logger="seed_usage"):
        run("### 4. Monitoring")
    logged = [r.getMessage() for r in caplog.records if r.name == "seed_usage"]
    assert logged and logged == [f"Recommendation: {r}" for r in script["report"]["recommendations"]]
    run("### 5. Dataset Validation")
    assert script["validation"]["is_valid"] and script["dataset_id"] == system_info["dataset_id"]

    with pytest.raises(ValueError, match="source of truth"):
        run("### GCS Connection Issues")
    run("### Quality Check Failures")
    assert script["version_control"].thresholds().min_overall_score == 0.85
    run("### Large Dataset Performance")
    assert sum(script["dataset_info"]["split_sizes"].values()) == 62
