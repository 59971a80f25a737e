"""The topology the stack creates on the emulators is the declared one."""

import pytest
from google.cloud import pubsub_v1, storage

from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators


def test_push_subscriptions_carry_the_declared_policy(stack: StackInfo) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    for declared in stack.topology.subscriptions:
        actual = subscriber.get_subscription(subscription=subscriber.subscription_path(stack.project, declared.name))
        assert actual.topic.endswith(f"/topics/{declared.topic}")
        assert actual.push_config.push_endpoint == (
            f"{stack.function_urls[declared.function]}/projects/{stack.project}/topics/{declared.topic}"
        )
        assert actual.ack_deadline_seconds == declared.ack_deadline_s
        assert actual.dead_letter_policy.dead_letter_topic.endswith(f"/topics/{declared.dead_letter_topic}")
        assert actual.dead_letter_policy.max_delivery_attempts == declared.max_delivery_attempts
        assert actual.retry_policy.minimum_backoff.total_seconds() == pytest.approx(declared.min_backoff_s)
        assert actual.retry_policy.maximum_backoff.total_seconds() == pytest.approx(declared.max_backoff_s)


def test_every_topic_and_sink_exists_and_the_bucket_too(stack: StackInfo) -> None:
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topics = {t.name.rsplit("/", 1)[1] for t in publisher.list_topics(request={"project": f"projects/{stack.project}"})}
    assert set(stack.topology.topics) | set(stack.topology.dead_letter_topics) <= topics
    for sink in stack.topology.dead_letter_sinks:
        got = subscriber.get_subscription(subscription=subscriber.subscription_path(stack.project, sink.name))
        assert got.topic.endswith(f"/topics/{sink.topic}")
    assert storage.Client(project=stack.project).lookup_bucket(stack.settings.bucket) is not None
