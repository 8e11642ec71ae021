"""The streams API over HTTP: bad input gets a clear 4xx and changes nothing; tenants are
kept apart; nack, seek and the dead-letter stream; push consumption by server-sent events."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.api.conftest import Api
from tests.integration.helpers import V5, Client

S = "/tenants/default/streams"


def publish(api: Api, make: Callable[..., Client], *topics: str) -> None:
    device = make(api.handle, "dev", version=V5)
    device.connect()
    for n, topic in enumerate(topics):
        device.publish(topic, b"%d" % n, qos=1)
    device.close()


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


def test_bad_input_is_refused_and_changes_nothing(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    assert op.put(f"{S}/t", json={"topic_filters": ["t/#"], "ack_wait": 5}).status_code == 200
    publish(api, client_factory, "t/1", "t/2")
    g = f"{S}/t/groups/g"
    assert "no stream 'nope'" in error(op.post(f"{S}/nope/groups/g/fetch", json={}), 404)
    assert "max_messages" in error(op.post(g + "/fetch", json={"max_messages": 1001}), 400)
    assert "max_messages" in error(op.post(g + "/fetch", json={"max_messages": 0}), 400)
    assert "wait" in error(op.post(g + "/fetch", json={"wait": 600}), 400)
    assert "group name" in error(op.post(f"{S}/t/groups/b%20d/fetch", json={}), 400)
    assert "beyond the end" in error(op.post(g + "/seek", json={"seq": 99}), 400)
    assert "sequence number or a time" in error(op.post(g + "/seek", json={}), 400)
    assert "start at 1" in error(op.post(g + "/seek", json={"seq": 0}), 400)
    error(op.post(g + "/seek", json={"seq": "x"}), 422)
    assert "no consumer group" in error(op.post(g + "/ack", json={"seqs": [1]}), 404)
    error(op.post(g + "/ack", json={"seqs": []}), 422)
    for bad in (
        {"topic_filters": ["a/#/b"]},
        {"topic_filters": ["$share/g/a"]},
        {"max_deliver": 0},
        {"max_age": -1},
        {"ack_wait": 0},
    ):
        error(op.put(f"{S}/t", json=bad), 400)
    error(op.put(f"{S}/x.dlq", json={}), 400)
    error(op.put(f"{S}/bad%20name", json={}), 400)
    error(op.delete(f"{S}/t.dlq"), 400)
    # Nothing of that changed the stream or made a group.
    stream = op.get(f"{S}/t").json()
    assert stream["topic_filters"] == ["t/#"] and stream["ack_wait"] == 5
    assert stream["groups"] == [] and stream["last_seq"] == 2
    assert [s["name"] for s in op.get(S).json()] == ["t", "t.dlq"]
    batch = op.post(g + "/fetch", json={"max_messages": 10}).json()["messages"]
    assert [m["seq"] for m in batch] == [1, 2]


def test_an_application_key_sees_its_own_tenant_only(api: Api) -> None:
    key = api.app_key("acme")
    with api.client(key) as app:
        assert app.put("/tenants/acme/streams/s", json={"topic_filters": ["#"]}).status_code == 200
        error(app.get("/tenants/default/streams"), 403)
        error(app.post("/tenants/default/streams/s/groups/g/fetch", json={}), 403)
    with api.client("") as anonymous:
        error(anonymous.get("/tenants/acme/streams"), 401)


def test_nack_seek_and_the_dead_letter_stream(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    op.put(f"{S}/t", json={"topic_filters": ["t/#"], "max_deliver": 2})
    publish(api, client_factory, "t/a", "t/b")
    g = f"{S}/t/groups/g"
    first = op.post(g + "/fetch", json={"max_messages": 1}).json()["messages"]
    assert [m["seq"] for m in first] == [1]
    assert op.post(g + "/nack", json={"seqs": [1]}).json() == {"nacked": 1}
    again = op.post(g + "/fetch", json={"max_messages": 1}).json()["messages"]
    assert [(m["seq"], m["deliveries"]) for m in again] == [(1, 2)]
    op.post(g + "/nack", json={"seqs": [1]})  # the 2nd failed attempt: dead-lettered
    dead = op.post(f"{S}/t.dlq/groups/ops/fetch", json={}).json()["messages"]
    assert [(m["payload_base64"], m["dead_letter"]) for m in dead] == [
        ("MA==", {"stream": "t", "group": "g", "seq": 1, "deliveries": 2})
    ]
    rest = op.post(g + "/fetch", json={}).json()["messages"]
    assert [m["seq"] for m in rest] == [2]
    op.post(g + "/ack", json={"seqs": [2]})
    assert op.post(g + "/seek", json={"seq": 1}).json() == {"next_seq": 1}
    replay = op.post(g + "/fetch", json={}).json()["messages"]
    assert [(m["seq"], m["deliveries"]) for m in replay] == [(1, 1), (2, 1)]
    assert op.delete(g).status_code == 204
    assert op.get(f"{S}/t").json()["groups"] == []
    assert op.delete(f"{S}/t").status_code == 204
    assert op.get(S).json() == []
    error(op.get(f"{S}/t"), 404)


@pytest.mark.timeout(30)
def test_server_sent_events_push_messages_acked_over_http(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    op.put(f"{S}/t", json={"topic_filters": ["t/#"]})
    error(op.get(f"{S}/nope/groups/g/events"), 404)
    publish(api, client_factory, "t/1", "t/2", "t/3")
    seen: list[int] = []
    with op.stream("GET", f"{S}/t/groups/push/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                field, _, value = line.partition(": ")
                event[field] = value
                continue
            if event.get("event") == "message":
                data = json.loads(event["data"])
                assert int(event["id"]) == data["seq"] and data["client_id"] == "dev"
                seen.append(data["seq"])
                op.post(f"{S}/t/groups/push/ack", json={"seqs": [data["seq"]]})
            event = {}
            if len(seen) == 3:
                break
    assert seen == [1, 2, 3]
    group = op.get(f"{S}/t").json()["groups"][0]
    assert (group["committed"], group["pending"]) == (3, 0)
