"""crid's configuration as a node operator meets it: `crid config`, errors
that name file:line and key, drop-in order, and flags over files."""

import tomllib

import pytest

import cridtest


@pytest.fixture
def instance(api):
    """A Crid that is never started: only its config files are used."""
    c = cridtest.Crid(api)
    yield c
    c.cleanup()


def effective(instance, *flags):
    r = instance.cli(*flags, "config")
    assert r.returncode == 0, r.stderr
    return r.stdout, tomllib.loads(r.stdout)


def test_config_prints_toml(instance):
    text, doc = effective(instance)
    assert text.strip()
    crid = doc["crid"]
    assert crid["root"] == str(instance.root)
    assert crid["state_dir"] == str(instance.state_dir)
    assert crid["log_level"] == "debug"
    assert crid["api"]["listen"] == str(instance.sock)
    assert crid["network"]["network_dir"] == str(instance.network_dir)
    assert "crun" in crid["runtime"]["runtimes"]
    assert "runc" in crid["runtime"]["runtimes"]
    # The effective config is commented for the operator.
    assert any(line.lstrip().startswith("#") for line in text.splitlines())


def test_config_output_reads_back_identically(instance, tmp_path):
    first, _ = effective(instance)
    again = tmp_path / "again.conf"
    again.write_text(first)
    empty_dir = tmp_path / "empty.d"
    empty_dir.mkdir()
    r = cridtest.run_crid(["--config", str(again), "--config-dir", str(empty_dir), "config"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == first


def test_config_round_trip_keeps_non_default_values(api, tmp_path):
    c = cridtest.Crid(
        api,
        config={
            "crid.runtime": {"cgroup_manager": "systemd", "default_runtime": "runc"},
            "crid.network": {"plugin_dirs": ["/opt/test-cni/bin", "/usr/lib/cni"]},
        },
        extra_config=(
            '[crid.runtime.runtimes.kata]\nruntime_path = "/usr/bin/kata-runtime"\n'
            '\n[crid.image.registries."127.0.0.1:5000"]\ninsecure = true\n'
            'mirrors = ["127.0.0.1:5001"]\n'
        ),
    )
    try:
        first, doc = effective(c)
        assert doc["crid"]["runtime"]["cgroup_manager"] == "systemd"
        assert doc["crid"]["runtime"]["default_runtime"] == "runc"
        assert doc["crid"]["network"]["plugin_dirs"] == ["/opt/test-cni/bin", "/usr/lib/cni"]
        assert doc["crid"]["runtime"]["runtimes"]["kata"]["runtime_path"] == (
            "/usr/bin/kata-runtime"
        )
        registry = doc["crid"]["image"]["registries"]["127.0.0.1:5000"]
        assert registry["insecure"] is True
        assert registry["mirrors"] == ["127.0.0.1:5001"]
        again = tmp_path / "again.conf"
        again.write_text(first)
        empty_dir = tmp_path / "empty.d"
        empty_dir.mkdir()
        r = cridtest.run_crid(["--config", str(again), "--config-dir", str(empty_dir), "config"])
        assert r.returncode == 0, r.stderr
        assert r.stdout == first
    finally:
        c.cleanup()


def line_of(text, needle):
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in config text")


@pytest.mark.parametrize(
    "table,key",
    [("crid", "no_such_key"), ("crid.runtime", "cgroup_mangler"), ("crid.metrics", "enable")],
)
def test_unknown_key_is_an_error_naming_file_line_and_key(api, table, key):
    c = cridtest.Crid(api)
    try:
        path = c.write_dropin("50-bad.conf", f"# a comment\n[{table}]\n{key} = 1\n")
        r = c.cli("config")
        assert r.returncode != 0
        assert r.stdout == ""
        assert f"{path}:3" in r.stderr, r.stderr
        assert key in r.stderr, r.stderr
        # The daemon refuses to start with it, too.
        r = cridtest.run_crid(c.command()[1:], timeout=10)
        assert r.returncode != 0
        assert key in r.stderr, r.stderr
        assert not c.sock.exists()
    finally:
        c.cleanup()


def test_unknown_table_is_an_error_naming_file(api):
    c = cridtest.Crid(api)
    try:
        path = c.write_dropin("50-bad.conf", "[crid.nonsense]\nx = 1\n")
        r = c.cli("config")
        assert r.returncode != 0
        assert f"{path}:" in r.stderr, r.stderr
        assert "nonsense" in r.stderr, r.stderr
    finally:
        c.cleanup()


def test_unknown_key_in_main_file_names_main_file(api):
    c = cridtest.Crid(api, extra_config="[crid.metrics]\nbogus_metric = true\n")
    try:
        line = line_of(c.config_text(), "bogus_metric")
        r = c.cli("config")
        assert r.returncode != 0
        assert f"{c.config_file}:{line}" in r.stderr, r.stderr
        assert "bogus_metric" in r.stderr, r.stderr
    finally:
        c.cleanup()


@pytest.mark.parametrize(
    "text,bad_line",
    [
        ('[crid]\nroot = "/tmp/unterminated\n', 2),
        ("[crid]\nroot =\n", 2),
        ('[crid\nroot = "/tmp/x"\n', 1),
        ('[crid]\n\n\nlog_level "info"\n', 4),
        ('[crid]\nlog_level = "info" trailing\n', 2),
    ],
    ids=["unterminated-string", "missing-value", "unclosed-header", "no-equals", "trailing"],
)
def test_syntax_error_names_file_and_line(api, text, bad_line):
    c = cridtest.Crid(api)
    try:
        path = c.write_dropin("50-broken.conf", text)
        r = c.cli("config")
        assert r.returncode != 0
        assert r.stdout == ""
        assert f"{path}:{bad_line}" in r.stderr, r.stderr
    finally:
        c.cleanup()


def test_wrong_type_is_an_error_naming_file_line_and_key(api):
    c = cridtest.Crid(api)
    try:
        path = c.write_dropin("50-type.conf", "[crid.metrics]\nmetrics_port = \"lots\"\n")
        r = c.cli("config")
        assert r.returncode != 0
        assert f"{path}:2" in r.stderr, r.stderr
        assert "metrics_port" in r.stderr, r.stderr
    finally:
        c.cleanup()


def test_dropins_apply_in_lexical_order_after_main_file(instance):
    # Written in reverse order so directory order cannot pass by accident.
    instance.write_dropin("20-b.conf", '[crid]\nlog_level = "error"\n')
    instance.write_dropin("10-a.conf", '[crid]\nlog_level = "warn"\n')
    _, doc = effective(instance)
    assert doc["crid"]["log_level"] == "error"

    # A key only the earlier drop-in sets survives the later one.
    instance.write_dropin(
        "10-a.conf", '[crid]\nlog_level = "warn"\n[crid.runtime]\ncgroup_manager = "systemd"\n'
    )
    _, doc = effective(instance)
    assert doc["crid"]["log_level"] == "error"
    assert doc["crid"]["runtime"]["cgroup_manager"] == "systemd"


def test_only_dot_conf_files_are_dropins(instance):
    instance.write_dropin("10-a.conf", '[crid]\nlog_level = "warn"\n')
    instance.write_dropin("90-z.conf.disabled", '[crid]\nlog_level = "error"\n')
    instance.write_dropin("README", "not toml at all [[[")
    _, doc = effective(instance)
    assert doc["crid"]["log_level"] == "warn"


def test_flags_override_files(instance, tmp_path):
    instance.write_dropin("10-a.conf", f'[crid]\nroot = "{tmp_path}/from-dropin"\n')
    _, doc = effective(instance)
    assert doc["crid"]["root"] == f"{tmp_path}/from-dropin"

    _, doc = effective(
        instance,
        "--root", f"{tmp_path}/flag-root",
        "--state-dir", f"{tmp_path}/flag-state",
        "--listen", f"{tmp_path}/flag.sock",
        "--log-level", "trace",
    )
    assert doc["crid"]["root"] == f"{tmp_path}/flag-root"
    assert doc["crid"]["state_dir"] == f"{tmp_path}/flag-state"
    assert doc["crid"]["api"]["listen"] == f"{tmp_path}/flag.sock"
    assert doc["crid"]["log_level"] == "trace"


def test_missing_config_file_given_on_command_line_is_an_error(tmp_path):
    missing = tmp_path / "nope.conf"
    r = cridtest.run_crid(["--config", str(missing), "--config-dir", str(tmp_path), "config"])
    assert r.returncode != 0
    assert str(missing) in r.stderr, r.stderr


def test_version_subcommand():
    r = cridtest.run_crid(["version"])
    assert r.returncode == 0
    assert "0.1.0" in r.stdout
    r = cridtest.run_crid(["--version"])
    assert r.returncode == 0
    assert "0.1.0" in r.stdout


def test_unknown_command_and_flag_fail(tmp_path):
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    r = cridtest.run_crid(["--config", str(empty), "--config-dir", str(tmp_path), "frobnicate"])
    assert r.returncode != 0
    assert "frobnicate" in r.stderr
    r = cridtest.run_crid(["--no-such-flag"])
    assert r.returncode != 0


def test_contrib_crid_conf_is_the_default_config_exactly():
    """contrib/crid.conf (installed as /etc/crid/crid.conf) is what `crid
    config` prints for the defaults, byte for byte, wherever crid runs
    from: the monitor's path beside crid is derived, not printed."""
    repo = cridtest.REPO
    r = cridtest.run_crid(["config", "--config", "/dev/null", "--config-dir", "/nonexistent"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == (repo / "contrib" / "crid.conf").read_text()
