"""The programs that run inside the sandbox for the `code` reward (sent as source text).

- `solution_server()`: loads the solution (then MBPP's setup code, which builds inputs), then
  answers call requests, one JSON line each: {"id", "name", "args", "kwargs"} -> {"id", "value"}
  or {"id", "error"}. Each call has a CPU-time budget (and three times that in wall time, for a
  call that sleeps), so a loaded host does not fail slow honest calls. Values cross as
  `plain.py` data; the process never sees a test, an expected value or a verdict, so there is
  nothing in it for the solution to find or forge.
- `test_runner()`: runs test source that the trusted side could not split into calls and
  comparisons (loops, helpers, `candidate` passed around). It holds the tests, so it runs in a
  sandbox of its own; the names the tests call on the solution are proxies that send requests to
  the solution server's sandbox through a pipe and rebuild plain values from its replies. Names
  bound by setup code hold the value the setup builds here when it is plain, else a reference to
  the solution process's object (MBPP's `Node` trees), which only a call can pass back there.

Both prefix `plain.py` (they cannot import r1zero: the project folder is not visible inside).
"""

from __future__ import annotations

import functools
from pathlib import Path

_SOLUTION_SERVER = r'''
import json, os, signal, sys

class _CallTimeout(BaseException):
    pass

def _on_alarm(signum, frame):
    raise _CallTimeout()

def _answer(namespace, request, timeout_s):
    try:
        signal.setitimer(signal.ITIMER_PROF, timeout_s)  # CPU time: a busy host slows a call, does not fail it
        signal.setitimer(signal.ITIMER_REAL, 3 * timeout_s)  # a call that sleeps
        try:
            fn = namespace[request["name"]]
            value = fn(*decode(request["args"], namespace), **decode(request["kwargs"], namespace))
            try:
                return json.dumps({"id": request["id"], "value": encode(value)}, allow_nan=False)
            except TypeError:  # an object (MBPP's Pair): kept here, the tests get a handle to pass back
                namespace["#%d" % request["id"]] = value
                return json.dumps({"id": request["id"], "ref": "#%d" % request["id"]})
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _CallTimeout:
        return json.dumps({"id": request["id"], "error": "timeout"})
    except BaseException as exc:
        sys.stderr.write("call %s failed: %s: %s\n" % (request["id"], type(exc).__name__, str(exc)[:200]))
        return json.dumps({"id": request["id"], "error": type(exc).__name__})

def _serve():
    spec = json.loads(sys.stdin.readline())
    requests = sys.stdin if spec["requests_fd"] == 0 else os.fdopen(spec["requests_fd"], "r")
    replies = os.fdopen(os.dup(spec["replies_fd"]), "w")
    sys.stdout = open(os.devnull, "w")  # the solution's own prints are not replies
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGPROF, _on_alarm)
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(compile(spec["solution"], "solution.py", "exec"), namespace)
        exec(compile(spec["setup"], "setup.py", "exec"), namespace)
    except BaseException as exc:
        sys.stderr.write("solution failed: %s: %s\n" % (type(exc).__name__, str(exc)[:200]))
        replies.write(json.dumps({"id": -1, "error": type(exc).__name__}) + "\n")
        replies.flush()
        return
    for line in requests:
        replies.write(_answer(namespace, json.loads(line), spec["call_timeout_s"]) + "\n")
        replies.flush()

_serve()
'''

_TEST_RUNNER = r'''
import builtins, json, os, select, sys, time

class RemoteError(Exception):
    pass

class Ref:
    def __init__(self, name):
        self.name = name

_encode_plain = encode

def encode(value, depth=0):  # plain.encode's recursion comes here too, so nested refs cross as well
    return {"ref": value.name} if type(value) is Ref else _encode_plain(value, depth)

class _Solution:
    """The solution's sandbox, seen through two pipes."""

    def __init__(self, to_fd, from_fd, timeout_s):
        self.to_fd, self.from_fd, self.timeout_s = to_fd, from_fd, timeout_s
        self.next_id, self.buffer = 0, b""

    def reply(self, want):
        deadline = time.monotonic() + self.timeout_s
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if type(message) is dict and message.get("id") in (want, -1):
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_fd], [], [], left)[0]:
                raise TimeoutError("no reply from the solution")
            chunk = os.read(self.from_fd, 1 << 16)
            if not chunk:
                raise RemoteError("the solution's process ended")
            self.buffer += chunk

    def call(self, name, args, kwargs):
        self.next_id += 1
        request = {"id": self.next_id, "name": name, "args": [encode(a) for a in args],
                   "kwargs": {"dict": [[k, encode(v)] for k, v in kwargs.items()]}}
        data = (json.dumps(request, allow_nan=False) + "\n").encode()
        while data:
            data = data[os.write(self.to_fd, data):]
        message = self.reply(self.next_id)
        if type(message.get("ref")) is str:
            return Ref(message["ref"])
        if "error" in message or "value" not in message:
            raise RemoteError(str(message.get("error")))
        return decode(message["value"])

    def proxy(self, name):
        def remote(*args, **kwargs):
            return self.call(name, args, kwargs)
        remote.__name__ = remote.__qualname__ = name
        return remote

def _main():
    spec = json.loads(sys.stdin.read())
    report = os.fdopen(os.dup(1), "w")
    sys.stdout = open(os.devnull, "w")
    solution = _Solution(spec["to_fd"], spec["from_fd"], 3 * spec["call_timeout_s"] + 1.0)
    namespace = {"__name__": "__test__", "__builtins__": builtins}
    try:
        exec(compile(spec["prompt"], "prompt.py", "exec"), namespace)
    except BaseException:
        pass
    namespace.update({name: solution.proxy(name) for name in spec["remote_names"]})
    for name in spec["module_names"]:  # `sys` used by a test that counted on the solution importing it
        try:
            namespace[name] = __import__(name)
        except ImportError:
            pass
    built = dict(namespace)  # the setup, run here too: names it builds from plain values are trusted
    try:
        exec(compile(spec["setup"], "setup.py", "exec"), built)
    except BaseException:
        pass
    for name in spec["ref_names"]:
        try:
            namespace[name] = decode(encode(built[name]))
        except (KeyError, TypeError):
            namespace[name] = Ref(name)  # an object of the solution's (MBPP's trees): passed by name
    exec(compile(spec["imports"], "imports.py", "exec"), namespace)
    for i, test in enumerate(spec["tests"]):
        try:
            exec(compile(test, "test_%d.py" % i, "exec"), namespace)
            report.write("pass %d\n" % i)
            report.flush()
        except BaseException as exc:
            sys.stderr.write("test %d failed: %s: %s\n" % (i, type(exc).__name__, str(exc)[:200]))

_main()
'''


@functools.lru_cache(maxsize=1)
def _plain_source() -> str:
    return (Path(__file__).parent / "plain.py").read_text()


def solution_server() -> str:
    """Source of the solution's sandboxed process."""
    return _plain_source() + _SOLUTION_SERVER


def test_runner() -> str:
    """Source of the test's sandboxed process (tests that could not be split)."""
    return _plain_source() + _TEST_RUNNER
