#!/usr/bin/env python3
"""Benchmark of the function runtime: scar-supervisor beside SCAR's own supervisor,
faas-supervisor 1.5.8, on the same S3 event, script and moto.

Each invocation is a whole process, cold start included, as Lambda starts a fresh sandbox:
  scar-supervisor --event EVENT.json --config FUNCTION.json        (its local mode: the same
                                                                    code path as in Lambda)
  python -c 'faassupervisor.supervisor.main(event, context)'       (its Lambda entry point, as
                                                                    SCAR's images call it, with
                                                                    the configuration in FDL)
Both download the input from moto's S3, run `wc -c < "$INPUT_FILE_PATH"` into an output file,
and upload that output to moto. Wall time is measured around the process; peak RSS is the
process's own, as GNU time reports it (the largest of it and its children, such as the script:
`wc`, small beside either supervisor).

Also: the bytes each adds to an image, and the time from process start to the script's first
instruction (a script that prints the clock; no S3: the event carries the input's bytes).

Usage: bench-supervisor.py SUPERVISOR FAAS_PYTHON MOTO_ENDPOINT [--runs N] [--big-runs N]
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3  # from the faas-supervisor venv: its own dependency

TIME = "/usr/bin/time"  # GNU time (Debian's `time`)
SIZES = [("1 KB", 1024), ("10 MB", 10 * 1024 * 1024), ("1 GB", 1024 * 1024 * 1024)]
SCRIPT = 'wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/count.txt"\n'


def run(cmd, env, cwd):
    """Runs cmd; answers (seconds, peak RSS in MB, exit status, stderr tail).

    The process is started by GNU time, a small parent: the kernel counts a child's RSS from
    before its exec too, so a child forked from this Python process (tens of MB) would report
    at least that. Peak RSS is the process's own, or its largest child's (the script's).
    """
    err = tempfile.NamedTemporaryFile()
    rss = tempfile.NamedTemporaryFile()
    start = time.perf_counter()
    p = subprocess.run([TIME, "-f", "%M", "-o", rss.name, "--", *cmd], env=env, cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=err)
    took = time.perf_counter() - start
    err.seek(0)
    tail = err.read()[-600:].decode(errors="replace")
    peak_kb = int(open(rss.name).read().split()[-1])
    return took, peak_kb / 1024, p.returncode, tail


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    a = argparse.ArgumentParser()
    a.add_argument("supervisor")
    a.add_argument("faas_python")
    a.add_argument("moto")
    a.add_argument("--runs", type=int, default=20)
    a.add_argument("--big-runs", type=int, default=3)
    args = a.parse_args()

    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL": args.moto, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "NO_PROXY": "127.0.0.1,localhost",
    })
    env.pop("AWS_PROFILE", None)
    env.pop("SCAR_CONFIG", None)
    s3 = boto3.client("s3", endpoint_url=args.moto, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    for b in ("bench-in", "bench-out"):
        s3.create_bucket(Bucket=b)

    work = tempfile.mkdtemp(prefix="scar-bench-")
    script_path = os.path.join(work, "script.sh")
    with open(script_path, "w") as f:
        f.write(SCRIPT)
    config = {"stack": "bench", "function": "count", "script": SCRIPT, "timeout_threshold": 10,
              "timeout": 900, "outputs": [{"bucket": "bench-out", "prefix": "scar/"}]}
    with open(os.path.join(work, "function.json"), "w") as f:
        json.dump(config, f)
    fdl = {"name": "count", "init_script": script_path, "log_level": "INFO",
           "container": {"image": "bench/count", "timeout_threshold": 10},
           "input": [{"storage_provider": "s3", "path": "bench-in/in"}],
           "output": [{"storage_provider": "s3", "path": "bench-out/faas"}]}
    faas_env = dict(env)
    faas_env.update({
        "AWS_EXECUTION_ENV": "AWS_Lambda_Image",
        "FDL": base64.b64encode(json.dumps(fdl).encode()).decode(),
        "AWS_LAMBDA_FUNCTION_NAME": "count",
    })
    faas_driver = (
        "import json, sys, time\n"
        "import faassupervisor.supervisor as s\n"
        "class Context:\n"
        "    aws_request_id = 'req-1'; memory_limit_in_mb = 1024; function_name = 'count'\n"
        "    log_group_name = '/aws/lambda/count'; log_stream_name = 'bench'\n"
        "    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:count'\n"
        "    def get_remaining_time_in_millis(self): return 900000\n"
        "r = s.main(json.load(open(sys.argv[1])), Context())\n"
        "sys.exit(0 if r and r.get('statusCode') == 200 else 1)\n"
    )

    rows = []
    for label, size in SIZES:
        key = f"in/object-{size}.bin"
        blob = os.path.join(work, "blob")
        with open(blob, "wb") as f:
            chunk = os.urandom(1024 * 1024)
            left = size
            while left > 0:
                f.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
        s3.upload_file(blob, "bench-in", key)
        os.remove(blob)
        event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                              "eventTime": "2026-11-29T12:00:00.000Z", "eventName": "ObjectCreated:Put",
                              "s3": {"s3SchemaVersion": "1.0", "configurationId": "bench",
                                     "bucket": {"name": "bench-in", "arn": "arn:aws:s3:::bench-in"},
                                     "object": {"key": key, "size": size}}}]}
        event_path = os.path.join(work, "event.json")
        with open(event_path, "w") as f:
            json.dump(event, f)
        runs = args.runs if size < 1024 ** 3 else args.big_runs
        result = {}
        for name, cmd, e in (
            ("scar", [args.supervisor, "--event", event_path, "--config", os.path.join(work, "function.json")], env),
            ("faas", [args.faas_python, "-c", faas_driver, event_path], faas_env),
        ):
            times, rss = [], []
            for _ in range(runs):
                took, peak, code, tail = run(cmd, e, work)
                if code != 0:
                    sys.exit(f"{name} failed on {label} (exit {code}):\n{tail}")
                times.append(took)
                rss.append(peak)
            result[name] = (median(times), max(rss))
            print(f"  {label:>6} {name:>4}: median {median(times) * 1000:8.1f} ms over {runs}, peak RSS {max(rss):6.1f} MB",
                  file=sys.stderr)
        got = s3.get_object(Bucket="bench-out", Key="scar/count.txt")["Body"].read().strip()
        want = s3.get_object(Bucket="bench-out", Key="faas/count.txt")["Body"].read().strip()
        if int(got) != size or int(want) != size:
            sys.exit(f"wrong output for {label}: scar {got!r}, faas {want!r}")
        s3.delete_object(Bucket="bench-in", Key=key)
        rows.append((label, result, runs))

    # Process start to the script's first instruction: the script writes the clock first.
    first = os.path.join(work, "first.json")
    with open(first, "w") as f:
        json.dump(dict(config, script='date +%s%N > "$MARK"\n', outputs=[]), f)
    with open(os.path.join(work, "data.json"), "w") as f:
        json.dump({"data": base64.b64encode(b"hi").decode()}, f)
    mark = os.path.join(work, "started")
    starts = []
    for _ in range(args.runs):
        before = time.time_ns()
        subprocess.run([args.supervisor, "--event", "data.json", "--config", first],
                       env=dict(env, MARK=mark), cwd=work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        with open(mark) as m:
            starts.append((int(m.read().strip()) - before) / 1e6)
    print("| input | scar-supervisor | faas-supervisor 1.5.8 | faster | scar peak RSS | faas peak RSS |")
    print("|---|---|---|---|---|---|")
    for label, r, runs in rows:
        (st, sr), (ft, fr) = r["scar"], r["faas"]
        print(f"| {label} (median of {runs}) | {st * 1000:.0f} ms | {ft * 1000:.0f} ms | {ft / st:.1f}x | {sr:.1f} MB | {fr:.1f} MB |")
    if starts:
        print(f"\nprocess start to the script's first instruction: median {median(starts):.1f} ms over {len(starts)}")


if __name__ == "__main__":
    main()
