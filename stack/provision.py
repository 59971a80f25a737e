"""Creates the topology on the emulators, as Terraform does in the cloud. Safe to run twice."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from google.api_core.exceptions import AlreadyExists, Conflict
from google.cloud import pubsub_v1, storage
from google.protobuf import duration_pb2

from shared.topology import DeadLetterSink, PushSubscription, Topology


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def _ignore_existing(create: Callable[[], object]) -> None:
    try:
        create()
    except (AlreadyExists, Conflict):
        pass


def create_topics(topology: Topology, publisher: pubsub_v1.PublisherClient) -> None:
    """Every topic and dead-letter topic."""
    for topic in (*topology.topics, *topology.dead_letter_topics):
        _ignore_existing(partial(publisher.create_topic, name=publisher.topic_path(topology.project, topic)))


def push_subscription_request(project: str, sub: PushSubscription, endpoint: str) -> dict[str, object]:
    """The create_subscription request of a push subscription with retry and dead-letter policy."""
    return {
        "name": f"projects/{project}/subscriptions/{sub.name}",
        "topic": f"projects/{project}/topics/{sub.topic}",
        "push_config": {"push_endpoint": endpoint},
        "filter": sub.filter,
        "ack_deadline_seconds": sub.ack_deadline_s,
        "retry_policy": {
            "minimum_backoff": _duration(sub.min_backoff_s),
            "maximum_backoff": _duration(sub.max_backoff_s),
        },
        "dead_letter_policy": {
            "dead_letter_topic": f"projects/{project}/topics/{sub.dead_letter_topic}",
            "max_delivery_attempts": sub.max_delivery_attempts,
        },
    }


def push_endpoint(function_url: str, project: str, topic: str) -> str:
    """The URL Pub/Sub pushes to; the topic path makes functions-framework fill the CloudEvent source."""
    return f"{function_url.rstrip('/')}/projects/{project}/topics/{topic}"


def create_push_subscription(
    project: str, sub: PushSubscription, function_url: str, subscriber: pubsub_v1.SubscriberClient
) -> None:
    """One push subscription to a function's URL."""
    endpoint = push_endpoint(function_url, project, sub.topic)
    request = push_subscription_request(project, sub, endpoint)
    _ignore_existing(lambda: subscriber.create_subscription(request=request))


def create_dead_letter_sink(project: str, sink: DeadLetterSink, subscriber: pubsub_v1.SubscriberClient) -> None:
    """A pull subscription on a dead-letter topic: without one, dead letters would be dropped."""
    request = {
        "name": f"projects/{project}/subscriptions/{sink.name}",
        "topic": f"projects/{project}/topics/{sink.topic}",
        "ack_deadline_seconds": 60,
    }
    _ignore_existing(lambda: subscriber.create_subscription(request=request))


def create_bucket(topology: Topology, client: storage.Client) -> None:
    """The datasets bucket."""
    _ignore_existing(lambda: client.create_bucket(topology.bucket))
