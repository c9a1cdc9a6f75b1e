#!/usr/bin/env bash
# Installs the .deb in a minimal Debian booted by systemd-nspawn (its own
# loopback only: --private-network) and checks the service the way an
# operator uses it: systemctl start/reload/stop/restart, journalctl, the
# workers' user, a binary upgrade with the unit's main PID following it,
# the optional socket unit (a kill -9 of the master under load refuses no
# connection: they wait in the socket's backlog while systemd restarts the
# service), and systemd-analyze security. The checks run inside the container as a
# oneshot unit that powers the container off when done; the host reads the
# result from the container's tree.
#
# PID 1 of the machine need not be systemd, but the machine must be able to
# boot a container; when it cannot, this says so in one line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-systemd: $*"; }
work=${PREFORKD_NSPAWN_DIR:-/var/tmp/preforkd-nspawn}
root=$work/bookworm
mkdir -p "$work"

for tool in systemd-nspawn debootstrap; do
  if ! command -v "$tool" >/dev/null; then
    say "SKIPPED: $tool is not installed, cannot boot a container here"
    exit 0
  fi
done

deb=$(ls -t target/debian/preforkd_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
  cargo deb
  deb=$(ls -t target/debian/preforkd_*.deb | head -n 1)
fi

if [ ! -x "$root/lib/systemd/systemd" ]; then
  say "debootstrap bookworm into $root (about a minute)"
  rm -rf "$root"
  if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,adduser,man-db,procps,logrotate \
       bookworm "$root" >"$work/debootstrap.log" 2>&1; then
    say "SKIPPED: debootstrap failed, cannot build a container here (see $work/debootstrap.log)"
    tail -n 5 "$work/debootstrap.log"
    exit 0
  fi
fi

mkdir -p "$root/opt/preforkd-check"
cp "$deb" "$root/opt/preforkd-check/preforkd.deb"
rm -f "$root/opt/preforkd-check/result" "$root/opt/preforkd-check/check.log"
cat > "$root/opt/preforkd-check/check.sh" <<'INSIDE'
#!/bin/bash
# Runs inside the container, under systemd.
set -euo pipefail
exec > /opt/preforkd-check/check.log 2>&1
fail() { echo "FAIL: $*"; systemctl status preforkd --no-pager || true; journalctl -b -u preforkd --no-pager | tail -n 30 || true; echo "FAIL: $*" > /opt/preforkd-check/result; exit 1; }
get() { curl -sS --max-time 5 http://127.0.0.1:8888/; }
wait_for() { for _ in $(seq 100); do if eval "$1"; then return 0; fi; sleep 0.1; done; return 1; }
main_pid() { systemctl show -p MainPID --value preforkd; }

echo "== install"
dpkg -i /opt/preforkd-check/preforkd.deb
wait_for 'systemctl is-active --quiet preforkd' || fail "not active after install"
systemctl status preforkd --no-pager | grep -q 'active (running)' || fail "not active (running)"
workers=$(ps -o user= --ppid "$(main_pid)" | sort -u)
[ "$workers" = preforkd ] || fail "workers run as: $workers"
[ "$(get)" = "Hello, World!" ] || fail "GET: $(get)"
wait_for 'journalctl -b -u preforkd --no-pager | grep -q "master ready"' || fail "no master lines in the journal"
echo "journal: $(journalctl -b -u preforkd --no-pager | grep 'master ready' | tail -n 1)"

echo "== access log (under ProtectSystem=strict) and its rotation"
line='"GET / HTTP/1.1" 200 14 "-" "curl/'
wait_for 'grep -qF "$line" /var/log/preforkd/access.log 2>/dev/null' \
  || fail "no access log line: $(ls -la /var/log/preforkd 2>&1) $(journalctl -u preforkd --no-pager | grep 'access log' | tail -n 3)"
[ "$(stat -c '%U %a' /var/log/preforkd/access.log)" = "preforkd 640" ] \
  || fail "access.log is $(stat -c '%U:%G %a' /var/log/preforkd/access.log)"
if command -v logrotate >/dev/null; then
  logrotate -f /etc/logrotate.d/preforkd || fail "logrotate -f /etc/logrotate.d/preforkd"
  [ -f /var/log/preforkd/access.log.1 ] || fail "no access.log.1 after logrotate"
  get >/dev/null
  wait_for 'grep -qF "$line" /var/log/preforkd/access.log 2>/dev/null' \
    || fail "no line in the new access.log after logrotate (reopen)"
else
  echo "logrotate not in this container (a cached root?): rotation not checked"
fi

echo "== reload with a changed body"
master=$(main_pid)
sed -i 's/^body = .*/body = "Reloaded\\n"/' /etc/preforkd/preforkd.toml
systemctl reload preforkd || fail "systemctl reload"
[ "$(get)" = "Reloaded" ] || fail "after reload: $(get)"
[ "$(main_pid)" = "$master" ] || fail "main pid changed on reload"

echo "== reload with a broken config"
echo 'wokers = 2' >> /etc/preforkd/preforkd.toml
if systemctl reload preforkd; then fail "reload of a broken config succeeded"; fi
systemctl is-active --quiet preforkd || fail "inactive after a failed reload"
[ "$(get)" = "Reloaded" ] || fail "after a failed reload: $(get)"
journalctl -b -u preforkd --no-pager | grep -q 'wokers' || fail "the journal does not name the bad key"
sed -i '/^wokers/d' /etc/preforkd/preforkd.toml

echo "== upgrade (USR2)"
old=$(main_pid)
preforkd -s upgrade || fail "preforkd -s upgrade"
wait_for '[ "$(main_pid)" != "$old" ] && [ "$(main_pid)" = "$(cat /run/preforkd/preforkd.pid)" ]' \
  || fail "MainPID $(main_pid) did not follow the new master $(cat /run/preforkd/preforkd.pid)"
wait_for '! kill -0 "$old" 2>/dev/null' || fail "the old master $old is still running"
systemctl is-active --quiet preforkd || fail "inactive after upgrade"
[ "$(get)" = "Reloaded" ] || fail "after upgrade: $(get)"

echo "== stop"
systemctl stop preforkd
if pgrep -f '^/usr/sbin/preforkd' >/dev/null; then fail "processes left after stop: $(pgrep -af /usr/sbin/preforkd)"; fi

echo "== restart"
systemctl restart preforkd
wait_for 'systemctl is-active --quiet preforkd' || fail "not active after restart"
[ "$(get)" = "Reloaded" ] || fail "after restart: $(get)"
systemctl restart preforkd
[ "$(get)" = "Reloaded" ] || fail "after a second restart: $(get)"

echo "== socket unit: installed, not enabled"
[ -f /usr/lib/systemd/system/preforkd.socket ] || fail "preforkd.socket is not installed"
[ "$(systemctl is-enabled preforkd.socket || true)" = disabled ] || fail "preforkd.socket is enabled by default"
if systemctl is-active --quiet preforkd.socket; then fail "preforkd.socket is active by default"; fi

echo "== switch to the socket unit (as preforkd(8) says)"
systemctl stop preforkd.service
systemctl enable --now preforkd.socket || fail "systemctl enable --now preforkd.socket"
systemctl start preforkd.service || fail "start preforkd.service with the socket unit"
[ "$(get)" = "Reloaded" ] || fail "with the socket unit: $(get)"
# systemd holds the socket: with the service stopped a connection starts it.
systemctl stop preforkd.service
[ "$(get)" = "Reloaded" ] || fail "socket activation after stop: $(get)"
wait_for 'systemctl is-active --quiet preforkd.service' || fail "the socket did not start the service"

echo "== kill -9 of the master under Connection: close load"
# The starts above count against the unit's start limit (5 in 10 s); the
# restart below must not be refused because of them.
systemctl reset-failed preforkd.service
old=$(main_pid)
restarts=$(systemctl show -p NRestarts --value preforkd)
load=/opt/preforkd-check/load.out
: > "$load"
# Bounded: 1500 requests, each given 5 s; one line per request: its status,
# or curl's exit code (7: refused, 28: timed out, 52/56: dropped).
( for _ in $(seq 1500); do
    if code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Connection: close' \
        http://127.0.0.1:8888/ 2>/dev/null); then echo "$code"; else echo "curl-exit-$?"; fi
  done >> "$load" ) &
loader=$!
wait_for '[ "$(wc -l < "$load")" -ge 200 ]' || { kill "$loader"; fail "the request loop did not get going"; }
kill -9 "$old"
echo "killed master $old after $(wc -l < "$load") requests"
wait_for '[ "$(main_pid)" != "$old" ] && [ "$(main_pid)" != 0 ] && systemctl is-active --quiet preforkd' \
  || { kill "$loader"; fail "the service was not restarted after kill -9 of the master"; }
echo "restarted: MainPID $(main_pid) at $(wc -l < "$load") requests"
for _ in $(seq 1200); do kill -0 "$loader" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$loader" 2>/dev/null; then kill "$loader"; fail "the request loop did not end within 120 s"; fi
total=$(wc -l < "$load")
errors=$(grep -vcx 200 "$load" || true)
echo "requests: $total, not 200: $errors $(grep -vx 200 "$load" | sort | uniq -c | tr '\n' ' ')"
[ "$total" = 1500 ] || fail "the request loop made $total requests, not 1500"
[ "$errors" = 0 ] || fail "$errors requests failed across the master's kill -9: $(grep -vx 200 "$load" | sort | uniq -c | tr '\n' ' ')"
[ "$(systemctl show -p NRestarts --value preforkd)" = $((restarts + 1)) ] || fail "NRestarts did not count the restart"
journalctl -b -u preforkd --no-pager | grep -q 'status=9/KILL' || fail "the journal does not show the SIGKILL"
# What became of the old workers, and when the new master served.
journalctl -b -u preforkd --no-pager -o short-precise | sed -n '/status=9\/KILL/,/master ready/p' | tail -n 20
[ "$(get)" = "Reloaded" ] || fail "after the restart: $(get)"
workers=$(ps -o user= --ppid "$(main_pid)" | sort -u)
[ "$workers" = preforkd ] || fail "after the restart workers run as: $workers"

echo "== back to the service alone"
systemctl disable --now preforkd.socket
systemctl reset-failed preforkd.service
systemctl restart preforkd.service
[ "$(get)" = "Reloaded" ] || fail "without the socket unit: $(get)"

echo "== security"
systemd-analyze security preforkd --no-pager | tail -n 1
echo OK > /opt/preforkd-check/result
INSIDE
chmod +x "$root/opt/preforkd-check/check.sh"
cat > "$root/etc/systemd/system/preforkd-check.service" <<'UNIT'
[Unit]
Description=preforkd package checks
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/opt/preforkd-check/check.sh
TimeoutStartSec=300

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/preforkd-check.service "$root/etc/systemd/system/multi-user.target.wants/preforkd-check.service"
# A leftover install from an earlier run must not make the check pass.
chroot "$root" dpkg --purge preforkd >/dev/null 2>&1 || true

say "booting the container"
set +e
timeout 600 systemd-nspawn --quiet --private-network --register=no --keep-unit -D "$root" -b \
  >"$work/boot.log" 2>&1
status=$?
set -e
if [ ! -f "$root/opt/preforkd-check/check.log" ]; then
  say "SKIPPED: this machine cannot boot a systemd-nspawn container (exit $status): $(grep -m1 -iE 'fail|error|denied|not supported|permission' "$work/boot.log" || tail -n 1 "$work/boot.log")"
  exit 0
fi
cat "$root/opt/preforkd-check/check.log"
if [ "$(cat "$root/opt/preforkd-check/result" 2>/dev/null)" != OK ]; then
  say "FAIL: $(cat "$root/opt/preforkd-check/result" 2>/dev/null || echo 'no result')"
  exit 1
fi
say "ok"
