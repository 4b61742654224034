"""The scoring server of a model package (`ledger model package`), copied as serve.py.

It stands alone: the Python standard library, numpy and onnxruntime, nothing of
the ledger. `python serve.py [--host H] [--port P]` serves the package's model:

    GET  /health   {"status": "ok", "model": "NAME:VERSION", "provider": ...}
    POST /score    {"inputs": [[...], ...]} (or {"inputs": {"name": [[...]]}})
                   -> {"model": "NAME:VERSION", "outputs": {"name": [...]}}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

HERE = Path(__file__).resolve().parent
MAX_BODY = 64 * 1024 * 1024
TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class Model:
    def __init__(self, directory: Path) -> None:
        manifest = json.loads((directory / "package.json").read_text())
        self.ref = manifest["model"]
        providers = onnxruntime.get_available_providers()
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = onnxruntime.InferenceSession(
            str(directory / "model" / manifest["model_file"]),
            providers=[p for p in wanted if p in providers],
        )
        self.provider = self.session.get_providers()[0]

    def score(self, inputs: Any) -> dict[str, Any]:
        declared = self.session.get_inputs()
        if not isinstance(inputs, dict):
            if len(declared) != 1:
                raise ValueError("the model has several inputs: send a mapping of name to rows")
            inputs = {declared[0].name: inputs}
        feeds = {
            spec.name: np.asarray(inputs[spec.name], dtype=TYPES.get(spec.type, np.float32))
            for spec in declared
        }
        names = [o.name for o in self.session.get_outputs()]
        values = self.session.run(names, feeds)
        return {name: np.asarray(v).tolist() for name, v in zip(names, values, strict=True)}


def handler_for(model: Model) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                self._reply(404, {"detail": f"no route {self.path}"})
                return
            self._reply(200, {"status": "ok", "model": model.ref, "provider": model.provider})

        def do_POST(self) -> None:
            if self.path != "/score":
                self._reply(404, {"detail": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, {"detail": f"the body is over {MAX_BODY} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(length))
                outputs = model.score(body["inputs"])
            except (ValueError, KeyError, TypeError) as error:
                self._reply(400, {"detail": f"{type(error).__name__}: {error}"})
                return
            except Exception as error:  # onnxruntime's own errors: the input did not fit
                self._reply(400, {"detail": str(error).splitlines()[0]})
                return
            self._reply(200, {"model": model.ref, "outputs": outputs})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # one line per request
            print(f"{self.address_string()} {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve this package's model over HTTP.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    model = Model(HERE)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(model))
    print(f"serving {model.ref} on http://{args.host}:{args.port} ({model.provider})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
