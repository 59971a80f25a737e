"""The deployment's shape, declared once: the local stack builds it, infra/ reads it (terraform_inputs)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from shared.config import ENV_NAMES, Settings
from shared.domain import bucket_layout as layout

Signature = Literal["cloudevent", "http"]


@dataclass(frozen=True)
class FunctionSpec:
    """A Cloud Function (gen2): its folder under functions/, entry point and trigger."""

    name: str
    signature: Signature
    topic: str | None = None  # the topic whose push subscription triggers it
    # Above the handler's worst time, or Pub/Sub redelivers while it still runs (None: the settings' value).
    ack_deadline_s: int | None = None
    # For a function on the bucket's notifications: the object names it serves. It becomes the subscription's
    # filter in the cloud; the emulator ignores filters, so the function checks the name too.
    object_prefix: str | None = None

    @property
    def entry_point(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        return f"functions/{self.name}/main.py"


@dataclass(frozen=True)
class PushSubscription:
    """A push subscription owned by the project, with retry and dead-letter policy."""

    name: str
    topic: str
    function: str
    dead_letter_topic: str
    ack_deadline_s: int
    min_backoff_s: float
    max_backoff_s: float
    max_delivery_attempts: int
    filter: str = ""  # a Pub/Sub subscription filter; "" delivers every message


@dataclass(frozen=True)
class DeadLetterSink:
    """A pull subscription on a dead-letter topic, so a dead letter is kept until someone reads it."""

    name: str
    topic: str


@dataclass(frozen=True)
class BucketNotification:
    """The bucket's object notifications, published to a topic (GCS JSON_API_V1 format)."""

    bucket: str
    topic: str
    event_types: tuple[str, ...] = ("OBJECT_FINALIZE",)
    payload_format: str = "JSON_API_V1"


@dataclass(frozen=True)
class Topology:
    """Everything the deployment is made of, resolved for one Settings."""

    project: str
    bucket: str
    topics: tuple[str, ...]
    dead_letter_topics: tuple[str, ...]
    functions: tuple[FunctionSpec, ...]
    subscriptions: tuple[PushSubscription, ...]
    dead_letter_sinks: tuple[DeadLetterSink, ...]
    notification: BucketNotification

    def function(self, name: str) -> FunctionSpec:
        """The function called `name`; KeyError names the ones that exist."""
        for spec in self.functions:
            if spec.name == name:
                return spec
        raise KeyError(f"no function {name!r}; known: {[f.name for f in self.functions]}")

    def subscription_for(self, function: str) -> PushSubscription:
        """The push subscription that triggers `function`."""
        for sub in self.subscriptions:
            if sub.function == function:
                return sub
        raise KeyError(f"no push subscription triggers {function!r}")


def function_specs(settings: Settings) -> tuple[FunctionSpec, ...]:
    """The deployed functions and the topics that trigger them."""
    return (
        FunctionSpec("record_failure", "cloudevent", settings.topic_failures),
        FunctionSpec("record_correction", "cloudevent", settings.topic_corrections),
        # A 100k-line import takes about a minute: 600 s is Pub/Sub's longest ack deadline.
        FunctionSpec("ingest_import", "cloudevent", settings.topic_bucket_events, 600, layout.IMPORTS),
        FunctionSpec("build_dataset", "cloudevent", settings.topic_bucket_events, 600, layout.REQUESTS),
        FunctionSpec("record_metrics", "cloudevent", settings.topic_metrics),
        FunctionSpec("aggregate", "http"),  # scheduled (Cloud Scheduler in the cloud), callable on demand
        FunctionSpec("api", "http"),  # private: only its invokers (Terraform var.api_invokers) may call it
    )


def subscription_name(topic: str, function: str) -> str:
    """The push subscription id for `function` on `topic`."""
    return f"{topic}-{function.replace('_', '-')}"


def object_filter(prefix: str | None) -> str:
    """The subscription filter that passes only the notifications of objects under `prefix`."""
    return f'hasPrefix(attributes.objectId, "{prefix}")' if prefix else ""


def push_subscription(
    settings: Settings, topic: str, function: str, ack_deadline_s: int | None = None, object_prefix: str | None = None
) -> PushSubscription:
    """The push subscription of `function` on `topic`, under the settings' delivery policy."""
    return PushSubscription(
        name=subscription_name(topic, function),
        topic=topic,
        function=function,
        dead_letter_topic=settings.dead_letter_topic(topic),
        ack_deadline_s=ack_deadline_s or settings.ack_deadline_s,
        min_backoff_s=settings.min_backoff_s,
        max_backoff_s=settings.max_backoff_s,
        max_delivery_attempts=settings.max_delivery_attempts,
        filter=object_filter(object_prefix),
    )


def dead_letter_sink(dead_letter_topic: str) -> DeadLetterSink:
    """The pull subscription that keeps what reaches `dead_letter_topic`."""
    return DeadLetterSink(f"{dead_letter_topic}-sink", dead_letter_topic)


def build_topology(settings: Settings) -> Topology:
    """Resolve the topology for `settings`."""
    functions = function_specs(settings)
    topics = (
        settings.topic_failures,
        settings.topic_corrections,
        settings.topic_metrics,
        settings.topic_bucket_events,
    )
    subscriptions = tuple(
        push_subscription(settings, fn.topic, fn.name, fn.ack_deadline_s, fn.object_prefix)
        for fn in functions if fn.topic is not None
    )
    dead_letter_topics = tuple(dict.fromkeys(sub.dead_letter_topic for sub in subscriptions))
    return Topology(
        project=settings.project,
        bucket=settings.bucket,
        topics=topics,
        dead_letter_topics=dead_letter_topics,
        functions=functions,
        subscriptions=subscriptions,
        dead_letter_sinks=tuple(dead_letter_sink(t) for t in dead_letter_topics),
        notification=BucketNotification(bucket=settings.bucket, topic=settings.topic_bucket_events),
    )



def terraform_inputs(settings: Settings) -> dict[str, Any]:
    """What infra/ reads from this module: infra/topology.auto.tfvars.json (written by `python -m stack.tfvars`).

    A name that a deployment may change (a topic) is given as the Settings field that holds it, and Terraform
    resolves it with its variable of that name: `-var topic_failures=...` still renames the topic everywhere, and
    the file is the same for every deployment. The naming rules (subscription, dead-letter topic, sink) and the
    delivery policy are Settings too, applied by the HCL; tests/infra checks that it applies them as this module does.
    """
    topology = build_topology(settings)
    functions: dict[str, Any] = {}
    for fn in topology.functions:
        push = None
        if fn.topic is not None:
            push = {
                "topic": _setting_holding(settings, fn.topic),
                "ack_deadline_s": fn.ack_deadline_s,  # None: the settings' ack_deadline_s
                "filter": topology.subscription_for(fn.name).filter,
            }
        functions[fn.name] = {
            "entry_point": fn.entry_point,
            "signature": fn.signature,
            "source": fn.source,
            "push": push,
        }
    notification = topology.notification
    return {
        "functions": functions,
        "topics": [_setting_holding(settings, topic) for topic in topology.topics],
        "settings_env": dict(ENV_NAMES),
        "bucket_notification": {
            "topic": _setting_holding(settings, notification.topic),
            "event_types": list(notification.event_types),
            "payload_format": notification.payload_format,
        },
    }


def _setting_holding(settings: Settings, name: str) -> str:
    """The one Settings field whose value is `name` (a topic), so that Terraform resolves it with its variable."""
    holders = [f.name for f in fields(settings) if getattr(settings, f.name) == name]
    if len(holders) != 1:
        raise ValueError(f"{name!r} must be the value of exactly one Settings field, not of {holders}")
    return holders[0]
