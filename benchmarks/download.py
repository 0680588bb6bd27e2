"""Download throughput and resume cost of `dinsar.download` against the local HTTPS test server.

1. Throughput: 4 files fetched by 4 parallel processes (as 4 Snakemake download jobs would,
   `downloads=4`), against `curl` fetching the same files, 4 in parallel, from the same server.
   The server runs in its own process, so neither client competes with it for the GIL.
   Ours verifies the md5 while receiving and fsyncs each file before renaming it; curl does
   neither, so curl followed by md5sum, and by md5sum and sync, are timed too.
   Reported: MB/s of each and the ratios ours / curl (median of per-round ratios).
2. Resume: the server cuts the connection (FIN) once half of the file is sent; the downloader
   resumes with Range. Reported: bytes the server sent beyond the file size (= bytes received
   twice), against the chunk size (download.chunk_mb). The RST case is reported too: there the
   kernel also throws away bytes the client had not read yet, which no client can keep.

    .venv/bin/python benchmarks/download.py [--size-mb 256] [--repeat 3] [--chunk-mb 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

import requests  # noqa: E402

from dinsar.config import Download, Network  # noqa: E402
from dinsar.download import MiB, Target, download, md5_file  # noqa: E402
from dinsar.net import pin_ca_bundle  # noqa: E402


def _serve(folder: str, tls_dir: str, ready: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    """Server process: files of ``folder`` under /files/<name>, with Range."""
    from harness.server import LocalHTTPSServer, Request, bytes_response, text_response
    from harness.tls import make_tls

    tls = make_tls(Path(tls_dir))

    def handler(request: Request):
        path = Path(folder) / request.path.removeprefix("/files/")
        if not path.is_file():
            return text_response("no such file\n", 404)
        return bytes_response(request, path, chunk_size=256 * 1024)

    with LocalHTTPSServer(tls.server_context) as server:
        server.add_route("GET", "/files/", handler)
        ready.put((server.url, str(tls.ca_pem)))
        stop.wait()


def _ours(
    url: str, dest: str, ca: str, chunk: int, md5: str, go: mp.Event, times: mp.Queue
) -> None:  # type: ignore[type-arg]
    """One download process (= one Snakemake download job), timed from a common start signal.

    The interpreter start-up is left out (curl has none to speak of); the md5 check against
    the inventory's checksum is included, as in a real SLC download.
    """
    session = pin_ca_bundle(requests.Session(), ca)
    go.wait()
    started = time.time()
    download(Target(url, Path(dest), md5=md5), session, Network(timeout=60),
             Download(chunk_mb=chunk / MiB))  # fmt: skip
    times.put((started, time.time()))


def throughput(
    base: str, ca: str, names: list[str], size: int, out: Path, chunk: int, md5s: dict[str, str]
) -> tuple[float, float, float, float]:
    """(ours, curl, curl + md5sum, curl + md5sum + sync) in MB/s, ``names`` 4 at a time."""
    for f in out.glob("*"):
        f.unlink()
    ctx = mp.get_context("spawn")
    go, times = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_ours,
            args=(f"{base}/files/{n}", str(out / f"ours-{n}"), ca, chunk, md5s[n], go, times),
        )
        for n in names
    ]
    for proc in procs:
        proc.start()
    time.sleep(3)  # let the interpreters start
    go.set()
    spans = [times.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    ours = len(names) * size / (max(e for _, e in spans) - min(s for s, _ in spans)) / 1e6
    for f in out.glob("*"):
        f.unlink()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                "curl",
                "-sS",
                "--fail",
                "--cacert",
                ca,
                "-o",
                str(out / f"curl-{n}"),
                f"{base}/files/{n}",
            ]
        )
        for n in names
    ]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("curl failed")
    curl_s = time.perf_counter() - started
    # curl does not verify anything: the same job with the check ours does (md5 of each file)
    started = time.perf_counter()
    checks = [
        subprocess.Popen(["md5sum", str(out / f"curl-{n}")], stdout=subprocess.DEVNULL)
        for n in names
    ]
    if any(p.wait() != 0 for p in checks):
        raise SystemExit("md5sum failed")
    md5_s = time.perf_counter() - started
    # ours also fsyncs each file before the atomic rename (a crash must not leave an empty zip)
    started = time.perf_counter()
    if subprocess.call(["sync", *[str(out / f"curl-{n}") for n in names]]) != 0:
        raise SystemExit("sync failed")
    sync_s = time.perf_counter() - started
    total = len(names) * size / 1e6
    return ours, total / curl_s, total / (curl_s + md5_s), total / (curl_s + md5_s + sync_s)


def resume_cost(size: int, chunk: int, reset: bool) -> dict[str, int]:
    """Cut the first transfer at 50% and resume; bytes the server sent beyond the file size."""
    from harness.server import LocalHTTPSServer, Request, bytes_response
    from harness.tls import make_tls

    data = os.urandom(size)
    drops = [size // 2]
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_tls(Path(tmp) / "tls")

        def handler(request: Request):
            drop = drops.pop() if drops else None
            return bytes_response(request, data, drop_after=drop, reset=reset)

        with LocalHTTPSServer(tls.server_context) as server:
            server.add_route("GET", "/file", handler)
            session = pin_ca_bundle(requests.Session(), str(tls.ca_pem))
            outcome = download(
                Target(server.url + "/file", Path(tmp) / "file", size),
                session,
                Network(backoff=0.01),
                Download(chunk_mb=chunk / MiB),
            )
            sent = [e.bytes_sent for e in server.requests("/file")]
    return {
        "first_request_bytes": sent[0],
        "resumed_at": outcome.offsets[1],
        "server_bytes_beyond_size": sum(sent) - size,
        "chunk_bytes": chunk,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=256, help="size of each of the 4 files")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-mb", type=float, default=8.0, help="download.chunk_mb")
    args = parser.parse_args()
    size, chunk = args.size_mb * MiB, int(args.chunk_mb * MiB)
    load = [round(v, 2) for v in os.getloadavg()]
    names = [f"file{i}.bin" for i in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "served", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        for name in names:
            with open(folder / name, "wb") as handle:
                for _ in range(args.size_mb):
                    handle.write(os.urandom(MiB))
        ctx = mp.get_context("spawn")
        ready, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(target=_serve, args=(str(folder), str(Path(tmp) / "tls"), ready, stop))
        server.start()
        try:
            base, ca = ready.get(timeout=60)
            md5s = {n: md5_file(folder / n) for n in names}
            rounds = [
                throughput(base, ca, names, size, out, chunk, md5s) for _ in range(args.repeat)
            ]
            for name in names:  # sanity: the bytes arrived intact
                assert md5_file(out / f"curl-{name}") == md5_file(folder / name)
        finally:
            stop.set()
            server.join(10)
    result = {
        "files": f"4 x {args.size_mb} MiB, 4 in parallel, chunk {args.chunk_mb} MiB",
        "load_average_before": load,
        "ours_MBps": round(statistics.median(r[0] for r in rounds), 1),
        "curl_MBps": round(statistics.median(r[1] for r in rounds), 1),
        "curl_then_md5sum_MBps": round(statistics.median(r[2] for r in rounds), 1),
        "curl_then_md5sum_then_sync_MBps": round(statistics.median(r[3] for r in rounds), 1),
        # per-round ratios: the machine's load changes between rounds, not within one
        "ratio_ours_to_curl": round(statistics.median(r[0] / r[1] for r in rounds), 3),
        "ratio_ours_to_curl_then_md5sum": round(statistics.median(r[0] / r[2] for r in rounds), 3),
        "ratio_ours_to_curl_md5sum_sync": round(statistics.median(r[0] / r[3] for r in rounds), 3),
        "rounds_MBps_ours_curl_curlmd5_curlmd5sync": [[round(v, 1) for v in r] for r in rounds],
        "resume_after_fin_at_50pct": resume_cost(64 * MiB, chunk, reset=False),
        "resume_after_rst_at_50pct": resume_cost(64 * MiB, chunk, reset=True),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
