"""A function process on the stack's `bucket-events` topic that a test can SIGKILL and start again on the same
URL, so Pub/Sub redelivers the message the killed process was serving to its replacement."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from google.cloud import pubsub_v1

from shared.config import Settings
from shared.topology import DeadLetterSink, PushSubscription
from stack import components, provision
from stack.local_stack import StackInfo, function_env
from stack.processes import Launched, free_port, launch, stop_group, wait_until_answers


@dataclass
class KillableFunction:
    """`target` from `source`, pushed the stack's bucket notifications by a subscription of its own."""

    info: StackInfo
    source: Path
    target: str
    settings: Settings
    name: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: Launched | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve on this function's port (the same one after a kill) and wait until it answers."""
        env = {**function_env(self.info.env, self.settings), **self.extra_env}
        self.starts += 1
        part = components.function_part(f"{self.name}-{self.starts}", self.source, "cloudevent", self.port, env,
                                        target=self.target)
        self.process = launch(part.name, part.argv, part.env, self.log_dir)
        wait_until_answers(self.process, part.ready_url, part.timeout_s, part.fix)

    def kill(self) -> None:
        """SIGKILL the whole process group (functions-framework and the import's forked parser): no cleanup runs."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        stop_group(self.process.pid, grace_s=0.5)  # reaps it

    def subscribe(self) -> None:
        """A push subscription of its own on the stack's bucket-events topic, retried with a backoff longer than
        a restart takes, so the redelivery after a kill finds the replacement serving."""
        project, topic = self.info.project, self.info.settings.topic_bucket_events
        self.subscription = PushSubscription(
            name=f"{self.name}-push", topic=topic, function=self.target, dead_letter_topic=f"{self.name}-dead",
            ack_deadline_s=120, min_backoff_s=3.0, max_backoff_s=6.0, max_delivery_attempts=20,
        )
        self.sink = DeadLetterSink(f"{self.name}-dead-sink", self.subscription.dead_letter_topic)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        publisher.create_topic(name=publisher.topic_path(project, self.subscription.dead_letter_topic))
        provision.create_dead_letter_sink(project, self.sink, subscriber)
        provision.create_push_subscription(project, self.subscription, self.url, subscriber)

    def stop(self) -> None:
        """Stop the process and delete what `subscribe` created."""
        if self.process is not None:
            stop_group(self.process.pid, grace_s=1.0)
        subscriber, publisher = pubsub_v1.SubscriberClient(), pubsub_v1.PublisherClient()
        project = self.info.project
        for sub in (self.subscription.name, self.sink.name):
            subscriber.delete_subscription(subscription=f"projects/{project}/subscriptions/{sub}")
        publisher.delete_topic(topic=f"projects/{project}/topics/{self.subscription.dead_letter_topic}")
