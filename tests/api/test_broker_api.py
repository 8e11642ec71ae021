"""Sessions, subscriptions, retained messages and publishing through the API, seen by real
paho clients: what the API publishes arrives with its properties at the subscription's
QoS, is queued for offline persistent sessions, and bad input changes nothing."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx

from tests.api.conftest import Api
from tests.integration.helpers import V5, V311, Client, connect_props, wait_subscribed


def subscriber(
    api: Api, make: Callable[..., Client], client_id: str, topic: str, qos: int, **kw: object
) -> Client:
    client = make(api.handle, client_id, version=V5)
    client.connect(**kw)  # type: ignore[arg-type]
    client.subscribe(topic, qos)
    wait_subscribed(api.handle, client_id, topic)
    return client


def test_publish_reaches_subscribers_with_properties(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    """Forwarded properties [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17]
    [MQTT-3.3.2-20]; delivered at min(published, granted) QoS [MQTT-3.8.4-8]."""
    sub = subscriber(api, client_factory, "app-sub", "cmd/+", qos=1)
    answer = op.post(
        "/tenants/default/publish",
        json={
            "topic": "cmd/reboot",
            "payload_base64": base64.b64encode(b"\x00\x01binary").decode(),
            "qos": 2,
            "content_type": "application/octet-stream",
            "response_topic": "reply/here",
            "correlation_data_base64": base64.b64encode(b"corr-1").decode(),
            "user_properties": [["origin", "api"], ["origin", "twice"]],
            "message_expiry_interval": 60,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"topic": "cmd/reboot", "matched_sessions": 1}
    message = sub.expect_message()
    assert message.payload == b"\x00\x01binary"
    assert message.qos == 1
    p = message.properties
    assert p.ContentType == "application/octet-stream"
    assert p.ResponseTopic == "reply/here"
    assert p.CorrelationData == b"corr-1"
    assert p.UserProperty == [("origin", "api"), ("origin", "twice")]
    assert 0 < p.MessageExpiryInterval <= 60


def test_publish_is_queued_for_an_offline_persistent_session(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    """Messages for a disconnected session are kept and sent on resume [MQTT-3.1.2-5]."""
    device = client_factory(api.handle, "sleepy", version=V311, clean_session=False)
    device.connect()
    device.subscribe("ota/sleepy", 1)
    device.disconnect()
    for n in range(3):
        sent = op.post(
            "/tenants/default/publish", json={"topic": "ota/sleepy", "payload": f"m{n}", "qos": 1}
        )
        assert sent.json()["matched_sessions"] == 1
    session = op.get("/tenants/default/sessions/sleepy").json()
    assert session["connected"] is False and session["queued"] == 3
    again = client_factory(api.handle, "sleepy", version=V311, clean_session=False)
    assert again.connect().session_present
    assert [m.payload for m in again.expect_messages(3)] == [b"m0", b"m1", b"m2"]


def test_bad_publish_input_is_refused_and_delivers_nothing(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    sub = subscriber(api, client_factory, "watcher", "#", qos=0)
    bad_bodies = [
        ({"topic": "a/+", "payload": "x"}, 400),  # wildcard in a topic name [MQTT-3.3.2-2]
        ({"topic": "$SYS/fake", "payload": "x"}, 400),
        ({"topic": "", "payload": "x"}, 422),
        ({"topic": "a", "qos": 3}, 422),
        ({"topic": "a", "payload": "x", "payload_base64": "eA=="}, 422),
        ({"topic": "a", "payload_base64": "not base64!"}, 400),
        ({"topic": "a", "correlation_data_base64": "%%%"}, 400),
        ({"topic": "a", "response_topic": "r/#"}, 400),
        ({"topic": "a", "payload_base64": "/w==", "payload_format_indicator": 1}, 400),
        ({"topic": "a", "message_expiry_interval": -1}, 422),
    ]
    for body, status in bad_bodies:
        answer = op.post("/tenants/default/publish", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["message"]
    too_big = op.post(
        "/tenants/default/publish",
        content=b'{"topic": "a", "payload": "' + b"x" * 1_100_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    sub.expect_no_message()


def test_retained_set_listed_read_and_cleared(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    """A retained message set through the API is sent to new subscribers [MQTT-3.3.1-9];
    cleared, it is not [MQTT-3.3.1-10]."""
    for topic in ("site/a/temp", "site/b/temp", "other"):
        op.post("/tenants/default/publish", json={"topic": topic, "payload": topic, "retain": True})
    listed = op.get("/tenants/default/retained", params={"topic_filter": "site/+/temp"}).json()
    assert [m["topic"] for m in listed] == ["site/a/temp", "site/b/temp"]
    assert op.get("/tenants/default/retained/site/a/temp").json()["payload"] == "site/a/temp"
    assert op.get("/tenants/default/retained", params={"topic_filter": "a/#/b"}).status_code == 400
    late = subscriber(api, client_factory, "late", "site/a/temp", qos=0)
    assert late.expect_message().retain
    assert op.delete("/tenants/default/retained/site/a/temp").status_code == 204
    assert op.delete("/tenants/default/retained/site/a/temp").status_code == 404
    assert op.get("/tenants/default/retained/site/a/temp").status_code == 404
    later = subscriber(api, client_factory, "later", "site/a/temp", qos=0)
    later.expect_no_message()


def test_sessions_and_subscriptions_listed(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    subscriber(api, client_factory, "s1", "a/#", qos=1)
    subscriber(
        api,
        client_factory,
        "s2",
        "b/+",
        qos=0,
        clean_start=False,
        properties=connect_props(SessionExpiryInterval=300),
    )
    sessions = {s["client_id"]: s for s in op.get("/tenants/default/sessions").json()}
    assert set(sessions) == {"s1", "s2"}
    assert sessions["s2"]["expiry_interval"] == 300
    assert sessions["s1"]["connected"] is True
    detail = op.get("/tenants/default/sessions/s1").json()
    assert [(s["topic_filter"], s["qos"]) for s in detail["subscription_list"]] == [("a/#", 1)]
    subs = op.get("/tenants/default/subscriptions", params={"topic_filter": "b/+"}).json()
    assert [s["client_id"] for s in subs] == ["s2"]
    assert op.get("/tenants/default/sessions", params={"limit": 0}).status_code == 422
    assert op.get("/tenants/default/sessions/nobody").status_code == 404
    assert op.get("/tenants/other/sessions").json() == []


def test_kick_disconnects_and_discards_the_session(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    """DISCONNECT 0x98 Administrative action; no will is sent; the session is gone."""
    watcher = subscriber(api, client_factory, "watcher", "wills/#", qos=0)
    client = client_factory(api.handle, "victim", version=V5)
    client.will_set("wills/victim", b"gone")
    client.connect(clean_start=False, properties=connect_props(SessionExpiryInterval=600))
    client.subscribe("x/y", 1)
    assert op.delete("/tenants/default/sessions/victim").status_code == 204
    assert client.expect_disconnect().reason_code == 0x98
    assert op.get("/tenants/default/sessions/victim").status_code == 404
    watcher.expect_no_message()
    again = client_factory(api.handle, "victim", version=V5)
    assert not again.connect(clean_start=False).session_present


def test_tenant_stats(api: Api, op: httpx.Client, client_factory: Callable[..., Client]) -> None:
    subscriber(api, client_factory, "s1", "a/#", qos=1)
    operator = op.get("/stats").json()
    assert operator["clients/connected"] == "1"
    key = api.app_key("default")
    with api.client(key) as app:
        mine = app.get("/stats").json()
    assert mine == {
        "tenant": "default",
        "sessions": 1,
        "connected": 1,
        "subscriptions": 1,
        "queued": 0,
        "retained": 0,
    }


def test_publish_by_default_arrives_at_each_subscriptions_qos(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    """Backend -> device: without a `qos`, the message is QoS 2, so each device gets it at the
    QoS it subscribed with, min(2, granted) [MQTT-3.8.4-8]; an explicit QoS caps it."""
    subs = {
        qos: subscriber(api, client_factory, f"dev-q{qos}", "ota/all", qos=qos) for qos in (0, 1, 2)
    }
    assert (
        op.post("/tenants/default/publish", json={"topic": "ota/all", "payload": "v2"}).json()[
            "matched_sessions"
        ]
        == 3
    )
    assert {qos: c.expect_message().qos for qos, c in subs.items()} == {0: 0, 1: 1, 2: 2}
    op.post("/tenants/default/publish", json={"topic": "ota/all", "payload": "v3", "qos": 1})
    assert {qos: c.expect_message().qos for qos, c in subs.items()} == {0: 0, 1: 1, 2: 1}
