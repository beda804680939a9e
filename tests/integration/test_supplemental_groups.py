"""SupplementalGroupsPolicy end to end on crun and runc: crid advertises it
in Status, Merge (the default) adds the groups that the image's /etc/group
gives the user, Strict leaves them out, and ContainerStatus.user reports
the identity the process really has, also after a restart of crid and for
a container recorded by a crid that did not keep it yet.

The image is test_containers' busybox: its user "member" (uid 1001, gid
1001) is listed in two groups of /etc/group (tests/fixtures/
build_images.py).  What the process has is read from the kernel: the
Uid/Gid/Groups lines of /proc/<pid>/status of the container's init and of
an exec'd process.
"""

import json
import re
import signal

from test_container_features import env, finish, linux_config  # noqa: F401
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    _exec_text,
    build_images,
    handler,
    podenv_factory,
)

MEMBER = build_images.MEMBER_UID
IMAGE_GROUPS = build_images.MEMBER_IMAGE_GROUPS
EXTRA = 1234


def identity(text):
    """(uid, gid, sorted groups) of /proc/<pid>/status text: the real ids
    and the supplementary groups the kernel holds (it keeps them sorted)."""
    fields = dict(re.findall(r"^(Uid|Gid|Groups):\s*(.*)$", text, re.MULTILINE))
    return (int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0]),
            sorted(int(g) for g in fields["Groups"].split()))


def process_identities(env, container_id):
    """The identity of the container's init and of an exec'd process; they
    must agree (exec runs with config.json's user)."""
    init = identity(_exec_text(env, container_id, "cat /proc/1/status"))
    exec_ = identity(_exec_text(env, container_id, "cat /proc/self/status"))
    assert init == exec_, (init, exec_)
    return init


def reported(env, container_id):
    """ContainerStatus.user as (uid, gid, supplemental_groups in order)."""
    status = env.status(container_id).status
    assert status.HasField("user") and status.user.HasField("linux"), status
    user = status.user.linux
    return user.uid, user.gid, list(user.supplemental_groups)


def run_sleeper(env, sandbox_id, sandbox_config, name, **security):
    linux = linux_config(env.pb, **security) if security else None
    return env.run(sandbox_id, sandbox_config, name, ["/bin/sleep", "1000"], linux=linux)


def test_status_advertises_the_feature(crid, pb):
    response = crid.runtime.Status(pb.StatusRequest(), timeout=10)
    assert response.HasField("features")
    assert response.features.supplemental_groups_policy


def test_merge_and_strict(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("groups", handler)
    uid = pb.Int64Value(value=MEMBER)

    # Merge, the default, as critest asks it: a uid, no group, one extra
    # group; the image's groups of that user come in.
    merge = run_sleeper(env, sandbox_id, sandbox_config, "merge", run_as_user=uid,
                        supplemental_groups=[EXTRA])
    assert process_identities(env, merge) == (
        MEMBER, MEMBER, sorted([MEMBER, EXTRA] + IMAGE_GROUPS))
    # The primary gid first, then the image's groups, then the requested.
    assert reported(env, merge) == (MEMBER, MEMBER, [MEMBER] + IMAGE_GROUPS + [EXTRA])

    # Named explicitly, and by user name: the same.
    named = run_sleeper(env, sandbox_id, sandbox_config, "named", run_as_username="member",
                        supplemental_groups=[EXTRA],
                        supplemental_groups_policy=pb.SupplementalGroupsPolicy.Value("Merge"))
    assert process_identities(env, named) == process_identities(env, merge)
    assert reported(env, named) == reported(env, merge)

    # Strict: only the primary group and what was asked for.
    strict = run_sleeper(env, sandbox_id, sandbox_config, "strict", run_as_user=uid,
                         supplemental_groups=[EXTRA],
                         supplemental_groups_policy=pb.SupplementalGroupsPolicy.Value("Strict"))
    assert process_identities(env, strict) == (MEMBER, MEMBER, [MEMBER, EXTRA])
    assert reported(env, strict) == (MEMBER, MEMBER, [MEMBER, EXTRA])

    # Strict with run_as_group: that group is the primary one, the
    # passwd entry's gid is gone too.
    grouped = run_sleeper(env, sandbox_id, sandbox_config, "grouped", run_as_user=uid,
                          run_as_group=pb.Int64Value(value=3000), supplemental_groups=[EXTRA],
                          supplemental_groups_policy=pb.SupplementalGroupsPolicy.Value("Strict"))
    assert process_identities(env, grouped) == (MEMBER, 3000, [EXTRA, 3000])
    assert reported(env, grouped) == (MEMBER, 3000, [3000, EXTRA])

    # Strict and nothing asked for: the primary group alone.
    alone = run_sleeper(env, sandbox_id, sandbox_config, "alone", run_as_user=uid,
                        supplemental_groups_policy=pb.SupplementalGroupsPolicy.Value("Strict"))
    assert process_identities(env, alone) == (MEMBER, MEMBER, [MEMBER])
    assert reported(env, alone) == (MEMBER, MEMBER, [MEMBER])

    # No security context at all: the image's user (root here), reported too.
    plain = run_sleeper(env, sandbox_id, sandbox_config, "plain")
    assert process_identities(env, plain) == (0, 0, [0])
    assert reported(env, plain) == (0, 0, [0])
    finish(env, [sandbox_id])


def test_user_is_reported_in_every_state(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("states", handler)
    config = env.container_config(
        "short", ["/bin/true"],
        linux=linux_config(pb, run_as_user=pb.Int64Value(value=MEMBER), supplemental_groups=[EXTRA]))
    container_id = env.create(sandbox_id, sandbox_config, config)
    expected = (MEMBER, MEMBER, [MEMBER] + IMAGE_GROUPS + [EXTRA])
    assert env.state(container_id) == pb.CONTAINER_CREATED
    assert reported(env, container_id) == expected
    env.start(container_id)
    env.wait_state(container_id, pb.CONTAINER_EXITED)
    assert reported(env, container_id) == expected
    finish(env, [sandbox_id])


def test_user_survives_a_restart(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("restart", handler)
    uid = pb.Int64Value(value=MEMBER)
    strict = run_sleeper(env, sandbox_id, sandbox_config, "strict", run_as_user=uid,
                         supplemental_groups=[EXTRA],
                         supplemental_groups_policy=pb.SupplementalGroupsPolicy.Value("Strict"))
    merge = run_sleeper(env, sandbox_id, sandbox_config, "merge", run_as_user=uid)
    before = {c: reported(env, c) for c in (strict, merge)}
    assert before[strict] == (MEMBER, MEMBER, [MEMBER, EXTRA])
    assert before[merge] == (MEMBER, MEMBER, [MEMBER] + IMAGE_GROUPS)

    # The record keeps it.
    state = json.loads((env.crid.root / "containers" / strict / "state.json").read_text())
    assert state["version"] == 2
    assert state["user"] == {"uid": MEMBER, "gid": MEMBER, "supplemental_groups": [MEMBER, EXTRA]}

    env.crid.signal(signal.SIGKILL)
    assert env.crid.wait() is not None
    # A record written by a crid before "user" existed (version 1): the
    # identity comes back from the bundle's config.json.
    path = env.crid.root / "containers" / merge / "state.json"
    old = json.loads(path.read_text())
    del old["user"]
    old["version"] = 1
    path.write_text(json.dumps(old))
    env.crid.start()
    assert {c: reported(env, c) for c in (strict, merge)} == before
    assert process_identities(env, strict) == (MEMBER, MEMBER, [MEMBER, EXTRA])
    finish(env, [sandbox_id])

