"""A function wired to a topic of its own on a running stack: for tests and benchmarks that must not share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.cloud import pubsub_v1

from shared.config import Settings
from shared.topology import DeadLetterSink, PushSubscription, dead_letter_sink, push_subscription
from stack import components, provision
from stack.local_stack import StackInfo, function_env
from stack.processes import Launched, free_port, launch, stop_group, wait_until_answers


@dataclass
class WiredFunction:
    """A running function, its topic, push subscription and dead-letter sink."""

    name: str
    url: str
    project: str
    topic: str
    subscription: PushSubscription
    sink: DeadLetterSink
    process: Launched

    def topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.topic}"

    def sink_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.sink.name}"

    def stop(self) -> None:
        """Stop the process and delete the subscriptions and topics it was given."""
        stop_group(self.process.pid)
        subscriber, publisher = pubsub_v1.SubscriberClient(), pubsub_v1.PublisherClient()
        for sub in (self.subscription.name, self.sink.name):
            subscriber.delete_subscription(subscription=f"projects/{self.project}/subscriptions/{sub}")
        for topic in (self.topic, self.subscription.dead_letter_topic):
            publisher.delete_topic(topic=f"projects/{self.project}/topics/{topic}")


def start_wired_function(
    info: StackInfo,
    source: Path,
    target: str,
    settings: Settings,
    topic: str,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> WiredFunction:
    """Serve `target` from `source` with `settings`, and push `topic` to it under the settings' policy."""
    port = free_port()
    env = {**function_env(info.env, settings), **(extra_env or {})}
    part = components.function_part(f"{topic}-{target}", source, "cloudevent", port, env, target=target)
    process = launch(part.name, part.argv, part.env, log_dir)
    try:
        wait_until_answers(process, part.ready_url, part.timeout_s, part.fix)
        sub = push_subscription(settings, topic, target)
        sink = dead_letter_sink(sub.dead_letter_topic)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        for name in (topic, sub.dead_letter_topic):
            publisher.create_topic(name=publisher.topic_path(settings.project, name))
        provision.create_dead_letter_sink(settings.project, sink, subscriber)
        url = f"http://127.0.0.1:{port}"
        provision.create_push_subscription(settings.project, sub, url, subscriber)
    except BaseException:
        stop_group(process.pid)
        raise
    return WiredFunction(target, url, settings.project, topic, sub, sink, process)
