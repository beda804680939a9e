"""Fixtures of crid's integration tests; the machinery lives in cridtest.py.

- ``api`` (session): the stubs generated from cri-api/api.proto.
- ``pb``: the api_pb2 module (request/response messages).
- ``crid_factory``: ``crid_factory(**Crid kwargs, start=True)`` -> a Crid;
  every instance is stopped and its temp dir removed after the test, and
  for a failed test the tail of each instance's log is printed.
- ``crid``: one started crid with the default test config.

Set CRID_TEST_KEEP=1 to keep the temp dirs of failed tests.
"""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cridtest  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(request):
    for when in ("setup", "call"):
        report = getattr(request.node, "rep_" + when, None)
        if report is not None and report.failed:
            return True
    return False


@pytest.fixture(scope="session")
def api():
    if not cridtest.CRID_BIN.exists():
        pytest.exit(f"{cridtest.CRID_BIN} is missing: run `make all` first", returncode=2)
    out = tempfile.mkdtemp(prefix="crid-stubs-", dir="/tmp")
    try:
        yield cridtest.load_api(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def pb(api):
    return api.pb


@pytest.fixture
def crid_factory(api, request):
    instances = []

    def make(start=True, **kwargs):
        instance = cridtest.Crid(api, **kwargs)
        instances.append(instance)
        if start:
            instance.start()
        return instance

    yield make

    failed = _failed(request)
    keep = failed and os.environ.get("CRID_TEST_KEEP") == "1"
    for instance in instances:
        try:
            instance.cleanup(keep=True)  # stops it; the dir goes below
        finally:
            if failed:
                # pytest shows this captured output with the failure.
                print(instance.log_tail())
                if keep:
                    print(f"kept {instance.dir}")
            if not keep:
                shutil.rmtree(instance.dir, ignore_errors=True)


@pytest.fixture
def crid(crid_factory):
    return crid_factory()
