"""Firmware over TFTP: lockstep versus windowsize 16, on provisiond's TftpServer.

    .venv/bin/python bench/tftp_firmware.py [--quick] [--size-mb 50] [--no-netns] [--delay-ms 1]

Serves one random image with provisiond's TftpServer (in a child process) and downloads it
with atftp, first lockstep (blksize 1468, windowsize 1), then windowed (blksize 1468,
windowsize 16), checking sha256 each time; then tftpd-hpa (in.tftpd, bash bench/setup.sh)
lockstep on the same file; prints MB/s of each and the ratios.

On loopback the round trip is ~0 and lockstep is CPU-bound, which says little about a LAN,
so the client's packets are delayed by `--delay-ms` (default 1 ms, 0 for none):
- as root, the bench builds its own pair of network namespaces joined by a veth pair
  (10.213.77.1 and .2, which exist only inside those two namespaces) with `netem delay`
  on the client side, runs the server in one and the client in the other, and removes
  both at the end;
- where that is not possible (`--no-netns`, not root, or a kernel without sch_netem) the
  client talks to the server on 127.0.0.1 through a small userspace relay (a child
  process) that holds each client->server packet for the delay, in order.
The output says which path was used. Targets: windowsize 16 at least 4x tftpd-hpa's
lockstep rate (the boot-storm issue), and at least 3x provisiond's own lockstep (the TFTP
issue), in the same run. Results also go to bench/out/tftp_firmware.json; exit 1 when a
download fails or its sha256 differs. `--quick`: a 5 MB image.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

print = functools.partial(print, flush=True)
SERVER_IP, CLIENT_IP = "10.213.77.1", "10.213.77.2"
IMAGE_NAME = "firmware.bin"
SERVE_SECONDS = 900  # the child server stops by itself after this, whatever happens


@dataclass(frozen=True)
class Place:
    """Where the server listens and how to run a command on each side."""

    label: str
    server_host: str
    server_prefix: tuple[str, ...] = ()
    client_prefix: tuple[str, ...] = ()
    relay_delay_ms: float = 0.0  # > 0: the client goes through the delay relay


class NetemUnavailable(Exception):
    """The kernel has no netem qdisc (e.g. a microVM kernel without sch_netem)."""


def sh(command: str) -> None:
    """Run a setup command (split on spaces); fail loudly with its stderr."""
    subprocess.run(command.split(), check=True, capture_output=True, timeout=30)


@contextmanager
def namespaces(delay_ms: float) -> Iterator[Place]:
    """Two network namespaces joined by a veth pair with netem delay; removed at exit."""
    tag = str(os.getpid())
    srv, cli, vs, vc = f"pvd-srv-{tag}", f"pvd-cli-{tag}", f"pvs{tag}", f"pvc{tag}"
    try:
        sh(f"ip netns add {srv}")
        sh(f"ip netns add {cli}")
        sh(f"ip link add {vs} netns {srv} type veth peer name {vc} netns {cli}")
        for ns, dev, ip in ((srv, vs, SERVER_IP), (cli, vc, CLIENT_IP)):
            sh(f"ip -n {ns} addr add {ip}/30 dev {dev}")
            sh(f"ip -n {ns} link set {dev} up")
            sh(f"ip -n {ns} link set lo up")
        try:
            sh(f"ip netns exec {cli} tc qdisc add dev {vc} root netem delay {delay_ms}ms")
        except subprocess.CalledProcessError as exc:
            raise NetemUnavailable(exc.stderr.decode().strip()) from None
        label = f"network namespaces + veth, netem delay {delay_ms} ms on the client side"
        yield Place(label, SERVER_IP, ("ip", "netns", "exec", srv), ("ip", "netns", "exec", cli))
    finally:
        for ns in (cli, srv):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def loopback(delay_ms: float) -> Place:
    """127.0.0.1, through the delay relay when a delay is asked for."""
    if delay_ms <= 0:
        return Place("plain loopback 127.0.0.1 (RTT ~0: lockstep is CPU-bound)", "127.0.0.1")
    label = f"loopback 127.0.0.1 + userspace relay delaying client packets {delay_ms} ms"
    return Place(label, "127.0.0.1", relay_delay_ms=delay_ms)


# -- the delay relay (child process) -----------------------------------------------------


def relay(server_port: int, host: str, delay_ms: float) -> None:
    """Forward one client at a time to the server; hold client packets `delay_ms`, in order.

    Replies are passed back at once from the relay's own port, so the client sees one
    peer; its later packets go to the server's transfer ID once that is known.
    """
    loop = asyncio.new_event_loop()
    front, back = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    for sock in (front, back):
        sock.bind((host, 0))
        sock.setblocking(False)
    peers: dict[str, tuple[str, int] | None] = {"client": None, "tid": None}
    queue: deque[tuple[float, bytes, tuple[str, int]]] = deque()

    def drain() -> None:
        while queue and queue[0][0] <= loop.time():
            _, data, dest = queue.popleft()
            back.sendto(data, dest)
        if queue:
            loop.call_at(queue[0][0], drain)

    def from_client() -> None:
        with suppress(BlockingIOError):
            while True:
                data, addr = front.recvfrom(70000)
                if addr != peers["client"]:
                    peers["client"], peers["tid"] = addr, None
                queue.append(
                    (loop.time() + delay_ms / 1000, data, peers["tid"] or (host, server_port))
                )
                if len(queue) == 1:
                    loop.call_at(queue[0][0], drain)

    def from_server() -> None:
        with suppress(BlockingIOError):
            while True:
                data, addr = back.recvfrom(70000)
                peers["tid"] = addr
                if peers["client"] is not None:
                    front.sendto(data, peers["client"])

    loop.add_reader(front, from_client)
    loop.add_reader(back, from_server)

    def flush_and_stop() -> None:  # the client's final ACK may still be held
        while queue:
            _, data, dest = queue.popleft()
            back.sendto(data, dest)
        loop.stop()

    loop.add_signal_handler(signal.SIGTERM, flush_and_stop)
    loop.call_later(SERVE_SECONDS, loop.stop)
    print(front.getsockname()[1])
    loop.run_forever()


@contextmanager
def child(args: list[str], prefix: tuple[str, ...] = ()) -> Iterator[int]:
    """Run this script in a child mode; yield the port it prints first."""
    cmd = [*prefix, sys.executable, __file__, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def client_target(place: Place, port: int) -> Iterator[tuple[str, int]]:
    """Where the client sends its request: the server, or the relay in front of it."""
    if place.relay_delay_ms <= 0:
        yield place.server_host, port
        return
    args = [
        "--relay",
        str(port),
        "--host",
        place.server_host,
        "--delay-ms",
        str(place.relay_delay_ms),
    ]
    with child(args) as relay_port:
        yield place.server_host, relay_port


# -- the server side (child process) ----------------------------------------------------


async def serve(image: Path, host: str) -> None:
    """Run provisiond's TftpServer serving `image`; print the port, stop on SIGTERM."""
    from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
    from provisiond.frontends.phone_tftp import TftpConfig, TftpServer

    class ImageHandler:
        def respond(self, request: PhoneRequest) -> PhoneResponse:
            if request.path == IMAGE_NAME:
                return PhoneResponse(Outcome.OK, file=image)
            return PhoneResponse(Outcome.NOT_FOUND)

        async def handle(self, request: PhoneRequest) -> PhoneResponse:
            return self.respond(request)

        async def admit_upload(self, request: PhoneRequest) -> PhoneResponse | int:
            return PhoneResponse(Outcome.FORBIDDEN)

    server = TftpServer(ImageHandler(), TftpConfig(host=host, port=0))
    await server.start()
    print(server.sockname[1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), SERVE_SECONDS)
    await server.stop()
    print(f"  server {server.stats}", file=sys.stderr, flush=True)


@contextmanager
def tftpd_hpa(place: Place, image: Path) -> Iterator[int]:
    """tftpd-hpa serving the image's folder in the foreground; yields its port."""
    port = free_port(place)
    cmd = [
        *place.server_prefix,
        "in.tftpd",
        "--foreground",
        "--listen",
        "--secure",
        "--address",
        f"{place.server_host}:{port}",
        str(image.parent),
    ]
    proc = subprocess.Popen(cmd)
    try:
        time.sleep(0.5)  # it has no readiness signal
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def free_port(place: Place) -> int:
    """A UDP port that is free now (tftpd-hpa cannot report the one it got)."""
    if place.server_prefix:  # a fresh namespace has every port free
        return 16969
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((place.server_host, 0))
        return int(sock.getsockname()[1])


# -- the client side --------------------------------------------------------------------


def sha256(path: Path) -> str:
    """The file's sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def measure(place: Place, port: int, options: list[str], image: Path, label: str) -> float:
    """Fetch the image once with atftp, check its sha256; print and return MB/s."""
    out = image.parent / "out.bin"
    args = [a for option in options for a in ("--option", option)]
    with client_target(place, port) as (host, target_port):
        cmd = [
            *place.client_prefix,
            "atftp",
            *args,
            "-g",
            "-r",
            IMAGE_NAME,
            "-l",
            str(out),
            host,
            str(target_port),
        ]
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{label}: atftp failed: {result.stdout}{result.stderr}")
    if sha256(out) != sha256(image):
        sys.exit(f"{label}: sha256 mismatch")
    out.unlink()
    size = image.stat().st_size
    rate = size / seconds / 1e6
    window = next((int(o.split()[1]) for o in options if o.startswith("windowsize")), 1)
    per_round = seconds / (size / 1468 / window) * 1000  # ms per window (or block)
    print(f"{label:<44} {seconds:8.2f} s {rate:9.2f} MB/s  {per_round:6.3f} ms/window  sha256 ok")
    return rate


def compare(place: Place, image: Path) -> dict[str, float | None]:
    """Lockstep and windowed on provisiond, then the tftpd-hpa reference; MB/s of each."""
    serve_args = ["--serve", str(image), "--host", place.server_host]
    with child(serve_args, place.server_prefix) as port:
        lock = measure(
            place,
            port,
            ["blksize 1468", "windowsize 1"],
            image,
            "provisiond lockstep  blksize 1468 window 1",
        )
        window = measure(
            place,
            port,
            ["blksize 1468", "windowsize 16"],
            image,
            "provisiond windowed  blksize 1468 window 16",
        )
    rates: dict[str, float | None] = {"provisiond_lockstep": lock, "provisiond_window16": window}
    rates["tftpd_hpa_lockstep"] = None
    if shutil.which("in.tftpd") is None:
        print("tftpd-hpa reference: not installed (bash bench/setup.sh)")
        return rates
    with tftpd_hpa(place, image) as port:
        rates["tftpd_hpa_lockstep"] = measure(
            place, port, ["blksize 1468"], image, "tftpd-hpa lockstep   blksize 1468"
        )
    return rates


RATIOS = (  # (name, numerator, denominator, target or None)
    ("provisiond window 16 / tftpd-hpa lockstep", "provisiond_window16", "tftpd_hpa_lockstep", 4.0),
    (
        "provisiond window 16 / provisiond lockstep",
        "provisiond_window16",
        "provisiond_lockstep",
        3.0,
    ),
    ("provisiond lockstep / tftpd-hpa lockstep", "provisiond_lockstep", "tftpd_hpa_lockstep", None),
)


def report(rates: dict[str, float | None]) -> dict[str, dict[str, float | None]]:
    """Print the ratios with their targets; return them for the JSON."""
    out: dict[str, dict[str, float | None]] = {}
    print()
    for name, top, bottom, target in RATIOS:
        a, b = rates[top], rates[bottom]
        if a is None or b is None:
            continue
        ratio = a / b
        out[name] = {"ratio": ratio, "target": target}
        goal = "" if target is None else f"  (target >= {target:.0f}x: "
        goal += "" if target is None else ("met)" if ratio >= target else "NOT met)")
        print(f"{name:<44} {ratio:6.2f}x{goal}")
    return out


def write_json(args: argparse.Namespace, path_label: str, rates: dict[str, float | None]) -> None:
    """bench/out/tftp_firmware.json (git-ignored)."""
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    data = {
        "benchmark": "tftp_firmware",
        "size_mb": args.size_mb,
        "delay_ms": args.delay_ms,
        "path": path_label,
        "mb_per_s": rates,
        "ratios": report(rates),
        "correct": True,  # any sha256 mismatch or atftp failure exits 1 before this
    }
    target = out / "tftp_firmware.json"
    target.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results: {target}")


def run(args: argparse.Namespace) -> None:
    """The whole bench: make the image, pick the path, compare, report."""
    if shutil.which("atftp") is None:
        sys.exit("atftp is missing: bash bench/setup.sh")
    with tempfile.TemporaryDirectory(prefix="tftp-bench-") as tmp:
        os.chmod(tmp, 0o755)  # tftpd-hpa drops to its own user
        image = Path(tmp) / IMAGE_NAME
        with image.open("wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        image.chmod(0o644)
        print(f"image {args.size_mb} MB; client atftp")
        if want_netns(args):
            try:
                with namespaces(args.delay_ms) as place:
                    print(f"path: {place.label}")
                    write_json(args, place.label, compare(place, image))
                return
            except NetemUnavailable as exc:
                print(f"netem unavailable ({exc}); falling back to loopback")
        place = loopback(args.delay_ms)
        print(f"path: {place.label}")
        write_json(args, place.label, compare(place, image))


def want_netns(args: argparse.Namespace) -> bool:
    """Namespaces need root, iproute2 and a delay to apply."""
    if args.no_netns or args.delay_ms <= 0:
        return False
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
        print("network namespaces need root and iproute2; falling back to loopback")
        return False
    return True


def main() -> None:
    """Parse arguments; `--serve` and `--relay` are the child processes' entry points."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a 5 MB image")
    parser.add_argument("--no-netns", action="store_true", help="loopback (+ delay relay)")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="0: no added delay")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size_mb = min(args.size_mb, 5)
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.host))
    elif args.relay is not None:
        relay(args.relay, args.host, args.delay_ms)
    else:
        run(args)


if __name__ == "__main__":
    main()
