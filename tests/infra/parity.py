"""The deployment as Terraform declares it and as shared/topology.py declares it, in one comparable shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.config import ENV_NAMES, Settings
from shared.topology import Topology
from tests.infra.tfmodel import Ctx, Instance, Module, Unknown

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
KNOWN_AFTER_APPLY = "<known after apply>"

_FIELD_OF_ENV = {env: name for name, env in ENV_NAMES.items()}
_DEFAULTS = Settings()


def _get(value: Any, *path: str | int) -> Any:
    """Follow attributes (str) and block/list indexes (int) from a resource instance."""
    ctx: Ctx = value.ctx
    for step in path:
        value = ctx._index(value, step) if isinstance(step, int) else ctx._attr(value, step)
    return value


def _seconds(duration: Any) -> float:
    if not (isinstance(duration, str) and duration.endswith("s")):
        raise ValueError(f"not a duration in seconds: {duration!r}")
    return float(duration[:-1])


def _env(env: dict[str, Any]) -> dict[str, str]:
    """Environment values normalised through the Settings field types (so "1" and "1.0" agree)."""
    out: dict[str, str] = {}
    for key, value in env.items():
        if isinstance(value, Unknown):
            out[key] = KNOWN_AFTER_APPLY
        elif key in _FIELD_OF_ENV:
            kind = type(getattr(_DEFAULTS, _FIELD_OF_ENV[key]))
            out[key] = str(kind(value))
        else:
            out[key] = str(value)
    return out


def _function_id(owner: Instance | None) -> str:
    if owner is None or owner.type != "google_cloudfunctions2_function":
        raise ValueError(f"a push endpoint that is not a function's URL: {owner}")
    return str(owner.get("name"))


def infra_model(infra_dir: Path = INFRA_DIR) -> dict[str, Any]:
    """What the Terraform under `infra_dir` creates, evaluated with the variables' defaults."""
    topics: list[str] = []
    functions: dict[str, dict[str, Any]] = {}
    subscriptions: dict[str, dict[str, Any]] = {}
    sinks: dict[str, str] = {}
    notifications: list[dict[str, Any]] = []
    pushes: list[tuple[str, str]] = []
    for module in Module(infra_dir).walk():
        topics += [inst.get("name") for inst in module.all_instances("google_pubsub_topic")]
        for fn in module.all_instances("google_cloudfunctions2_function"):
            functions[fn.get("name")] = {
                "entry_point": _get(fn, "build_config", 0, "entry_point"),
                "triggers": [],
                "env": _env(_get(fn, "service_config", 0, "environment_variables")),
            }
        for sub in module.all_instances("google_pubsub_subscription"):
            name, topic = sub.get("name"), sub.get("topic")
            if "push_config" not in sub.body:
                sinks[name] = topic
                continue
            function = _function_id(_get(sub, "push_config", 0, "push_endpoint").owner)
            pushes.append((function, topic))
            subscriptions[name] = {
                "topic": topic,
                "function": function,
                "oidc_token": "oidc_token" in _get(sub, "push_config", 0).body,
                "dead_letter_topic": _get(sub, "dead_letter_policy", 0, "dead_letter_topic"),
                "max_delivery_attempts": _get(sub, "dead_letter_policy", 0, "max_delivery_attempts"),
                "ack_deadline_s": sub.get("ack_deadline_seconds"),
                "min_backoff_s": _seconds(_get(sub, "retry_policy", 0, "minimum_backoff")),
                "max_backoff_s": _seconds(_get(sub, "retry_policy", 0, "maximum_backoff")),
                "filter": (sub.get("filter") if "filter" in sub.body else None) or "",
            }
        for note in module.all_instances("google_storage_notification"):
            notifications.append(
                {
                    "bucket": note.get("bucket"),
                    "topic": note.get("topic"),
                    "event_types": sorted(note.get("event_types")),
                    "payload_format": note.get("payload_format"),
                    "prefix": note.get("object_name_prefix") if "object_name_prefix" in note.body else None,
                }
            )
    for function, topic in pushes:
        if function not in functions:
            raise ValueError(f"a subscription pushes to {function}, which Terraform does not declare")
        functions[function]["triggers"].append(topic)
    return {
        "topics": sorted(topics),
        "functions": functions,
        "subscriptions": subscriptions,
        "dead_letter_sinks": sinks,
        "notifications": notifications,
    }


def topology_model(topology: Topology, settings: Settings) -> dict[str, Any]:
    """What the local stack builds for `settings`, in the shape of infra_model."""
    env = settings.to_env()
    return {
        "topics": sorted(set(topology.topics) | set(topology.dead_letter_topics)),
        "functions": {
            spec.name.replace("_", "-"): {
                "entry_point": spec.entry_point,
                "triggers": [spec.topic] if spec.topic else [],
                "env": _env({**env, **dict(getattr(spec, "env", {}))}),
            }
            for spec in topology.functions
        },
        "subscriptions": {
            sub.name: {
                "topic": sub.topic,
                "function": sub.function.replace("_", "-"),
                "oidc_token": True,
                "dead_letter_topic": sub.dead_letter_topic,
                "max_delivery_attempts": sub.max_delivery_attempts,
                "ack_deadline_s": sub.ack_deadline_s,
                "min_backoff_s": float(sub.min_backoff_s),
                "max_backoff_s": float(sub.max_backoff_s),
                "filter": sub.filter,
            }
            for sub in topology.subscriptions
        },
        "dead_letter_sinks": {sink.name: sink.topic for sink in topology.dead_letter_sinks},
        "notifications": [
            {
                "bucket": topology.notification.bucket,
                "topic": topology.notification.topic,
                "event_types": sorted(topology.notification.event_types),
                "payload_format": topology.notification.payload_format,
                "prefix": getattr(topology.notification, "object_name_prefix", None),
            }
        ],
    }


def compare(topology: Any, infra: Any, path: str = "") -> list[str]:
    """Every difference between the two models, one line each; [] when they agree.

    A value Terraform only knows after apply (e.g. GOOGLE_CLOUD_PROJECT = var.project_id) matches anything.
    """
    if infra == KNOWN_AFTER_APPLY:
        return []
    if isinstance(topology, dict) and isinstance(infra, dict):
        diffs = [f"{path}.{k}: only in shared/topology.py" for k in sorted(topology.keys() - infra.keys())]
        diffs += [f"{path}.{k}: only in infra/" for k in sorted(infra.keys() - topology.keys())]
        for key in sorted(topology.keys() & infra.keys()):
            diffs += compare(topology[key], infra[key], f"{path}.{key}")
        return diffs
    if isinstance(topology, list) and isinstance(infra, list):
        if len(topology) == len(infra) and all(isinstance(x, dict) for x in topology + infra):
            return [
                d for i, (t, a) in enumerate(zip(topology, infra, strict=True)) for d in compare(t, a, f"{path}[{i}]")
            ]
        only_topology = [x for x in topology if x not in infra]
        only_infra = [x for x in infra if x not in topology]
        duplicates = sorted({x for x in infra if isinstance(x, str) and infra.count(x) > 1})
        diffs = [f"{path}: {x!r} only in shared/topology.py" for x in only_topology]
        diffs += [f"{path}: {x!r} only in infra/" for x in only_infra]
        diffs += [f"{path}: {x!r} declared more than once in infra/" for x in duplicates]
        if not diffs and len(topology) != len(infra):
            diffs.append(f"{path}: {len(topology)} entries in shared/topology.py, {len(infra)} in infra/")
        return diffs
    if topology != infra or isinstance(topology, bool) != isinstance(infra, bool):
        return [f"{path}: shared/topology.py has {topology!r}, infra/ has {infra!r}"]
    return []
