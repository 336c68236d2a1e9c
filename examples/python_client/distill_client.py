#!/usr/bin/env python3
"""Drive a distilld daemon from Python over its Thrift IDL.

Generate the bindings first (Debian: thrift-compiler, python3-thrift):

    thrift --gen py -out gen-py daemon/rpc/distill.thrift
    PYTHONPATH=gen-py python3 examples/python_client/distill_client.py \
        --socket STATE/control.sock pipelines/import.yaml

It submits the pipeline, starts it (or a new run if the last one completed),
waits for the run to end, and prints its per-step counters.
"""
import argparse
import os
import sys
import time

from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

from distill_rpc import Distill
from distill_rpc.ttypes import (InvalidPipeline, OperationError, PipelineState, StartOptions,
                                SubmitRequest)


def connect(socket_path):
    """A client on the daemon's UNIX socket: framed transport, binary protocol."""
    transport = TTransport.TFramedTransport(TSocket.TSocket(unix_socket=socket_path))
    client = Distill.Client(TBinaryProtocol.TBinaryProtocol(transport))
    transport.open()
    return client, transport


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the daemon's control.sock")
    parser.add_argument("pipeline", help="pipeline YAML file")
    args = parser.parse_args()

    client, transport = connect(args.socket)
    health = client.health()
    print(f"daemon {health.version}, API {health.api_version}, up {health.uptime_s:.0f} s")

    path = os.path.abspath(args.pipeline)
    with open(path, encoding="utf-8") as f:
        yaml = f.read()
    try:
        submitted = client.submit(SubmitRequest(yaml=yaml, file=path))
    except InvalidPipeline as e:
        for d in e.diagnostics:
            print(d.text, file=sys.stderr)
        return 5
    name = submitted.name
    print(f"submitted {name}, revision {submitted.revision}")

    info = client.list_pipelines()
    done = {PipelineState.COMPLETED, PipelineState.FAILED, PipelineState.STOPPED, PipelineState.PAUSED}
    new_run = any(p.name == name and p.state == PipelineState.COMPLETED for p in info)
    client.start(name, StartOptions(new_run=new_run))
    while True:
        status = client.status(name)
        if status.info.state in done:
            break
        time.sleep(0.2)

    state = PipelineState._VALUES_TO_NAMES[status.info.state].lower()
    print(f"pipeline {name}: {state}, run {status.info.run}, {status.info.records_read} records read")
    for step in status.steps:
        print(f"  {step.step}: in {step.records_in}, kept {step.kept}, dropped {step.dropped}")
        for reason, count in sorted(step.drops_by_reason.items()):
            print(f"  {step.step}: dropped {reason} {count}")

    try:
        client.status("nope")
    except OperationError as e:
        print(f"as expected: {e.message}")
    transport.close()
    return 0 if status.info.state == PipelineState.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
