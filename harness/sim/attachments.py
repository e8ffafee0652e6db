"""Attachment actions (protocol.md §2.6, §8.3 rows, §8.4 item 25).

Nothing can be PUT to the presigned URL, so the upload "succeeds" 200 ms after the request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson

from harness.protocol import codec, limits
from harness.protocol import frames as f
from harness.sim.sessions import Attachment, Session, Socket

if TYPE_CHECKING:
    from harness.sim.handlers import Handlers

UPLOAD_DELAY_S = 0.2
UPLOAD_HOST = "https://uploads.invalid"
NOT_FOUND = "Attachment not found."


class Attachments:
    """``onAttachment``, ``getAttachment`` and ``deleteAttachment`` for one process."""

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers

    @staticmethod
    def errors_as_json(data: str) -> bool:
        """Whether a refused raw ``onAttachment`` asked for ``GenerateUrlError`` frames."""
        obj = orjson.loads(data)
        return isinstance(obj, dict) and obj.get("errorsAsJson") is True

    def refuse(
        self, sock: Socket, attachment_id: str | None, code: int, message: str, tid: str | None
    ) -> None:
        """An upload refusal as ``GenerateUrlError`` (``errorsAsJson:true``, §8.3)."""
        self.h.stats.errors_by_code[str(code)] += 1
        frame = f.GenerateUrlError(
            tracing_id=tid, attachment_id=attachment_id, error_code=code, error_message=message
        )
        sock.write(codec.encode(frame))

    def _validate(self, action: f.OnAttachment) -> tuple[int, str] | None:
        name, size = action.file_name, action.file_size
        if not name:
            return 4020, "Missing parameter: fileName"
        if len(name) >= limits.ATTACHMENT_NAME_MAX_CHARS:
            return 4005, "File name is too long."
        if name.lower().endswith(limits.BLOCKED_EXTENSIONS):
            return 4001, "File type is not supported."
        if size == 0:
            return 4102, "File size is zero."
        if size < 0 or size > limits.ATTACHMENT_MAX_BYTES:
            return 4002, "File is too large."
        return None

    def on_attachment(self, sock: Socket, action: f.OnAttachment, now: float) -> None:
        h, tid = self.h, action.tracing_id
        session = h.session_for(sock, action.token, tid, now)
        if session is None:
            return
        if not h.config.feature_on("attachments"):
            h.error(sock, 4000, "File upload is not enabled.", tid)
            return
        problem = self._validate(action)
        if problem is not None:
            if action.errors_as_json:
                self.refuse(sock, action.attachment_id, problem[0], problem[1], tid)
            else:
                h.error(sock, problem[0], problem[1], tid)
            return
        attachment_id = action.attachment_id or h.clock.uuid()
        attachment = Attachment(attachment_id, action.file_name, action.file_type, action.file_size)
        session.attachments[attachment_id] = attachment
        frame = f.PresignedUrlResponse(
            tracing_id=tid,
            attachment_id=attachment_id,
            headers={"x-amz-tagging": f"deploymentId={session.deployment_id}"},
            url=f"{UPLOAD_HOST}/{attachment_id}/{action.file_name}",
            file_name=action.file_name,
            file_size=action.file_size,
            file_type=action.file_type,
        )
        sock.write(codec.encode(frame))
        loop = asyncio.get_running_loop()
        loop.call_later(UPLOAD_DELAY_S, self._uploaded, session, attachment)

    def _uploaded(self, session: Session, attachment: Attachment) -> None:
        """Mark the file uploaded and push ``UploadSuccessEvent`` to the session's sockets."""
        if session.attachments.get(attachment.attachment_id) is not attachment:
            return  # deleted, or the session was reset meanwhile
        attachment.uploaded = True
        frame = f.UploadSuccessEvent(
            attachment_id=attachment.attachment_id,
            download_url=f"{UPLOAD_HOST}/{attachment.attachment_id}/{attachment.file_name}",
            timestamp=self.h.clock.channel_time(),
        )
        session.push(codec.encode(frame))

    def get_attachment(self, sock: Socket, action: f.GetAttachment, now: float) -> None:
        h, tid = self.h, action.tracing_id
        session = h.session_for(sock, action.token, tid, now)
        if session is None:
            return
        attachment = session.attachments.get(action.attachment_id)
        if attachment is None:
            h.error(sock, 4009, NOT_FOUND, tid)
            return
        frame = f.PresignedUrlResponse(
            tracing_id=tid,
            attachment_id=attachment.attachment_id,
            headers={},
            url=f"{UPLOAD_HOST}/{attachment.attachment_id}/{attachment.file_name}"
            f"?download={h.clock.hex_id()}",
            file_name=attachment.file_name,
            file_size=attachment.file_size,
            file_type=attachment.file_type,
        )
        sock.write(codec.encode(frame))

    def delete_attachment(self, sock: Socket, action: f.DeleteAttachment, now: float) -> None:
        h, tid = self.h, action.tracing_id
        session = h.session_for(sock, action.token, tid, now)
        if session is None:
            return
        attachment = session.attachments.get(action.attachment_id)
        if attachment is None or attachment.sent:  # only files not yet sent (§2.6)
            h.error(sock, 4009, NOT_FOUND, tid)
            return
        del session.attachments[action.attachment_id]
        frame = f.AttachmentDeletedResponse(tracing_id=tid, attachment_id=action.attachment_id)
        sock.write(codec.encode(frame))

    @staticmethod
    def all_uploaded(session: Session, refs: list[str]) -> bool:
        """Every referenced attachment was uploaded in this session (§8.3: else 4010)."""
        for ref in refs:
            attachment = session.attachments.get(ref)
            if attachment is None or not attachment.uploaded:
                return False
        return True

    @staticmethod
    def mark_sent(session: Session, refs: list[str]) -> None:
        for ref in refs:
            attachment = session.attachments.get(ref)
            if attachment is not None:
                attachment.sent = True
