"""Replaying a dead letter: what it is republished with, and when it is refused instead (nothing retried forever).

A dead letter goes back to the topic it came from with the attributes it was published with (the dead-letter
bookkeeping `CloudPubSubDeadLetterSource*` dropped), `sttdata_replay_count` one more than it carried, and
`sttdata_replay_of`: the message id of the first dead letter of that message, which handlers take as the
message's id (`handler_message_id`). So replays of one message, even one replayed twice (an ack lost after the
republish), are one message to the idempotent handlers, as a redelivery is. A dead letter that already carries
`max_replays` replays (or a count that is not one) is refused with the reason: kept in quarantine, not republished.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

REPLAY_COUNT = "sttdata_replay_count"
REPLAY_OF = "sttdata_replay_of"
DEAD_LETTER_ATTRIBUTES = "CloudPubSubDeadLetterSource"  # prefix of what Pub/Sub adds when it dead-letters
DEFAULT_MAX_REPLAYS = 3
MAX_REPLAYS_LIMIT = 100


@dataclass(frozen=True)
class DeadLetter:
    """One message pulled from a dead-letter subscription."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)


def replay_count(attributes: Mapping[str, str]) -> int | None:
    """How many times the message was replayed already (0: never), None when the attribute is not a count."""
    raw = attributes.get(REPLAY_COUNT)
    if raw is None:
        return 0
    return int(raw) if raw.isascii() and raw.isdigit() else None


def plan_replay(letter: DeadLetter, max_replays: int) -> tuple[dict[str, str] | None, str | None]:
    """(the attributes to republish `letter` with, None) or (None, why it is not replayed)."""
    count = replay_count(letter.attributes)
    if count is None:
        return None, f"attribute {REPLAY_COUNT} is {letter.attributes.get(REPLAY_COUNT)!r}, not a replay count"
    if count >= max_replays:
        return None, (f"dead-lettered again after {count} replays (at most {max_replays}): fix what makes it fail "
                      "and publish it anew")
    attributes = {k: v for k, v in letter.attributes.items() if not k.startswith(DEAD_LETTER_ATTRIBUTES)}
    attributes[REPLAY_COUNT] = str(count + 1)
    attributes.setdefault(REPLAY_OF, letter.message_id)
    return attributes, None


def handler_message_id(message_id: str, attributes: Mapping[str, str]) -> str:
    """The id a handler keys its effects by: a replayed message's first dead letter's id, else its own."""
    replay_of = attributes.get(REPLAY_OF)
    return replay_of if replay_of and REPLAY_COUNT in attributes else message_id


PREVIEW_CHARS = 200


def describe_letter(letter: DeadLetter) -> dict[str, object]:
    """What a person needs to judge a dead letter: its id, size, a preview of its payload, how often it was
    delivered and replayed, and the subscription that gave up on it."""
    text = letter.data[: PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
    return {
        "message_id": letter.message_id,
        "bytes": len(letter.data),
        "preview": text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else ""),
        "replay_count": replay_count(letter.attributes),
        "delivery_attempts": letter.attributes.get(f"{DEAD_LETTER_ATTRIBUTES}DeliveryCount"),
        "from_subscription": letter.attributes.get(f"{DEAD_LETTER_ATTRIBUTES}Subscription"),
        "attributes": {k: v for k, v in letter.attributes.items() if not k.startswith(DEAD_LETTER_ATTRIBUTES)},
    }
