#!/usr/bin/env python3
"""Bounded load test of `vkflow serve` on 127.0.0.1: 20 websocket clients,
300 prompts posted from 8 threads (some failing, some without a client),
polling of /queue and /history meanwhile.  Every prompt must finish with
success or an error on its own client's socket only, and the history must
agree."""
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvlib import WS, Checker, Server, get_json, post_json, text_prompt

EXE = sys.argv[1]
N_CLIENTS, N_PROMPTS, DEADLINE = 20, 300, 90
check = Checker("server_load")
srv = Server(EXE, "--max-history", "10000")
P = srv.port
t_start = time.monotonic()

FAIL = {"1": {"class_type": "TestFail", "inputs": {"message": "planned"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}


def plan(i):
    """(client index or None, prompt, expected output or None for an error)."""
    client = None if i % 25 == 7 else i % N_CLIENTS
    if i % 17 == 3:
        return client, FAIL, None
    return client, text_prompt(f"prompt {i}"), f"prompt {i}"


try:
    sockets = [WS(P, f"client{c}") for c in range(N_CLIENTS)]
    for w in sockets:
        check(w.recv()["type"] == "status", "status on connect")
    received = [[] for _ in range(N_CLIENTS)]
    stop = threading.Event()

    def reader(c):
        w = sockets[c]
        while not stop.is_set():
            try:
                received[c].append(w.recv(0.2))
            except TimeoutError:
                continue
            except Exception as e:  # noqa: BLE001 - reported below
                received[c].append({"type": "reader_error", "data": str(e)})
                return

    readers = [threading.Thread(target=reader, args=(c,), daemon=True) for c in range(N_CLIENTS)]
    for t in readers:
        t.start()

    posted = {}
    lock = threading.Lock()

    def post(i):
        client, prompt, want = plan(i)
        body = {"prompt": prompt}
        if client is not None:
            body["client_id"] = f"client{client}"
        st, j = post_json(P, "/prompt", body)
        with lock:
            posted[i] = (st, j, client, want)

    def poll():
        while not stop.is_set():
            st1, _ = get_json(P, "/queue")
            st2, _ = get_json(P, "/history?max_items=5")
            if st1 != 200 or st2 != 200:
                check(False, "polling failed")
                return
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(N_PROMPTS)))
    check(all(v[0] == 200 for v in posted.values()), "every POST /prompt accepted")
    pid_of = {i: v[1]["prompt_id"] for i, v in posted.items()}
    by_pid = {pid: i for i, pid in pid_of.items()}

    # Wait for the queue to drain and the history to fill.
    hist = {}
    while time.monotonic() - t_start < DEADLINE:
        st, q = get_json(P, "/prompt")
        st, hist = get_json(P, "/history")
        if q["exec_info"]["queue_remaining"] == 0 and len(hist) >= N_PROMPTS:
            break
        time.sleep(0.1)
    check(len(hist) == N_PROMPTS, f"history has {len(hist)} of {N_PROMPTS} prompts")

    def all_finished():
        """Every client has seen "executing null" for each of its prompts."""
        for c in range(N_CLIENTS):
            mine = {pid_of[i] for i, v in posted.items() if v[2] == c}
            done = {m["data"].get("prompt_id") for m in list(received[c])
                    if isinstance(m, dict) and m["type"] == "executing"
                    and m["data"].get("node") is None}
            if not mine <= done:
                return False
        return True

    # The last messages go out just after the history is written.
    while not all_finished() and time.monotonic() - t_start < DEADLINE:
        time.sleep(0.05)
    stop.set()
    for t in readers + [poller]:
        t.join(5)

    ok_hist = True
    for i, pid in pid_of.items():
        rec = hist.get(pid)
        _, _, client, want = posted[i]
        if not rec:
            ok_hist = False
            continue
        s = rec["status"]
        if want is None:
            ok_hist &= s["status_str"] == "error" and s["messages"][-1][0] == "execution_error"
        else:
            ok_hist &= (s["status_str"] == "success" and rec["outputs"] == {"2": {"text": [want]}}
                        and rec["prompt"][1] == pid)
    check(ok_hist, "history agrees with every prompt's outcome")

    # Each client saw exactly its own prompts, each ending with executing null.
    routing_ok = finished_ok = True
    for c in range(N_CLIENTS):
        msgs = [m for m in received[c] if isinstance(m, dict)]
        check(not any(m["type"] == "reader_error" for m in msgs), f"client{c} socket stayed up")
        mine = {pid_of[i] for i, v in posted.items() if v[2] == c}
        seen, done = set(), set()
        for m in msgs:
            pid = m.get("data", {}).get("prompt_id")
            if m["type"] in ("execution_start", "executing", "executed", "execution_success",
                             "execution_error", "execution_cached"):
                seen.add(pid)
            if m["type"] == "executing" and m["data"]["node"] is None:
                done.add(pid)
        routing_ok &= seen <= mine
        finished_ok &= done == mine
    check(routing_ok, "no client got another client's prompt events")
    check(finished_ok, "every client saw all its prompts finish")
    st, q = get_json(P, "/queue")
    check(q == {"queue_running": [], "queue_pending": []}, "queue empty at the end")
    for w in sockets:
        w.close()
    rc = srv.stop()
    check(rc == 0, f"clean shutdown (rc {rc})")
    check(time.monotonic() - t_start < DEADLINE, "within the time bound")
finally:
    srv.stop()
check.done()
