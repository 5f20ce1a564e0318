"""``python -m kubesim``: the simulator's command line.

It prints one line ``KUBESIM_URL=<url>`` on stdout once it listens (with ``--listen
127.0.0.1:0`` the port is picked by the kernel), so a parent process can read the address.
SIGTERM and SIGINT stop it cleanly (watches closed, the state file written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from kubesim.persist import StateError
from kubesim.state import SimConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT (port 0 picks one)")
    p.add_argument("--token", default="sim-admin-token", help="bearer token with full rights")
    p.add_argument("--readonly-token", default="", help="bearer token that may only read")
    p.add_argument("--anonymous-auth", choices=("true", "false"), default="true",
                   help="false: a request without a token is 401 instead of 403")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed cert")
    p.add_argument("--write-kubeconfig", default="", metavar="PATH",
                   help="write a kubeconfig for the admin token here")
    p.add_argument("--nodes", type=int, default=0, help="create a GPU pool gpu001.. of N nodes")
    p.add_argument("--gpus", type=int, default=8, help="GPUs per pool node")
    p.add_argument("--pods", type=int, default=0, help="start N one-GPU pods over the pool")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to API calls")
    p.add_argument("--history", type=int, default=200_000, help="watch history window (events)")
    p.add_argument("--state-file", default="", metavar="PATH",
                   help="keep objects and resourceVersions here across restarts, as etcd does")


async def serve(args: argparse.Namespace) -> None:
    from kubesim.client import SimClient
    from kubesim.server import SimServer

    host, _, port = args.listen.rpartition(":")
    config = SimConfig(token=args.token, readonly_token=args.readonly_token,
                       anonymous=args.anonymous_auth == "true", latency=args.latency,
                       history=args.history, state_file=args.state_file)
    server = SimServer(config, tls=args.tls)
    url = await server.start(host or "127.0.0.1", int(port))
    if args.write_kubeconfig:
        server.write_kubeconfig(args.write_kubeconfig)
    if args.nodes or args.pods:
        async with SimClient(url, args.token, ca_file=server.cert) as client:
            if args.nodes:
                await client.pool(args.nodes, gpus=args.gpus)
            if args.pods:
                await client.fill_pods(args.pods)
    print(f"KUBESIM_URL={url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args))
    except StateError as exc:
        print(f"kubesim: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubesim",
        description="A Kubernetes API server simulator (test infrastructure)")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
