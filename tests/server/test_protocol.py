#!/usr/bin/env python3
"""Protocol test of `vkflow serve` against ComfyUI's API (reference §2.2,
§4, §5, §6): every route and error status, websocket routing between
clients, queue order / front / delete / clear, interrupt, history shape,
/view confinement, upload naming, auth, CORS, shutdown."""
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvlib import (WS, Checker, Server, WSClosed, finished, get_json, multipart, png_decode,
                    png_encode, post_json, request, slow_prompt, text_prompt)

EXE = sys.argv[1]
check = Checker("server_protocol")

srv = Server(EXE, "--max-upload-mb", "1", "--max-history", "1000")
P = srv.port
open(srv.path("models", "checkpoints", "sd15.safetensors"), "wb").close()
open(srv.path("models", "embeddings", "easyneg.pt"), "wb").close()

try:
    # ---- plain routes ----------------------------------------------------------
    st, h, body = request(P, "GET", "/")
    check(st == 200 and h["content-type"].startswith("text/html") and b"vkflow" in body, "GET /")
    check("access-control-allow-origin" not in h, "no CORS headers by default")
    for prefix in ("", "/api"):
        st, j = get_json(P, prefix + "/prompt")
        check(st == 200 and j == {"exec_info": {"queue_remaining": 0}}, prefix + "/prompt")
        st, j = get_json(P, prefix + "/queue")
        check(st == 200 and j == {"queue_running": [], "queue_pending": []}, prefix + "/queue")
    st, j = get_json(P, "/object_info")
    check(st == 200 and "PreviewAny" in j and j["PreviewAny"]["output_node"] is True, "/object_info")
    st, j = get_json(P, "/api/object_info/PrimitiveInt")
    check(st == 200 and list(j) == ["PrimitiveInt"] and "input_order" in j["PrimitiveInt"],
          "/object_info/{class}")
    st, j = get_json(P, "/object_info/NoSuchNode")
    check(st == 200 and j == {}, "/object_info/{unknown} is {}")
    st, j = get_json(P, "/system_stats")
    dev = j["devices"][0] if st == 200 and j.get("devices") else {}
    check(st == 200 and j["system"]["ram_total"] > 0 and "argv" in j["system"]
          and dev.get("type") in ("vulkan", "cpu") and dev.get("vram_total", 0) > 0
          and dev.get("vram_free", -1) >= 0 and "torch_vram_total" in dev
          and (dev["type"] == "cpu" or (dev["index"] == 0 and dev["name"].startswith("vulkan:0 "))),
          "/system_stats")
    st, j = get_json(P, "/embeddings")
    check(st == 200 and j == ["easyneg"], "/embeddings without extensions")
    st, j = get_json(P, "/models")
    check(st == 200 and "checkpoints" in j and "loras" in j, "/models")
    st, j = get_json(P, "/models/checkpoints")
    check(st == 200 and j == ["sd15.safetensors"], "/models/checkpoints")
    st, j = get_json(P, "/models/unet")
    check(st == 200 and j == [], "/models/{alias}")
    st, _ = get_json(P, "/models/nonsense")
    check(st == 404, "/models/{unknown} is 404")
    st, j = get_json(P, "/features")
    check(st == 200 and j["supports_preview_metadata"] is True
          and j["max_upload_size"] == 1024 * 1024, "/features")
    st, _, body = request(P, "GET", "/no/such/route")
    check(st == 404 and json.loads(body)["error"]["type"] == "not_found", "unknown route 404 JSON")
    st, _, _ = request(P, "GET", "/interrupt")
    check(st == 405, "GET /interrupt is 405")
    st, _, _ = request(P, "DELETE", "/queue")
    check(st == 405, "DELETE /queue is 405")
    st, _, _ = request(P, "POST", "/object_info", {})
    check(st == 405, "POST /object_info is 405")
    st, _, _ = request(P, "GET", "/ws")
    check(st == 400, "GET /ws without upgrade is 400")

    # ---- POST /prompt errors ---------------------------------------------------
    st, j = post_json(P, "/prompt", "{not json")
    check(st == 400 and j["error"]["type"] == "invalid_json", "malformed JSON is 400")
    st, j = post_json(P, "/prompt", [1, 2])
    check(st == 400 and j["error"]["type"] == "invalid_json", "a JSON array body is 400")
    st, j = post_json(P, "/prompt", {"client_id": "x"})
    check(st == 400 and j == {"error": {"type": "no_prompt", "message": "No prompt provided",
                                        "details": "No prompt provided", "extra_info": {}},
                              "node_errors": {}}, "no_prompt body")
    bad = text_prompt("x")
    bad["1"]["inputs"]["value"] = ["9", 0]
    st, j = post_json(P, "/prompt", {"prompt": bad})
    check(st == 400 and j["error"]["type"] == "prompt_outputs_failed_validation", "link to missing node")
    st, j = post_json(P, "/prompt", {"prompt": {"1": {"class_type": "Nope", "inputs": {}}}})
    check(st == 400 and "error" in j and j["node_errors"] == {}, "unknown class is 400")
    st, j = post_json(P, "/prompt", {"prompt": {"1": {"class_type": "PrimitiveInt",
                                                      "inputs": {"value": 1}}}})
    check(st == 400 and j["error"]["type"] == "prompt_no_outputs", "prompt_no_outputs")
    bad = {"1": {"class_type": "PrimitiveInt", "inputs": {"value": "x"}},
           "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    st, j = post_json(P, "/prompt", {"prompt": bad})
    check(st == 400 and j["node_errors"]["1"]["errors"][0]["type"] == "invalid_input_type"
          and j["node_errors"]["1"]["dependent_outputs"] == ["2"], "node_errors shape")
    # One output valid, one not: queued, with node_errors.
    mixed = dict(bad)
    mixed.update({"5": {"class_type": "PrimitiveString", "inputs": {"value": "ok"}},
                  "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}}})
    st, j = post_json(P, "/prompt", {"prompt": mixed, "number": 1e9})
    check(st == 200 and "1" in j["node_errors"], "partly valid prompt is queued with node_errors")
    st, j = post_json(P, "/prompt", {"prompt": text_prompt("n"), "number": "abc"})
    check(st == 400, "non-numeric number is 400")
    st, j = post_json(P, "/prompt", {"prompt": text_prompt("e"), "extra_data": [1]})
    check(st == 400, "extra_data must be an object")

    # ---- websocket: connect, sid, feature flags --------------------------------
    alice = WS(P, "alice")
    m = alice.recv()
    check(m["type"] == "status" and m["data"]["sid"] == "alice"
          and "queue_remaining" in m["data"]["status"]["exec_info"], "status on connect")
    bob = WS(P, "bob")
    bob.recv()
    anon = WS(P)
    m = anon.recv()
    check(re.fullmatch(r"[0-9a-f]{32}", m["data"]["sid"] or "") is not None, "fresh hex sid")
    alice.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    m = alice.until(lambda m: m.get("type") == "feature_flags", 5)[-1]
    check(m["data"]["supports_preview_metadata"] is True and m["data"]["max_upload_size"] > 0,
          "feature_flags answered")
    # Let the mixed prompt above finish before counting.
    time.sleep(0.3)
    alice.drain(0.2), bob.drain(0.2), anon.drain(0.2)

    # ---- a prompt for alice ----------------------------------------------------
    st, j = post_json(P, "/prompt", {"prompt": text_prompt("hello"), "client_id": "alice",
                                     "extra_data": {"extra_pnginfo": {"workflow": {"nodes": []}},
                                                    "api_key_comfy_org": "secret"}})
    check(st == 200 and set(j) == {"prompt_id", "number", "node_errors"} and j["node_errors"] == {},
          "POST /prompt reply")
    pid = j["prompt_id"]
    msgs = alice.until(finished(pid))
    # The history record exists when "executing null" arrives.
    st, hist = get_json(P, "/history/" + pid)
    types = [m["type"] for m in msgs if m["type"] != "status"]
    check(types == ["execution_start", "execution_cached", "executing", "progress_state",
                    "progress_state", "executing", "progress_state", "executed", "progress_state",
                    "execution_success", "executing"], f"event sequence {types}")
    ps = [m["data"] for m in msgs if m["type"] == "progress_state"]
    check(ps[0]["prompt_id"] == pid and ps[0]["nodes"]["1"]["state"] == "running"
          and set(ps[0]["nodes"]) == {"1"}, "progress_state when a node starts")
    last = ps[-1]["nodes"]
    check(set(last) == {"1", "2"} and all(n["state"] == "finished" and n["value"] == n["max"]
                                          and n["real_node_id"] == k for k, n in last.items()),
          f"progress_state at the end {last}")
    check([m["data"]["node"] for m in msgs if m["type"] == "executing"] == ["1", "2", None],
          "executing per node, then null")
    ex = [m for m in msgs if m["type"] == "executed"][0]["data"]
    check(ex["node"] == "2" and ex["output"] == {"text": ["hello"]} and ex["prompt_id"] == pid,
          "executed output")
    check(st == 200 and pid in hist, "history written before the final executing")
    rec = hist.get(pid, {})
    check(set(rec) == {"prompt", "outputs", "status", "meta"}, "history record keys")
    item = rec.get("prompt", [])
    check(len(item) == 5 and item[1] == pid and item[2] == text_prompt("hello")
          and item[3].get("client_id") == "alice" and "api_key_comfy_org" not in item[3]
          and item[4] == ["2"], "history prompt item (sensitive keys removed)")
    check(rec.get("outputs") == {"2": {"text": ["hello"]}}, "history outputs")
    status = rec.get("status", {})
    check(status.get("status_str") == "success" and status.get("completed") is True
          and [x[0] for x in status.get("messages", [])] ==
          ["execution_start", "execution_cached", "execution_success"]
          and all("timestamp" in x[1] for x in status["messages"]), "history status")
    check(rec.get("meta", {}).get("2", {}).get("node_id") == "2", "history meta")
    other = bob.drain(0.3) + anon.drain(0.1)
    check(all(m["type"] == "status" for m in other), "other sockets get no prompt events")
    check(any(m["type"] == "status" for m in other), "status broadcast on queue change")

    # Same prompt again: cached; /free then not cached.
    st, j = post_json(P, "/prompt", {"prompt": text_prompt("hello"), "client_id": "alice"})
    msgs = alice.until(finished(j["prompt_id"]))
    cached = [m for m in msgs if m["type"] == "execution_cached"][0]["data"]["nodes"]
    check(sorted(cached) == ["1", "2"], f"second run cached {cached}")
    check(any(m["type"] == "executed" for m in msgs), "cached output node re-sends executed")
    st, _, _ = request(P, "POST", "/free", {"free_memory": True, "unload_models": True})
    check(st == 200, "POST /free")
    st, j = post_json(P, "/prompt", {"prompt": text_prompt("hello"), "client_id": "alice"})
    msgs = alice.until(finished(j["prompt_id"]))
    cached = [m for m in msgs if m["type"] == "execution_cached"][0]["data"]["nodes"]
    check(cached == [], "after /free nothing is cached")
    st, _, _ = request(P, "POST", "/free", "nope")
    check(st == 400, "/free with malformed JSON is 400")

    # Live previews: ComfyUI's binary PREVIEW_IMAGE frames (event 1, PNG = 2)
    # to the prompt's client only.
    st, j = post_json(P, "/prompt", {"prompt": {"1": {"class_type": "TestPreview",
                                                      "inputs": {"count": 2}}},
                                     "client_id": "alice"})
    msgs = alice.until(finished(j["prompt_id"]))
    frames = [m for m in msgs if isinstance(m, bytes)]
    check(len(frames) == 2 and all(f[:8] == b"\0\0\0\x01\0\0\0\x02" and f[8:12] == b"\x89PNG"
                                   for f in frames) and frames[1][-1] == 1,
          f"binary preview frames {frames}")
    other = bob.drain(0.3) + anon.drain(0.1)
    check(not any(isinstance(m, bytes) for m in other), "previews only to the prompt's client")


    # ---- execution error -------------------------------------------------------
    failp = {"1": {"class_type": "TestFail", "inputs": {"message": "boom"}},
             "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    st, j = post_json(P, "/prompt", {"prompt": failp, "client_id": "alice"})
    msgs = alice.until(finished(j["prompt_id"]))
    err = [m for m in msgs if m["type"] == "execution_error"]
    check(len(err) == 1 and "boom" in err[0]["data"]["exception_message"]
          and err[0]["data"]["node_id"] == "1" and err[0]["data"]["node_type"] == "TestFail",
          "execution_error")
    st, hist = get_json(P, "/history/" + j["prompt_id"])
    s = hist[j["prompt_id"]]["status"]
    check(s["status_str"] == "error" and s["completed"] is False
          and s["messages"][-1][0] == "execution_error", "history of a failed prompt")

    # ---- queue order, front, number, delete, clear, interrupt ------------------
    bob.drain(0.1)
    st, j = post_json(P, "/prompt", {"prompt": slow_prompt(400, 10), "client_id": "alice"})
    blocker = j["prompt_id"]
    alice.until(lambda m: m["type"] == "progress" and m["data"]["prompt_id"] == blocker)
    ids = {}
    for name, extra in (("a", {}), ("b", {}), ("front", {"front": True}),
                        ("num", {"number": -1000.5})):
        st, j = post_json(P, "/prompt", {"prompt": text_prompt(name), "client_id": "bob", **extra})
        ids[name] = j
    check(ids["b"]["number"] == ids["a"]["number"] + 1, "counter increments")
    check(ids["front"]["number"] == -(ids["b"]["number"] + 1), "front negates the counter")
    check(ids["num"]["number"] == -1000.5, "explicit number kept")
    st, q = get_json(P, "/queue")
    pend = [it[1] for it in q["queue_pending"]]
    want = [ids[k]["prompt_id"] for k in ("num", "front", "a", "b")]
    check(pend == want, f"queue order {pend} != {want}")
    check(len(q["queue_running"]) == 1 and q["queue_running"][0][1] == blocker, "queue_running")
    st, j = get_json(P, "/prompt")
    check(j["exec_info"]["queue_remaining"] == 5, "queue_remaining counts running + pending")
    st, _, _ = request(P, "POST", "/queue", {"delete": [ids["a"]["prompt_id"], "unknown"]})
    st, q = get_json(P, "/queue")
    check(st == 200 and [it[1] for it in q["queue_pending"]] == [want[0], want[1], want[3]],
          "delete from queue")
    st, _, _ = request(P, "POST", "/queue", {"delete": "x"})
    check(st == 400, "delete must be a list")
    st, _, _ = request(P, "POST", "/queue", {"clear": True})
    st, q = get_json(P, "/queue")
    check(q["queue_pending"] == [], "clear queue")
    bs = bob.drain(0.3)
    rem = [m["data"]["status"]["exec_info"]["queue_remaining"] for m in bs if m["type"] == "status"]
    check(rem and rem[-1] == 1, f"status broadcasts follow the queue {rem}")

    # Reconnect alice while her prompt runs: the new socket gets the node.
    alice2 = WS(P, "alice")
    first = alice2.recv()
    second = alice2.recv()
    check(first["type"] == "status" and second["type"] == "executing"
          and second["data"]["node"] == "1", "reconnect re-sends executing")
    # Interrupt with another prompt id: nothing happens.
    request(P, "POST", "/interrupt", {"prompt_id": "not-running"})
    time.sleep(0.2)
    st, q = get_json(P, "/queue")
    check(len(q["queue_running"]) == 1, "targeted interrupt of another prompt is ignored")
    st, _, _ = request(P, "POST", "/api/interrupt", {"prompt_id": blocker})
    check(st == 200, "POST /interrupt")
    msgs = alice2.until(finished(blocker))
    check(any(m["type"] == "execution_interrupted" and m["data"]["node_id"] == "1"
              for m in msgs), "execution_interrupted to the new socket")
    old = alice.drain(0.3)
    check(not any(m.get("type") in ("execution_interrupted", "executing") for m in old
                  if isinstance(m, dict)), "replaced socket gets nothing more")
    st, hist = get_json(P, "/history/" + blocker)
    check(hist[blocker]["status"]["status_str"] == "error"
          and hist[blocker]["status"]["messages"][-1][0] == "execution_interrupted",
          "interrupted prompt in history")
    alice.close()
    alice = alice2

    # A prompt without client_id: progress and execution_interrupted go to
    # everyone, the rest to no one.
    anon.drain(0.1), bob.drain(0.1)
    st, j = post_json(P, "/prompt", {"prompt": slow_prompt(300, 10)})
    nocid = j["prompt_id"]
    m = bob.until(lambda m: m["type"] == "progress", 10)
    check(m[-1]["data"]["prompt_id"] == nocid, "progress broadcast without client_id")
    check(any(x["type"] == "progress_state" and x["data"]["nodes"]["1"]["state"] == "running"
              for x in m), "progress_state broadcast without client_id")
    m = anon.until(lambda m: m["type"] == "progress", 10)
    check(m[-1]["data"]["prompt_id"] == nocid, "progress reaches every socket")
    request(P, "POST", "/interrupt", "")
    m = anon.until(lambda m: m["type"] == "execution_interrupted", 10)
    check(m[-1]["data"]["prompt_id"] == nocid, "execution_interrupted broadcast")
    seen = {x["type"] for x in bob.drain(0.4) + m}
    check(not seen & {"execution_start", "executing", "executed", "execution_cached"},
          f"no per-client events without client_id {seen}")

    # ---- history ----------------------------------------------------------------
    st, allh = get_json(P, "/history")
    n = len(allh)
    check(n >= 6, "history holds every finished prompt")
    st, last2 = get_json(P, "/history?max_items=2")
    check(list(last2) == list(allh)[-2:], "max_items gives the newest")
    st, mid = get_json(P, "/history?max_items=2&offset=1")
    check(list(mid) == list(allh)[1:3], "max_items with offset")
    st, _ = get_json(P, "/history?max_items=x")
    check(st == 400, "bad max_items is 400")
    st, j = get_json(P, "/history/unknown-id")
    check(st == 200 and j == {}, "unknown history id is {}")
    first_id = list(allh)[0]
    request(P, "POST", "/history", {"delete": [first_id]})
    st, allh2 = get_json(P, "/history")
    check(first_id not in allh2 and len(allh2) == n - 1, "delete history item")
    request(P, "POST", "/api/history", {"clear": True})
    st, allh3 = get_json(P, "/history")
    check(allh3 == {}, "clear history")

    # ---- /view --------------------------------------------------------------------
    png = b"\x89PNG\r\n\x1a\nfake"
    with open(srv.path("output", "a.png"), "wb") as f:
        f.write(png)
    os.makedirs(srv.path("output", "sub"), exist_ok=True)
    with open(srv.path("output", "sub", "b.webp"), "wb") as f:
        f.write(b"webp")
    with open(srv.path("input", "in.jpg"), "wb") as f:
        f.write(b"jpg")
    with open(srv.path("temp", "t.json"), "wb") as f:
        f.write(b"{}")
    with open(srv.path("output", "x.html"), "wb") as f:
        f.write(b"<script>")
    with open(srv.path("secret.txt"), "wb") as f:
        f.write(b"secret")
    os.symlink(srv.path("secret.txt"), srv.path("output", "link.txt"))
    st, h, body = request(P, "GET", "/view?filename=a.png")
    check(st == 200 and body == png and h["content-type"] == "image/png"
          and 'filename="a.png"' in h.get("content-disposition", ""), "/view output file")
    st, h, body = request(P, "GET", "/api/view?filename=b.webp&subfolder=sub&type=output")
    check(st == 200 and body == b"webp" and h["content-type"] == "image/webp", "/view subfolder")
    st, h, body = request(P, "GET", "/view?filename=in.jpg&type=input")
    check(st == 200 and h["content-type"] == "image/jpeg", "/view type=input")
    st, h, body = request(P, "GET", "/view?filename=in.jpg%20%5Binput%5D")
    check(st == 200 and body == b"jpg", "/view ' [input]' suffix")
    # preview=FORMAT;QUALITY re-encodes a real image (';' unescaped, as the
    # ComfyUI frontend sends it); an unreadable image goes out unchanged
    import struct, zlib
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + bytes((x * 16 + y * 7) & 255 for x in range(16) for _ in range(3))
                   for y in range(8))
    real = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(srv.path("output", "real.png"), "wb") as f:
        f.write(real)
    st, h, body = request(P, "GET", "/view?filename=real.png&preview=webp;50")
    check(st == 200 and h["content-type"] == "image/webp" and body[:4] == b"RIFF"
          and body[8:12] == b"WEBP", "/view preview=webp;50")
    st, h, body = request(P, "GET", "/view?filename=real.png&preview=jpeg;90&type=output")
    check(st == 200 and h["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8",
          "/view preview=jpeg;90")
    st, h, b5 = request(P, "GET", "/view?filename=real.png&preview=jpeg%3B5")
    check(st == 200 and b5[:2] == b"\xff\xd8" and len(b5) <= len(body), "/view jpeg quality")
    st, h, body = request(P, "GET", "/view?filename=a.png&preview=webp;90")
    check(st == 200 and body == png, "/view preview of an unreadable image: the file as is")
    st, h, body = request(P, "GET", "/view?filename=t.json&type=temp")
    check(st == 200 and body == b"{}", "/view type=temp")
    st, h, body = request(P, "GET", "/view?filename=x.html")
    check(st == 200 and h["content-type"] == "application/octet-stream"
          and h["content-disposition"].startswith("attachment"), "active content is a download")
    for q, want in (("filename=../secret.txt", 400), ("filename=%2Fetc%2Fpasswd", 400),
                    ("filename=a..png", 400), ("filename=a.png&subfolder=..", 403),
                    ("filename=passwd&subfolder=%2Fetc", 403),
                    ("filename=secret.txt&subfolder=sub%2F..%2F..", 403),
                    ("filename=link.txt", 403), ("filename=missing.png", 404), ("", 404),
                    ("filename=a.png&type=bogus", 400), ("filename=sub", 404)):
        st, _, _ = request(P, "GET", "/view?" + q)
        check(st == want, f"/view?{q} -> {st}, want {want}")

    # ---- uploads -----------------------------------------------------------------
    def upload(fields, files, path="/upload/image"):
        body, hdrs = multipart(fields, files)
        st, _, data = request(P, "POST", path, body, headers=hdrs)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, data

    st, j = upload({}, {"image": ("up.png", b"one")})
    check(st == 200 and j == {"name": "up.png", "subfolder": "", "type": "input"}, f"upload {j}")
    check(open(srv.path("input", "up.png"), "rb").read() == b"one", "uploaded bytes")
    st, j = upload({}, {"image": ("up.png", b"two")})
    check(j["name"] == "up (1).png", "name clash gets (1)")
    st, j = upload({}, {"image": ("up.png", b"three")})
    check(j["name"] == "up (2).png", "second clash gets (2)")
    st, j = upload({}, {"image": ("up.png", b"two")})
    check(j["name"] == "up (1).png", "identical bytes reuse the existing name")
    st, j = upload({"overwrite": "true"}, {"image": ("up.png", b"four")})
    check(j["name"] == "up.png" and open(srv.path("input", "up.png"), "rb").read() == b"four",
          "overwrite=true")
    st, j = upload({"type": "output", "subfolder": "ups/deep"}, {"image": ("o.png", b"o")})
    check(st == 200 and j == {"name": "o.png", "subfolder": "ups/deep", "type": "output"}
          and os.path.exists(srv.path("output", "ups", "deep", "o.png")), "upload to output subfolder")
    st, j = upload({"type": "temp"}, {"image": (".hidden", b"h")})
    check(st == 200 and j["name"] == ".hidden", "dot file upload")
    st, j = upload({"type": "temp"}, {"image": (".hidden", b"h2")})
    check(j["name"] == ".hidden (1)", "splitext of a dot file")
    st, _ = upload({"subfolder": "../escape"}, {"image": ("e.png", b"e")})
    check(st == 400 and not os.path.exists(srv.path("escape")), "subfolder escape refused")
    st, _ = upload({"subfolder": "/tmp"}, {"image": ("e.png", b"e")})
    check(st == 400, "absolute subfolder refused")
    st, _ = upload({}, {"image": ("../e.png", b"e")})
    check(st == 400, "path in file name refused")
    st, _ = upload({"type": "bogus"}, {"image": ("e.png", b"e")})
    check(st == 400, "unknown type refused")
    st, _ = upload({"subfolder": "x"}, {})
    check(st == 400, "no image part is 400")
    st, _, _ = request(P, "POST", "/upload/image", {"image": "x"})
    check(st == 400, "JSON upload is 400")
    st, _ = upload({}, {"image": ("big.png", b"x" * (1024 * 1024 + 10))})
    check(st == 413, "upload over --max-upload-mb is 413")
    # Mask: the original's colours and text chunks, the mask's alpha.
    W, H = 3, 2
    orig = bytes(i % 251 for i in range(W * H * 3))
    with open(srv.path("input", "photo.png"), "wb") as f:
        f.write(png_encode(W, H, orig, 3, {"workflow": "{\"nodes\": []}", "prompt": "{}"}))
    mask = bytes(v for i in range(W * H) for v in (9, 9, 9, 40 * i))
    ref = json.dumps({"filename": "photo.png", "subfolder": "", "type": "input"})
    st, j = upload({"original_ref": ref, "type": "input", "subfolder": "clipspace"},
                   {"image": ("clipspace-mask-1.png", png_encode(W, H, mask, 4))}, "/upload/mask")
    check(st == 200 and j == {"name": "clipspace-mask-1.png", "subfolder": "clipspace",
                              "type": "input"}, f"mask upload {j}")
    w, h, ch, px, text = png_decode(open(srv.path("input", "clipspace", "clipspace-mask-1.png"),
                                         "rb").read())
    want = bytes(v for i in range(W * H) for v in (*orig[3 * i:3 * i + 3], 40 * i))
    check((w, h, ch) == (W, H, 4) and px == want, "mask alpha over the original's colours")
    check(text == {"workflow": "{\"nodes\": []}", "prompt": "{}"}, "original's text chunks kept")
    st, j = upload({"original_ref": json.dumps({"filename": "photo.png [input]"})},
                   {"image": ("m2.png", png_encode(1, 1, b"\0\0\0\0", 4))}, "/upload/mask")
    check(st == 400, "mask of another size is 400")
    st, j = upload({"original_ref": json.dumps({"filename": "gone.png"})},
                   {"image": ("m3.png", png_encode(W, H, mask, 4))}, "/upload/mask")
    check(st == 200 and not os.path.exists(srv.path("input", "m3.png")),
          "mask of a missing original writes nothing (as ComfyUI)")
    st, _ = upload({"original_ref": json.dumps({"filename": "../x.png"})},
                   {"image": ("m.png", b"m")}, "/upload/mask")
    check(st == 400, "mask with an unsafe original_ref")
    st, _ = upload({"original_ref": json.dumps({"filename": "x.png", "subfolder": "../.."})},
                   {"image": ("m.png", b"m")}, "/upload/mask")
    check(st == 403, "mask with an escaping original subfolder")
    st, _ = upload({}, {"image": ("m.png", b"m")}, "/upload/mask")
    check(st == 400, "mask without original_ref")

    # ---- body limit without sending the body ------------------------------------------
    s = socket.create_connection(("127.0.0.1", P), timeout=10)
    s.sendall(b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 999999999\r\n\r\n")
    resp = s.recv(4096)
    s.close()
    check(resp.startswith(b"HTTP/1.1 413"), f"declared oversize body is 413: {resp[:20]!r}")
    st, _, _ = request(P, "POST", "/prompt", b"{" + b" " * (1024 * 1024 + 1) + b"}")
    check(st == 413, "oversize JSON body is 413")
    st, _, _ = request(P, "GET", "/prompt", headers={"Origin": "http://evil.example",
                                                     "Host": f"127.0.0.1:{P}"})
    check(st == 403, "foreign Origin against a loopback Host is 403")
    st, _, _ = request(P, "GET", "/prompt", headers={"Origin": f"http://127.0.0.1:{P}"})
    check(st == 200, "same Origin is fine")

    # A client that vanishes mid-run loses nothing for the others.
    carol = WS(P, "carol")
    carol.recv()
    st, j = post_json(P, "/prompt", {"prompt": slow_prompt(20, 10), "client_id": "carol"})
    carol.sock.close()
    st, j2 = post_json(P, "/prompt", {"prompt": text_prompt("after carol"), "client_id": "bob"})
    msgs = bob.until(finished(j2["prompt_id"]))
    check(any(m["type"] == "executed" for m in msgs), "others unaffected by a vanished client")
    st, hist = get_json(P, "/history/" + j["prompt_id"])
    check(hist[j["prompt_id"]]["status"]["status_str"] == "success", "vanished client's prompt ran")
    for w in (alice, bob, anon):
        w.close()

    # ---- shutdown while a prompt runs ----------------------------------------------
    st, j = post_json(P, "/prompt", {"prompt": slow_prompt(100000, 10)})
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = srv.stop()
    check(rc == 0 and time.monotonic() - t0 < 10, f"SIGTERM ends a busy server cleanly (rc {rc})")
    errs = "".join(srv.stderr_lines)
    check("ERROR" not in errs and "runtime error" not in errs, "no sanitizer report")
finally:
    srv.stop()

# ---- auth and CORS --------------------------------------------------------------
srv = Server(EXE, "--auth-token", "s3cret", "--enable-cors-header", "http://app.example",
             "--max-history", "3", "--listen", "localhost")
P = srv.port
try:
    st, h, _ = request(P, "GET", "/prompt")
    check(st == 401 and h.get("www-authenticate") == "Bearer", "401 without token")
    st, _, _ = request(P, "GET", "/prompt", headers={"Authorization": "Bearer nope"})
    check(st == 401, "401 with a wrong token")
    st, h, _ = request(P, "GET", "/prompt", headers={"Authorization": "Bearer s3cret"})
    check(st == 200 and h.get("access-control-allow-origin") == "http://app.example",
          "Bearer token and CORS header")
    st, _, _ = request(P, "GET", "/api/queue?token=s3cret")
    check(st == 200, "?token=")
    st, _, _ = request(P, "POST", "/prompt", {"prompt": text_prompt("x" * 100000)})
    check(st == 401, "401 for a POST with a body, read to its end")
    st, _, _ = request(P, "POST", "/prompt?token=s3cret", {"prompt": text_prompt("t")})
    check(st == 200, "POST with ?token=")
    st, h, _ = request(P, "OPTIONS", "/prompt", headers={"Origin": "http://app.example"})
    check(st == 200 and "access-control-allow-methods" in h, "CORS preflight")
    try:
        WS(P, "x")
        check(False, "websocket without token refused")
    except (WSClosed, ConnectionError, OSError):
        check(True, "websocket without token refused")
    w = WS(P, "x", query="token=s3cret")
    check(w.recv()["type"] == "status", "websocket with ?token=")
    w.close()
    auth = {"Authorization": "Bearer s3cret"}
    ids = []
    for k in range(5):
        st, j = post_json(P, "/prompt", {"prompt": text_prompt(f"h{k}")}, headers=auth)
        ids.append(j["prompt_id"])
    for _ in range(100):
        st, h = get_json(P, "/history", headers=auth)
        if ids[-1] in h:
            break
        time.sleep(0.05)
    check(list(h) == ids[2:], "--max-history keeps the newest entries")
    check(srv.stop(2) == 0, "SIGINT ends an idle server cleanly")
finally:
    srv.stop()

check.done()
