"""deploy/: install.sh waits for the apt lock instead of failing, and stack.sh runs
Prometheus and Alertmanager (Debian's binaries) on the ports it is given."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, StackPart, wait_until

# apt and dpkg take fcntl (POSIX) locks: this holds one as they do, until stdin closes.
HOLD_LOCK = """
import fcntl, sys
lock = open(sys.argv[1], "w")
fcntl.lockf(lock, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def _hold(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def _wait_lock(locks: list[Path], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", str(ROOT / "deploy" / "apt-install.sh"), "--wait-lock"],
        env={**os.environ, "APT_LOCK_FILES": " ".join(map(str, locks)), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_apt_install_waits_for_a_held_lock_and_says_who_holds_it(tmp_path: Path) -> None:
    frontend, lists = tmp_path / "lock-frontend", tmp_path / "lists-lock"
    frontend.touch()
    lists.touch()
    holder = _hold(lists)
    try:
        waiter = _wait_lock([frontend, lists])
        assert waiter.stdout is not None
        line = waiter.stdout.readline()
        assert f"waiting for the apt lock held by PID {holder.pid} (python" in line, line
        time.sleep(2)
        assert waiter.poll() is None, "gave up while the lock was still held"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, out
    assert "the apt lock is free" in out


def test_apt_install_gives_up_after_its_timeout_in_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.touch()
    holder = _hold(lock)
    try:
        waiter = _wait_lock([lock], APT_LOCK_TIMEOUT="2")
        out, _ = waiter.communicate(timeout=60)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert waiter.returncode == 1
    assert f"still held by PID {holder.pid} after 2s" in out.splitlines()[-1]
    assert "Traceback" not in out


def test_apt_install_does_not_wait_for_a_free_lock(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.touch()
    out, _ = _wait_lock([lock, tmp_path / "absent"]).communicate(timeout=30)
    assert out == ""


def test_stack_runs_prometheus_and_alertmanager_on_the_given_ports(
    own_prometheus: StackPart, own_alertmanager: StackPart
) -> None:
    own_alertmanager.up()
    own_prometheus.env["PROMETHEUS_TARGETS"] = "127.0.0.1:1,127.0.0.1:2"
    own_prometheus.up()
    status = httpx.get(f"{own_alertmanager.url}/api/v2/status", timeout=10).json()
    assert status["cluster"]["status"] == "disabled"
    rules = httpx.get(f"{own_prometheus.url}/api/v1/rules", timeout=10).json()["data"]
    names = {rule["name"] for group in rules["groups"] for rule in group["rules"]}
    assert "HubwatchStreamStalled" in names

    def scraped() -> set[str]:
        targets = httpx.get(f"{own_prometheus.url}/api/v1/targets", timeout=10).json()
        return {t["scrapeUrl"] for t in targets["data"]["activeTargets"]}

    wanted = {"http://127.0.0.1:1/metrics", "http://127.0.0.1:2/metrics"}
    wait_until(lambda: scraped() == wanted, "Prometheus to scrape the targets", show=scraped)

    def sends_to_our_alertmanager() -> bool:
        managers = httpx.get(f"{own_prometheus.url}/api/v1/alertmanagers", timeout=10).json()
        urls = [a["url"] for a in managers["data"]["activeAlertmanagers"]]
        return urls == [f"{own_alertmanager.url}/api/v2/alerts"]

    wait_until(sends_to_our_alertmanager, "Prometheus to find its Alertmanager")
    own_prometheus.down()
    own_alertmanager.down()
    for part in (own_prometheus, own_alertmanager):
        assert not (part.stack_dir / part.part / "pid").exists()
        assert part.log.exists()


# A python whose `-m venv DIR` makes a venv of shims: its pip only writes down each call.
FAKE_PYTHON = """#!/usr/bin/env bash
set -e
[ "$1 $2" = "-m venv" ] || exit 3
mkdir -p "$3/bin"
printf '#!/usr/bin/env bash\\necho "Python 3 (shim)"\\n' > "$3/bin/python"
printf '#!/usr/bin/env bash\\necho "$*" >> "%s/pip.log"\\n' "$(cd "$3" && pwd)" > "$3/bin/pip"
chmod +x "$3/bin/python" "$3/bin/pip"
"""


def _install(root: Path) -> str:
    done = subprocess.run(
        ["bash", str(root / "deploy" / "install.sh"), "--python-only"],
        env={**os.environ, "VENV": ".venv", "PYTHON": str(root / "python")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_install_runs_pip_only_for_a_new_venv_or_a_newer_pyproject(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "install.sh").write_text((ROOT / "deploy" / "install.sh").read_text())
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "python").write_text(FAKE_PYTHON)
    (tmp_path / "python").chmod(0o755)
    pip_log = tmp_path / ".venv" / "pip.log"

    def pip_calls() -> int:
        return len(pip_log.read_text().splitlines()) if pip_log.exists() else 0

    assert "no venv in .venv yet; installing" in _install(tmp_path)
    installed = pip_calls()
    assert installed > 0
    for _ in range(2):  # `make run` again and again: nothing to install
        out = _install(tmp_path)
        assert "is up to date" in out and "installing" not in out, out
    assert pip_calls() == installed

    # The dependency list edited after the last install.
    earlier = (tmp_path / "pyproject.toml").stat().st_mtime - 10
    os.utime(tmp_path / ".venv" / ".installed", (earlier, earlier))
    assert "pyproject.toml is newer than the last install; installing" in _install(tmp_path)
    assert pip_calls() > installed
    assert "is up to date" in _install(tmp_path)

    (tmp_path / ".venv" / ".installed").unlink()  # a venv made by hand
    assert "no install stamp" in _install(tmp_path)
