"""Use case: replay the dead letters, after their cause is fixed (the api's `replay_dead_letters`).

Each dead-letter subscription (`<topic>-dead-letter-sink`, shared/topology.py) is pulled; every dead letter is
republished to the topic it came from, with its replay count one higher and its first dead letter's id as the
id the handlers key their effects by (shared/domain/dead_letters.py), then acknowledged. One that was replayed
`max_replays` times already is not republished: it is quarantined with the reason (`replay_dead_letters-<id>`,
listed by the quarantine reads) and acknowledged, so nothing goes round for ever. A letter is acknowledged only
after its republish or its quarantine succeeded: a run that dies leaves it to the next run (a republish whose ack
was lost is replayed again, which the handlers see as a redelivery).
"""

from __future__ import annotations

from typing import Any

from shared.domain.dead_letters import DEFAULT_MAX_REPLAYS, MAX_REPLAYS_LIMIT, plan_replay
from shared.errors import BadInput
from shared.ports import DeadLetterQueue, Quarantine
from shared.topology import Topology

SOURCE = "replay_dead_letters"
PULL_BATCH = 100
MAX_MESSAGES = 10_000
PUBLISH_TIMEOUT_S = 60.0


def replay_dead_letters(
    queue: DeadLetterQueue, quarantine: Quarantine, topology: Topology, topic: str | None = None,
    max_messages: int = 1000, max_replays: int = DEFAULT_MAX_REPLAYS,
) -> dict[str, Any]:
    """Replay up to `max_messages` dead letters of every topic's (or `topic`'s) dead-letter subscription; per
    topic, how many were replayed and how many quarantined as replayed too often."""
    _check_count("max_messages", max_messages, 1, MAX_MESSAGES)
    _check_count("max_replays", max_replays, 0, MAX_REPLAYS_LIMIT)
    origins = {sub.dead_letter_topic: sub.topic for sub in topology.subscriptions}
    sinks = [sink for sink in topology.dead_letter_sinks if topic is None or topic in (sink.topic, origins[sink.topic])]
    if not sinks:
        raise BadInput(f"topic {topic!r} has no dead letters; known topics: {sorted(set(origins.values()))}")
    result: dict[str, Any] = {}
    left = max_messages
    for sink in sinks:
        origin = origins[sink.topic]
        counts = result.setdefault(origin, {"subscription": sink.name, "replayed": 0, "quarantined": 0})
        while left > 0:
            letters = queue.pull(sink.name, min(PULL_BATCH, left))
            if not letters:
                break
            for letter in letters:
                attributes, reason = plan_replay(letter, max_replays)
                if attributes is not None:
                    queue.republish(origin, letter.data, attributes, PUBLISH_TIMEOUT_S)
                    counts["replayed"] += 1
                else:
                    quarantine.quarantine(f"{SOURCE}-{letter.message_id}", letter.data, str(reason), SOURCE,
                                          message_id=letter.message_id, topic=origin,
                                          attributes=dict(letter.attributes))
                    counts["quarantined"] += 1
                queue.ack(sink.name, [letter.ack_id])
            left -= len(letters)
    return {"topics": result, "max_replays": max_replays,
            "replayed": sum(c["replayed"] for c in result.values()),
            "quarantined": sum(c["quarantined"] for c in result.values())}


def _check_count(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"{name} must be an integer from {low} to {high}, got {value!r}")
