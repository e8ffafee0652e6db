"""protocol.md §2.6, §8.3 attachment rows and §8.4 item 25."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.sim.launcher import SimProcess

from .conftest import Guest


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(["--no-limits", "--bot-latency", "0", "--quick-replies", "0"]) as proc:
        yield proc


def attach(guest: Guest, **fields: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "action": "onAttachment",
        "token": guest.token,
        "tracingId": "att",
        "fileName": "receipt.png",
        "fileType": "image/png",
        "fileSize": 48213,
    }
    frame.update(fields)
    guest.send({k: v for k, v in frame.items() if v is not None})
    return guest.recv()


def test_upload_reference_get_and_delete(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    presigned = attach(guest, attachmentId="11111111-1111-4111-8111-111111111111")
    assert presigned["class"] == "PresignedUrlResponse" and presigned["type"] == "response"
    assert presigned["tracingId"] == "att"
    body = presigned["body"]
    attachment_id = body["attachmentId"]
    assert attachment_id == "11111111-1111-4111-8111-111111111111"
    assert body["url"] == f"https://uploads.invalid/{attachment_id}/receipt.png"
    assert "x-amz-tagging" in body["headers"]
    assert (body["fileName"], body["fileSize"], body["fileType"]) == (
        "receipt.png",
        48213,
        "image/png",
    )
    success = guest.recv(timeout=3)  # about 200 ms later
    assert success["class"] == "UploadSuccessEvent" and success["type"] == "message"
    assert success["body"]["attachmentId"] == attachment_id

    guest.send({"action": "getAttachment", "token": guest.token, "attachmentId": attachment_id})
    fresh = guest.recv()
    assert fresh["class"] == "PresignedUrlResponse" and fresh["body"]["headers"] == {}
    assert fresh["body"]["fileSize"] == 48213 and fresh["body"]["url"] != body["url"]

    content = [{"contentType": "Attachment", "attachment": {"id": attachment_id}}]
    guest.on_message(message={"type": "Text", "content": content})
    echo = guest.recv()
    assert echo["body"]["content"] == content
    assert guest.recv()["body"]["text"] == "You sent an attachment."

    guest.send({"action": "deleteAttachment", "token": guest.token, "attachmentId": attachment_id})
    assert guest.recv()["code"] == 4009  # sent files cannot be deleted


def test_generated_id_and_delete_before_send(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    attachment_id = attach(guest)["body"]["attachmentId"]
    assert len(attachment_id) == 36
    guest.send({"action": "deleteAttachment", "token": guest.token, "attachmentId": attachment_id})
    deleted = guest.recv()
    assert deleted["class"] == "AttachmentDeletedResponse" and deleted["type"] == "message"
    assert deleted["body"]["attachmentId"] == attachment_id
    guest.expect_silence(0.4)  # deleted before the upload finished: no success event


def test_text_with_an_attachment_still_gets_you_said(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    attachment_id = attach(guest)["body"]["attachmentId"]
    assert guest.recv(timeout=3)["class"] == "UploadSuccessEvent"
    content = [{"contentType": "Attachment", "attachment": {"id": attachment_id}}]
    guest.on_message(message={"type": "Text", "text": "my receipt", "content": content})
    guest.recv()
    assert guest.recv()["body"]["text"] == "You said: my receipt"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"fileName": None}, 4020),
        ({"fileName": "x" * 1024 + ".png"}, 4005),
        ({"fileName": "setup.exe"}, 4001),
        ({"fileSize": 0}, 4102),
        ({"fileSize": 10 * 1024 * 1024 + 1}, 4002),
        ({"fileType": 7}, 400),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_refused_uploads(sim: SimProcess, guests, fields, code: int, as_json: bool) -> None:
    guest = guests(sim.url)
    guest.configure()
    if as_json:
        fields = {**fields, "errorsAsJson": True}
    reply = attach(guest, **fields)
    if as_json:
        assert reply["class"] == "GenerateUrlError" and reply["type"] == "message"
        assert reply["code"] == 200 and reply["body"]["errorCode"] == code
        assert reply["body"]["errorMessage"]
    else:
        assert reply["class"] == "string" and reply["code"] == code
        assert reply["tracingId"] == "att"


@pytest.mark.parametrize("action", ["getAttachment", "deleteAttachment"])
def test_unknown_attachment_id(sim: SimProcess, guests, action: str) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send({"action": action, "token": guest.token, "attachmentId": "nope", "tracingId": "g"})
    reply = guest.recv()
    assert reply["code"] == 4009 and reply["tracingId"] == "g"
