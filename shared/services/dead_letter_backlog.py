"""Use case: the dead-letter backlog, looked at without taking it (the api's `list_dead_letters`, the dashboard).

Pub/Sub has no "peek": each dead-letter subscription is pulled until it answers nothing (or `max_messages` were
seen), then everything pulled is released (a zero ack deadline), so the letters stay for `replay_dead_letters`.
A replay that runs meanwhile misses the letters leased here only until the release, a moment later. The
subscriptions are read side by side: a pull of an empty one waits PULL_TIMEOUT_S (the adapter's) before it
answers nothing, and a deployment has a handful of them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.domain.dead_letters import DeadLetter, describe_letter
from shared.errors import BadInput
from shared.ports import DeadLetterQueue
from shared.topology import DeadLetterSink, Topology

PULL_BATCH = 100
MAX_LISTED = 1000
DEFAULT_LISTED = 100


def list_dead_letters(
    queue: DeadLetterQueue, topology: Topology, topic: str | None = None, max_messages: int = DEFAULT_LISTED,
    with_letters: bool = True,
) -> dict[str, Any]:
    """Per topic (every topic's, or `topic`'s, named by itself or by its dead-letter topic): how many dead letters
    wait (`count`, at most `max_messages`; `complete` is False when there may be more) and, `with_letters`, each
    one described; `total` over all of them."""
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not 1 <= max_messages <= MAX_LISTED:
        raise BadInput(f"max_messages must be an integer from 1 to {MAX_LISTED}, got {max_messages!r}")
    origins = {sub.dead_letter_topic: sub.topic for sub in topology.subscriptions}
    sinks = [sink for sink in topology.dead_letter_sinks if topic is None or topic in (sink.topic, origins[sink.topic])]
    if not sinks:
        raise BadInput(f"topic {topic!r} has no dead letters; known topics: {sorted(set(origins.values()))}")
    with ThreadPoolExecutor(max_workers=len(sinks), thread_name_prefix="dead-letters") as pool:
        seen = list(pool.map(lambda sink: _look(queue, sink, max_messages), sinks))
    topics: dict[str, Any] = {}
    for sink, (letters, complete) in zip(sinks, seen, strict=True):
        topics[origins[sink.topic]] = {
            "subscription": sink.name, "count": len(letters), "complete": complete,
            **({"letters": [describe_letter(letter) for letter in letters]} if with_letters else {}),
        }
    return {"topics": topics, "total": sum(t["count"] for t in topics.values()),
            "complete": all(t["complete"] for t in topics.values()), "max_messages": max_messages}


def _look(queue: DeadLetterQueue, sink: DeadLetterSink, max_messages: int) -> tuple[list[DeadLetter], bool]:
    """Up to `max_messages` letters of one subscription, released again; whether that was all of them."""
    letters: dict[str, DeadLetter] = {}
    ack_ids: list[str] = []
    try:
        while len(letters) < max_messages:
            batch = queue.pull(sink.name, min(PULL_BATCH, max_messages - len(letters)))
            ack_ids.extend(letter.ack_id for letter in batch)
            fresh = [letter for letter in batch if letter.message_id not in letters]
            if not fresh:  # nothing left, or only letters seen already (a lease that ran out): all of them
                return list(letters.values()), True
            letters.update((letter.message_id, letter) for letter in fresh)
        return list(letters.values()), False
    finally:
        queue.release(sink.name, ack_ids)
