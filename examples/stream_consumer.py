"""An example backend service on Roost's messaging service: it declares a stream capturing
`greenhouse/+/telemetry`, consumes it in the group "thermostat", and when a device reports a
temperature above a threshold, publishes a command back to that device.

    roost serve                                   # API on http://127.0.0.1:8081
    python examples/stream_consumer.py --key "$(cat data/admin.key)"
    mosquitto_pub -t greenhouse/gh-1/telemetry -q 1 -m '{"temperature": 31.5}'

Run several copies with the same group to share the work; stop one (Ctrl-C, or kill -9) and
the messages it had not acknowledged go to another after the stream's ack_wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from roost.client import RoostApiError, RoostClient, StreamMessage

log = logging.getLogger("thermostat")


async def handle(client: RoostClient, message: StreamMessage, threshold: float) -> None:
    envelope = message.envelope
    try:
        reading = json.loads(envelope.payload)
        temperature = float(reading["temperature"])
    except (ValueError, KeyError, TypeError):
        log.warning("seq %d from %s: not a reading; to the dead letters after max_deliver",
                    envelope.seq, envelope.client_id)  # fmt: skip
        await message.nack(delay=5.0)
        return
    log.info("seq %d %s: %.1f °C (delivery %d, user properties %s)", envelope.seq,
             envelope.client_id, temperature, message.deliveries, envelope.user_properties)  # fmt: skip
    if temperature > threshold:
        # The device's session alone; queued if it is offline with a persistent session.
        try:
            await client.publish(
                f"greenhouse/{envelope.client_id}/cmd",
                json.dumps({"vent": "open"}),
                qos=1,
                device=envelope.client_id,
                correlation_data=envelope.correlation_data,
            )
        except RoostApiError as exc:
            if exc.status != 404:
                raise
            log.info("%s has no session to command (%s)", envelope.client_id, exc.message)
    await message.ack()


async def main() -> None:
    parser = argparse.ArgumentParser(description="thermostat: an example stream consumer")
    parser.add_argument("--url", default="http://127.0.0.1:8081")
    parser.add_argument("--key", required=True, help="operator or application API key")
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--threshold", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    async with RoostClient(args.url, args.key, tenant=args.tenant) as client:
        await client.declare_stream(
            "telemetry", ["greenhouse/+/telemetry"], max_age=7 * 86400, ack_wait=30, max_deliver=5
        )
        consumer = client.consumer("telemetry", "thermostat")
        async for message in consumer.messages():
            await handle(client, message, args.threshold)


if __name__ == "__main__":
    asyncio.run(main())
