"""Decoding the CloudEvent functions-framework makes of a Pub/Sub push body."""

import base64

import pytest
from cloudevents.http import CloudEvent

from shared.errors import MalformedPush
from shared.push import decode_push

ATTRS = {
    "id": "42",
    "source": "//pubsub.googleapis.com/projects/demo/topics/transcription-failures",
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
}


def test_decodes_data_attributes_and_topic() -> None:
    data = {"message": {"data": base64.b64encode(b'{"a": 1}').decode(), "attributes": {"k": "v"}, "messageId": "42"}}
    message = decode_push(CloudEvent(ATTRS, data))
    assert message.data == b'{"a": 1}'
    assert message.attributes == {"k": "v"}
    assert message.message_id == "42"
    assert message.topic == "transcription-failures"


def test_missing_message_is_malformed() -> None:
    with pytest.raises(MalformedPush, match="no Pub/Sub 'message'"):
        decode_push(CloudEvent(ATTRS, {"nothing": 1}))


def test_bad_base64_is_malformed() -> None:
    with pytest.raises(MalformedPush, match="not base64"):
        decode_push(CloudEvent(ATTRS, {"message": {"data": "***"}}))


def test_message_without_data_is_empty_bytes() -> None:
    assert decode_push(CloudEvent(ATTRS, {"message": {"messageId": "7"}})).data == b""
