"""Notifications go through a real SMTP server (aiosmtpd on loopback) and a real webhook receiver."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from cloudmgr.organisation.models import User
from cloudmgr.runtime import set_runtime
from cloudmgr.servicerequests import services as requests_service
from tests.journey_fixtures import Journey


class _Sink:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    import socket

    with socket.socket() as probe:  # aiosmtpd needs a concrete port to check it started
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], int]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), Handler) as server:  # leaving it closes the listening socket
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield received, server.server_address[1]
        finally:
            server.shutdown()
            thread.join()


def _decoded_subject(message: Message) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message["Subject"])))


def test_each_step_is_mailed_and_posted(
    journey: Journey, smtp_sink: tuple[_Sink, int], webhook: tuple[list[dict[str, Any]], int]
) -> None:
    sink, smtp_port = smtp_sink
    posted, web_port = webhook
    rt = journey.rt
    rt.settings = rt.settings.with_overrides(
        smtp_host="127.0.0.1", smtp_port=smtp_port, webhook_url=f"http://127.0.0.1:{web_port}/hook"
    )
    set_runtime(rt)
    with rt.db.unit_of_work() as uow:
        for user in uow.session.scalars(select(User)):
            user.email = f"{user.username}@gov.example"
    form = journey.form(1)
    with rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, journey.staff, form, submit=True, settings=rt.settings
        ).id
    journey.drain()
    with rt.db.unit_of_work() as uow:
        requests_service.approve_request(uow.session, journey.head, request_id)
    journey.drain()
    with rt.db.unit_of_work() as uow:
        requests_service.approve_request(uow.session, journey.operator, request_id)
    journey.drain()
    subjects = [_decoded_subject(m) for m in sink.messages]
    assert subjects[0] == f"云主机申请 #{request_id} 已提交 / VM request #{request_id} submitted"
    assert "lina@gov.example" in sink.messages[0]["To"]  # the head is told it waits for them
    assert any("等待您审批" in s for s in subjects)
    assert "operator@gov.example" in next(m for m in sink.messages if "等待您审批" in _decoded_subject(m))["To"]
    assert any("已开通" in s for s in subjects)  # provisioned
    assert [p["event"] for p in posted] == ["submitted", "approval_needed", "approved", "provisioned"]
    assert all(p["request_id"] == request_id for p in posted)


def test_an_unreachable_smtp_server_is_retried_not_lost(journey: Journey) -> None:
    from cloudmgr.workqueue.models import WorkItem

    rt = journey.rt
    rt.settings = rt.settings.with_overrides(smtp_host="127.0.0.1", smtp_port=9)  # nothing listens there
    set_runtime(rt)
    with rt.db.unit_of_work() as uow:
        for user in uow.session.scalars(select(User)):
            user.email = f"{user.username}@gov.example"
    form = journey.form(1)
    with rt.db.unit_of_work() as uow:
        requests_service.create_request(uow.session, journey.staff, form, submit=True, settings=rt.settings)
    journey.drain()
    with rt.db.unit_of_work() as uow:
        item = uow.session.scalars(select(WorkItem).where(WorkItem.kind == "notify")).one()
        assert item.state == "queued" and item.attempts == 1 and "not delivered" in (item.last_error or "")
