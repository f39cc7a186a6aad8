"""Fake `umqtt.simple`: an in-memory broker with retained messages, wildcards, Last Will,
and failure injection (broker down, connection dropped)."""


class MQTTException(Exception):
    pass


def topic_matches(pattern, topic):
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


class Broker:
    def __init__(self):
        self.up = True
        self.retained = {}
        self.log = []  # (topic, payload bytes, retain) of everything published
        self.clients = []
        self.connects = 0
        self.refused = 0

    def publish(self, topic, payload, retain=False):
        if isinstance(payload, str):
            payload = payload.encode()
        self.log.append((topic, payload, retain))
        if retain:
            self.retained[topic] = payload
        for c in self.clients:
            for pattern in c.subs:
                if topic_matches(pattern, topic):
                    c.queue.append((topic, payload))
                    break

    def drop_all(self):
        """The network path breaks: clients find out on their next socket operation."""
        for c in list(self.clients):
            c.lose()

    def messages(self, topic):
        return [m[1] for m in self.log if m[0] == topic]


BROKER = Broker()


def reset_fakes():
    BROKER.__init__()


class _Sock:
    def __init__(self, client):
        self.client = client
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            self.client.lose()


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None, ssl_params=None):
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.cb = None
        self.lw_topic = None
        self.lw_msg = None
        self.lw_qos = 0
        self.lw_retain = False
        self.sock = None
        self.subs = []
        self.queue = []
        self.alive = False
        self.pings = 0
        self.connect_timeout = None

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.lw_topic = topic
        self.lw_msg = msg
        self.lw_qos = qos
        self.lw_retain = retain

    def connect(self, clean_session=True, timeout=None):
        self.connect_timeout = timeout
        if not BROKER.up:
            BROKER.refused += 1
            raise OSError(111)  # ECONNREFUSED
        self.sock = _Sock(self)
        self.alive = True
        BROKER.clients.append(self)
        BROKER.connects += 1
        return 0

    def lose(self):
        """Connection gone without DISCONNECT: the broker publishes the Last Will."""
        if self.alive:
            self.alive = False
            if self in BROKER.clients:
                BROKER.clients.remove(self)
            if self.lw_topic and BROKER.up:
                BROKER.publish(self.lw_topic, self.lw_msg, self.lw_retain)

    def _check(self):
        if not self.alive or not BROKER.up:
            self.lose()
            raise OSError(-1)

    def disconnect(self):
        self._check()
        self.alive = False
        BROKER.clients.remove(self)

    def ping(self):
        self._check()
        self.pings += 1

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        BROKER.publish(topic if isinstance(topic, str) else topic.decode(), msg, retain)

    def subscribe(self, topic, qos=0):
        assert self.cb is not None, "Subscribe callback is not set"
        self._check()
        self.subs.append(topic)
        for t, payload in BROKER.retained.items():
            if topic_matches(topic, t):
                self.queue.append((t, payload))

    def wait_msg(self):
        self._check()
        if not self.queue:
            return None
        topic, payload = self.queue.pop(0)
        self.cb(topic.encode(), payload)
        return 0x30

    def check_msg(self):
        return self.wait_msg()
