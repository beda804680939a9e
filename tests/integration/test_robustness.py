"""Regression tests of crid under hostile conditions."""

import socket
import time

import cridtest


def test_api_survives_file_descriptor_exhaustion(crid_factory, pb):
    """Idle connections up to crid's open-files limit used to stop gRPC's
    listener for good ("Failed accept4: Too many open files"): crid now
    accepts itself, sheds connections while it has no descriptor, and
    serves new clients once descriptors are free again."""
    crid = crid_factory(start=False)
    command = crid.launch_command
    crid.launch_command = lambda: ["prlimit", "--nofile=160:160", "--", *command()]
    crid.start()
    flood = []
    try:
        for _ in range(400):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(str(crid.sock))
            except OSError:
                s.close()
                continue
            flood.append(s)
        cridtest.wait_for(lambda: "refusing connections until descriptors free up"
                          in crid.log_text(), timeout=10, message="the shedding warning")
        assert crid.running()
    finally:
        for s in flood:
            s.close()
    channel = crid.new_channel()
    try:
        stub = crid.api.grpc.RuntimeServiceStub(channel)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert stub.Version(pb.VersionRequest(), timeout=2).runtime_name == "crid"
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        channel.close()
