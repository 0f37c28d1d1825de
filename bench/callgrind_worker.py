#!/usr/bin/env python3
# A ferricorn worker without its master: the listening socket and the
# control socket passed as the master passes them (fds and environment).
import os, socket, subprocess, sys, threading
port, out, binary = int(sys.argv[1]), sys.argv[2], sys.argv[3]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1024)
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
os.dup2(listener.fileno(), 20)
os.dup2(theirs.fileno(), 21)
env = dict(os.environ, FERRICORN_WORKER_ID="1", FERRICORN_LISTEN_FDS="20", FERRICORN_CONTROL_FD="21")
worker = subprocess.Popen(
    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
     "--bind", f"127.0.0.1:{port}", "-w", "1", "--log-level", "warning"],
    env=env, pass_fds=(20, 21))
threading.Thread(target=lambda: [None for _ in iter(lambda: ours.recv(4096), b"")], daemon=True).start()
worker.wait()
