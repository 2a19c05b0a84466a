#!/usr/bin/env python3
"""Runs client_e2e.mjs (an npm ComfyUI client under Node) against two
`vkflow serve` instances, one with --auth-token.  Skips (exit 77) when
node or npm is missing or the pinned packages cannot be installed."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvlib import Server

HERE = os.path.dirname(os.path.abspath(__file__))
EXE = sys.argv[1]


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


node, npm = shutil.which("node"), shutil.which("npm")
if not node or not npm:
    skip("node/npm not found")
ver = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
if int(ver.lstrip("v").split(".")[0]) < 18:
    skip(f"node {ver} has no global fetch")
if not os.path.isdir(os.path.join(HERE, "node_modules", "@stable-canvas", "comfyui-client")):
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        skip("npm ci failed:\n" + r.stderr[-2000:])

srv = Server(EXE)
auth = Server(EXE, "--auth-token", "node-token")
try:
    view = srv.path("output", "from-test.png")
    with open(view, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    r = subprocess.run([node, os.path.join(HERE, "client_e2e.mjs"), str(srv.port), view,
                        str(auth.port), "node-token"], cwd=HERE, timeout=120)
    rc = r.returncode
    for s in (srv, auth):
        code = s.stop()
        if code != 0:
            print(f"server exited with {code}:\n" + "".join(s.stderr_lines[-30:]), file=sys.stderr)
            rc = rc or 1
finally:
    srv.stop()
    auth.stop()
sys.exit(rc)
