#!/usr/bin/env python3
"""A central queue consumer for ser-edge urgency flags (MQTT contract v1).

Subscribes to every gateway's status, channel state, telemetry and urgency events,
checks each payload against the JSON Schemas in ser-edge's schemas/ folder, drops an
event it has already seen (same id), and keeps the calls in progress in a queue, the
most urgent first. It prints one JSON line per decision; replace `emit` with a call
into your own queue.

Runs on paho-mqtt 1.6 (Debian 12's python3-paho-mqtt) and 2.x, with jsonschema 4.
docs/central-server.md explains what it does and why.
"""

import argparse
import json
import signal
import sys
import uuid
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

try:
    import jsonschema
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as missing:
    sys.exit(
        f"central_queue.py: {missing}. It needs paho-mqtt and jsonschema: "
        "apt-get install python3-paho-mqtt python3-jsonschema (or pip install paho-mqtt jsonschema)"
    )

LEVEL_RANK = {"low": 0, "medium": 1, "high": 2}
SCHEMA_FILES = {
    "status": "status.schema.json",
    "state": "channel-state.schema.json",
    "telemetry": "telemetry.schema.json",
    "urgency": "urgency-event.schema.json",
}


def emit(record):
    """One decision, as one JSON line on stdout (flushed: the reader may be a pipe)."""
    print(json.dumps(record), flush=True)


def parse_time(text):
    """A schema-valid timestamp (UTC, ending in Z) as a datetime."""
    # Before Python 3.11, fromisoformat() takes neither the Z nor fractions other than 3 or 6 digits.
    seconds, _, fraction = text[:-1].partition(".")
    return datetime.fromisoformat(f"{seconds}.{(fraction + '000000')[:6]}+00:00")


class PayloadValidator:
    """The schemas/ files, each checked with the validator its "$schema" names (2020-12)."""

    def __init__(self, schema_dir):
        self._validators = {}
        for kind, name in SCHEMA_FILES.items():
            path = Path(schema_dir) / name
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                sys.exit(f"central_queue.py: cannot read {path} ({error}); pass --schemas DIR, the schemas/ folder of ser-edge")
            validator = jsonschema.validators.validator_for(schema)
            validator.check_schema(schema)
            self._validators[kind] = validator(schema, format_checker=jsonschema.FormatChecker())

    def problem(self, kind, payload):
        """None for a valid payload, else the most relevant error and where it is."""
        error = jsonschema.exceptions.best_match(self._validators[kind].iter_errors(payload))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "(payload)"
        return f"{where}: {error.message}"


def read_topic(topic):
    """(kind, site, gateway, channel) of a contract topic, channel None for gateway topics; None otherwise."""
    levels = topic.split("/")
    if levels[:2] != ["ser", "v1"]:
        return None
    if len(levels) == 5 and levels[4] in ("status", "telemetry"):
        return levels[4], levels[2], levels[3], None
    if len(levels) == 7 and levels[4] == "channel" and levels[6] in ("state", "urgency"):
        return levels[6], levels[2], levels[3], levels[5]
    return None


class RecentIds:
    """The ids of each gateway's latest events, `per_gateway` of them at most.

    A gateway repeats only what was in flight when its connection broke (8 events by
    default) and the broker only what it had not seen acknowledged, so a short window
    per gateway catches every repeat and memory stays flat however long this runs.
    """

    def __init__(self, per_gateway):
        self._per_gateway = per_gateway
        self._ids = {}

    def seen_before(self, gateway, event_id):
        ids = self._ids.setdefault(gateway, OrderedDict())
        if event_id in ids:
            return True
        ids[event_id] = None
        if len(ids) > self._per_gateway:
            ids.popitem(last=False)
        return False


class CallQueue:
    """The calls in progress on every channel: the present from the retained channel
    states, kept current by the urgency events, most urgent first.

    Which of two messages is the newer is decided by the gateway's own numbering and the
    chain it publishes, never by their clocks (`ts`): of two events of a channel, the one
    with the higher `seq`; a state names the event that set it (`eventId`), so it is older
    than any later event of its channel; and once a state or an event shows that a
    channel's call has ended, every event of that call comes too late. Otherwise what
    arrives is the newer: a gateway publishes a channel's state only once the broker has
    every event of that channel stored before it. A state is set aside only when the chain
    proves it older, and then a newer one follows: the present is the gateway's to say.
    """

    # Per channel: the events a state may name (it names the channel's newest), and the
    # calls that have ended (a late event of a call comes soon after the call's end).
    KNOWN_EVENTS = 64
    ENDED_CALLS = 16

    def __init__(self):
        # (gateway, channel) -> the channel's present. Kept between calls too (callId None).
        self._channels = {}
        # (gateway, channel) -> where the present stands in the gateway's numbering: "seq",
        # the highest seq behind it (None before any event of the channel is known), "events"
        # (id -> seq) and "ended" (call ids).
        self._chains = {}
        self._offline = set()

    def _chain(self, key):
        return self._chains.setdefault(key, {"seq": None, "events": OrderedDict(), "ended": OrderedDict()})

    def _end_call(self, chain, entry, next_call_id):
        """The channel's call is over when a state or an event of another call (or of none) takes its place."""
        if entry is not None and entry["callId"] is not None and entry["callId"] != next_call_id:
            chain["ended"][entry["callId"]] = None
            if len(chain["ended"]) > self.ENDED_CALLS:
                chain["ended"].popitem(last=False)

    def _state_is_older(self, entry, chain, state):
        if entry is None:
            return False
        if state["eventId"] is not None:
            # The state of an event older than the channel's newest: the newer events came first.
            named = chain["events"].get(state["eventId"])
            return named is not None and chain["seq"] is not None and named < chain["seq"]
        # A call boundary: the start of a call (callId) or the channel between calls (None).
        # The start of a call whose flags are already here is older than they are.
        return state["callId"] is not None and state["callId"] == entry["callId"] and entry["eventId"] is not None

    def apply_state(self, gateway, state):
        key = (gateway, state["channel"])
        entry = self._channels.get(key)
        chain = self._chain(key)
        if self._state_is_older(entry, chain, state):
            return
        named = chain["events"].get(state["eventId"])
        if named is not None:
            chain["seq"] = named
        self._end_call(chain, entry, state["callId"])
        chain["ended"].pop(state["callId"], None)  # the gateway says this call goes on
        same_call = entry is not None and entry["callId"] == state["callId"]
        self._channels[key] = {
            "callId": state["callId"],
            "level": state["level"],
            "score": state["score"],
            # A state may carry the emotion (gateways add optional fields); an event always does.
            "emotion": state.get("emotion", entry["emotion"] if same_call else None),
            "since": entry["since"] if same_call and entry["level"] == state["level"] else state["ts"],
            "eventId": state["eventId"],
        }

    def apply_event(self, gateway, event):
        """False when the channel's present is newer than the event (a late one)."""
        key = (gateway, event["channel"])
        entry = self._channels.get(key)
        chain = self._chain(key)
        chain["events"][event["id"]] = event["seq"]
        if len(chain["events"]) > self.KNOWN_EVENTS:
            chain["events"].popitem(last=False)
        if entry is not None and entry["eventId"] == event["id"]:
            # The state came first (older gateways could send it ahead of its event): the event adds its details.
            entry.update(emotion=event["emotion"], since=event["ts"])
            chain["seq"] = max(chain["seq"] or 0, event["seq"])
            return True
        if event["callId"] in chain["ended"]:
            return False  # its call has ended
        if chain["seq"] is not None and event["seq"] <= chain["seq"]:
            return False  # older than the channel's newest event: one the broker turned away, sent again
        self._end_call(chain, entry, event["callId"])
        chain["seq"] = event["seq"]
        same = entry is not None and entry["callId"] == event["callId"] and entry["level"] == event["level"]
        self._channels[key] = {
            "callId": event["callId"],
            "level": event["level"],
            "score": event["score"],
            "emotion": event["emotion"],
            "since": entry["since"] if same else event["ts"],
            "eventId": event["id"],
        }
        return True

    def set_gateway_online(self, gateway, online):
        if online:
            self._offline.discard(gateway)
        else:
            self._offline.add(gateway)

    def ordered(self):
        """Most urgent first; within a level, live gateways first, then who has waited longest."""
        rows = []
        for (gateway, channel), entry in self._channels.items():
            if entry["callId"] is None and entry["level"] == "low":
                continue  # between calls
            stale = gateway in self._offline
            rows.append(((-LEVEL_RANK[entry["level"]], stale, parse_time(entry["since"]), gateway, channel), {
                "gateway": gateway,
                "channel": channel,
                "callId": entry["callId"],
                "level": entry["level"],
                "emotion": entry["emotion"],
                "score": entry["score"],
                "since": entry["since"],
                "stale": stale,
            }))
        return [row for _, row in sorted(rows, key=lambda r: r[0])]


class CentralQueueConsumer:
    def __init__(self, validator, remember, gaps):
        self.validator = validator
        self.recent = RecentIds(remember)
        self.queue = CallQueue()
        self.gaps = gaps
        self.last_seq = {}
        self.outbox_dropped = {}
        self.shown = None

    def on_message(self, topic, raw):
        where = read_topic(topic)
        if where is None or raw == b"":
            return  # not a contract topic, or a retained message being cleared
        kind, site, gateway_id, channel = where
        gateway = f"{site}/{gateway_id}"
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError as error:
            return emit({"type": "invalid", "topic": topic, "problem": f"not JSON ({error})"})
        if not isinstance(payload, dict) or payload.get("schema") != 1:
            # Another contract version may mean other things by the same fields: never guess.
            return emit({"type": "invalid", "topic": topic, "problem": "not a v1 payload (\"schema\": 1)"})
        problem = self.validator.problem(kind, payload)
        if problem is None and (payload["site"], payload["gateway"], payload.get("channel", channel)) != (site, gateway_id, channel):
            # The broker's ACL vouches for the topic, not for what the payload claims.
            problem = "site, gateway or channel differ from the topic's"
        if problem is not None:
            return emit({"type": "invalid", "topic": topic, "problem": problem})

        if kind == "urgency":
            self.on_event(gateway, payload)
        elif kind == "state":
            self.queue.apply_state(gateway, payload)
        elif kind == "status":
            self.queue.set_gateway_online(gateway, payload["state"] == "online")
            emit({"type": "gateway", "gateway": gateway, "state": payload["state"], "reason": payload.get("reason")})
        elif kind == "telemetry":
            self.outbox_dropped[gateway] = payload["pipeline"]["outboxDropped"]
        self.show_queue()

    def on_event(self, gateway, event):
        if self.recent.seen_before(gateway, event["id"]):
            return emit({"type": "duplicate", "gateway": gateway, "id": event["id"], "seq": event["seq"]})
        last = self.last_seq.get(gateway)
        if self.gaps and last is not None and event["seq"] > last + 1:
            emit({"type": "seq-gap", "gateway": gateway, "after": last, "next": event["seq"],
                  "outboxDropped": self.outbox_dropped.get(gateway)})
        self.last_seq[gateway] = event["seq"] if last is None else max(last, event["seq"])
        applied = self.queue.apply_event(gateway, event)
        emit({"type": "event" if applied else "late", "gateway": gateway, "channel": event["channel"],
              "id": event["id"], "seq": event["seq"], "kind": event["kind"], "level": event["level"],
              "previousLevel": event.get("previousLevel"), "emotion": event["emotion"],
              "score": event["score"], "callId": event["callId"]})

    def show_queue(self):
        calls = self.queue.ordered()
        if calls != self.shown:
            self.shown = calls
            emit({"type": "queue", "calls": calls})


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopping(BaseException):
    """SIGINT or SIGTERM, raised out of the MQTT loop (a BaseException: no `except Exception` takes it)."""


def stop(signum, frame):
    # Only raise: paho's locks are not reentrant, so calling it (disconnect()) from a signal
    # handler hangs for ever when the signal lands while the loop holds one of them.
    raise Stopping()


def new_client(client_id):
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def reason_value(reason):
    return getattr(reason, "value", reason)


def main():
    parser = argparse.ArgumentParser(description="Central queue consumer for ser-edge urgency flags (MQTT 5).")
    parser.add_argument("--host", required=True, help="broker host name")
    parser.add_argument("--port", type=int, help="broker port (default 8883 with --cafile, else 1883)")
    parser.add_argument("--cafile", help="CA certificate(s) to trust: turns TLS on")
    parser.add_argument("--cert", help="client certificate (with --key)")
    parser.add_argument("--key", help="client certificate's key")
    parser.add_argument("--username", help="broker login")
    parser.add_argument("--password-file", help="file holding the password (a trailing newline is ignored)")
    parser.add_argument("--site", default="+", help="one site only (default: every site)")
    parser.add_argument("--group", help="share the urgency events with the other consumers of this group ($share/GROUP/...)")
    parser.add_argument("--client-id", help="fixed client id, needed for --session-expiry")
    parser.add_argument("--session-expiry", type=int, default=0, metavar="SECONDS",
                        help="keep the session (and the events published meanwhile) this long while disconnected")
    parser.add_argument("--schemas", default="schemas", help="ser-edge's schemas/ folder (default: ./schemas)")
    parser.add_argument("--remember", type=int, default=512, help="event ids kept per gateway to drop repeats (default 512)")
    args = parser.parse_args()
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    if args.password_file is not None and args.username is None:
        parser.error("--password-file needs --username")
    if args.remember < 1:
        parser.error("--remember must be 1 or more")
    if args.session_expiry > 0 and args.client_id is None:
        parser.error("--session-expiry needs --client-id: a session is resumed under the same client id")

    # Each member of a group sees only its share of the events, so seq gaps say nothing there.
    consumer = CentralQueueConsumer(PayloadValidator(args.schemas), args.remember, gaps=args.group is None)
    client = new_client(args.client_id or f"central-queue-{uuid.uuid4().hex[:12]}")
    if args.cafile or args.cert:
        client.tls_set(ca_certs=args.cafile, certfile=args.cert, keyfile=args.key)
    if args.username is not None:
        password = None
        if args.password_file is not None:
            try:
                password = Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as error:
                sys.exit(f"central_queue.py: --password-file {args.password_file}: {error.strerror}; check the path and its permissions")
        client.username_pw_set(args.username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=30)

    base = f"ser/v1/{args.site}/+"
    urgency = f"{base}/channel/+/urgency"
    # The retained topics are subscribed to without $share: every member needs the whole
    # present, and a broker need not send retained messages to a shared subscription.
    filters = [f"{base}/status", f"{base}/channel/+/state", f"{base}/telemetry",
               f"$share/{args.group}/{urgency}" if args.group else urgency]
    failure = {}

    def on_connect(client, userdata, flags, reason, properties):
        if reason_value(reason) != 0:
            failure["connect"] = str(reason)
            client.disconnect()
            return
        # Subscribing again after each reconnect also brings the retained present again.
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])

    def on_subscribe(client, userdata, mid, reasons, properties):
        for f, reason in zip(filters, reasons):
            if reason_value(reason) >= 0x80:
                print(f"central_queue.py: the broker refused the subscription {f}: {reason}", file=sys.stderr, flush=True)

    def on_disconnect(client, userdata, *args):
        # paho 1.6 passes (reason, properties), paho 2 (flags, reason, properties).
        reason = args[-2]
        if reason_value(reason) != 0:
            print(f"central_queue.py: connection lost ({reason}); reconnecting", file=sys.stderr, flush=True)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = lambda client, userdata, message: consumer.on_message(message.topic, message.payload)

    properties = None
    if args.session_expiry > 0:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = args.session_expiry
    port = args.port or (8883 if args.cafile or args.cert else 1883)
    try:
        client.connect(args.host, port, keepalive=30, clean_start=args.session_expiry == 0, properties=properties)
    except (OSError, ValueError) as error:
        sys.exit(f"central_queue.py: cannot connect to {args.host}:{port} ({error}); check --host, --port and, for TLS, --cafile")
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    try:
        client.loop_forever()
    except Stopping:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)  # a second one ends it at once
        try:
            client.disconnect()  # best effort: the signal may have come in the middle of a packet
        except OSError:
            pass
    if "connect" in failure:
        sys.exit(f"central_queue.py: the broker refused the login ({failure['connect']}); check --username and --password-file")


if __name__ == "__main__":
    main()
