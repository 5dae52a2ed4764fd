"""A minimal Language Server Protocol client, to drive yaml-language-server as an editor does.

The tests that use it (tests/test_editors.py) open files the way VS Code or Neovim would:
``initialize``, ``didOpen``, then wait for ``publishDiagnostics`` or ask for completions. The
server is found through ``$SGDSIM_YAML_LANGUAGE_SERVER`` (a path to the executable) or on the
PATH (``npm install -g yaml-language-server``); without it those tests are skipped.
"""

import json
import os
import pathlib
import queue
import shutil
import subprocess
import threading
import time

ENV_VAR = "SGDSIM_YAML_LANGUAGE_SERVER"


def find_server():
    """The yaml-language-server executable, or None."""
    return os.environ.get(ENV_VAR) or shutil.which("yaml-language-server")


class YamlLanguageServer:
    """yaml-language-server over stdio, with a workspace root."""

    def __init__(self, executable, root):
        self.process = subprocess.Popen([executable, "--stdio"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages = queue.Queue()
        self.diagnostics = {}
        self._opened = set()
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.request("initialize", {
            "processId": os.getpid(), "rootUri": pathlib.Path(root).as_uri(),
            "capabilities": {"workspace": {"configuration": True},
                             "textDocument": {"completion": {}}}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration",
                    {"settings": {"yaml": self._settings()}})

    @staticmethod
    def _settings():
        return {"validate": True, "completion": True, "hover": True,
                "schemaStore": {"enable": False}}

    def _read(self):
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, value = line.split(":", 1)
                headers[key.lower()] = value.strip()
            self.messages.put(json.loads(stream.read(int(headers["content-length"]))))

    def _send(self, message):
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method, params):
        self._send({"method": method, "params": params})

    def request(self, method, params, timeout=30):
        self._id += 1
        ident = self._id
        self._send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message.get("id") == ident and "method" not in message:
                return message.get("result")
            self._handle(message)

    def _next(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("yaml-language-server did not answer")
        return self.messages.get(timeout=remaining)

    def _handle(self, message):
        if message.get("method") == "textDocument/publishDiagnostics":
            self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
        elif "id" in message and "method" in message:          # a request from the server
            result = None
            if message["method"] == "workspace/configuration":
                result = [self._settings() for _ in message["params"]["items"]]
            self._send({"id": message["id"], "result": result})

    def open(self, path, text=None):
        """Open `path` (with `text`, or its contents); return its URI."""
        path = pathlib.Path(path).resolve()
        uri = path.as_uri()
        if uri in self._opened:
            raise ValueError(f"{path} is open already: give each text its own file name")
        self._opened.add(uri)
        self.diagnostics.pop(uri, None)
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": 1,
            "text": path.read_text(encoding="utf-8") if text is None else text}})
        return uri

    def problems(self, path, text=None, timeout=30):
        """``[(line (1-based), message)]`` the server reports for a file opened now."""
        uri = self.open(path, text)
        deadline = time.monotonic() + timeout
        while uri not in self.diagnostics:
            try:
                self._handle(self._next(deadline))
            except queue.Empty:
                continue
        return [(d["range"]["start"]["line"] + 1, d["message"]) for d in self.diagnostics[uri]]

    def completions(self, path, text, line, character):
        """Labels the server offers at (0-based) `line`, `character` of `text`."""
        self.problems(path, text)                      # opened and analysed
        result = self.request("textDocument/completion", {
            "textDocument": {"uri": pathlib.Path(path).resolve().as_uri()},
            "position": {"line": line, "character": character}})
        items = result.get("items", []) if isinstance(result, dict) else result or []
        return sorted(item["label"] for item in items)

    def close(self):
        try:
            self.request("shutdown", None, timeout=5)
            self.notify("exit", None)
            self.process.wait(timeout=5)
        except Exception:  # noqa: BLE001 -- the server is going anyway
            self.process.kill()
            self.process.wait()
