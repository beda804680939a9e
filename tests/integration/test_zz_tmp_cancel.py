# TEMPORARY (image helper's own checks; deleted after the run)
import time, threading, grpc, re
from test_images import *  # noqa

def test_deadline_and_cancel(make_crid, reg, proxy, images):
    image = images["big"]
    proxy.stall_digests = {image.layers[1].digest}
    proxy.stall_after = 64 * 1024
    proxy.stall_timeout = 30.0
    crid = make_crid({proxy.host: {"insecure": True}}, image={"pull_progress_timeout": 0})
    ref = f"{proxy.host}/crid/big:1"
    t0 = time.monotonic()
    err = pull_error(crid, ref, timeout=3)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # the server side gives up soon after
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "DEADLINE_EXCEEDED" not in crid.log_text():
        time.sleep(0.2)
    assert "DEADLINE_EXCEEDED" in crid.log_text(), crid.log_tail()
    print("server noticed after", time.monotonic() - t0)
    time.sleep(1)
    assert store_leftovers(crid) == [], store_leftovers(crid)
    # cancel
    proxy.stalled.clear()
    pb = crid.api.pb
    fut = crid.image.PullImage.future(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=60)
    assert proxy.stalled.wait(20)
    fut.cancel()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "CANCELLED" not in crid.log_text():
        time.sleep(0.2)
    assert "CANCELLED" in crid.log_text(), crid.log_tail()
    time.sleep(1)
    assert store_leftovers(crid) == [], store_leftovers(crid)
    proxy.release.set()
    proxy.stall_digests = set()
    img = checked_pull(crid, ref, image)
    print([l for l in crid.log_text().splitlines() if "PullImage" in l][-12:])
