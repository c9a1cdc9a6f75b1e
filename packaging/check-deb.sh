#!/usr/bin/env bash
# Builds the .deb and checks it the way an operator would meet it: lintian,
# man page lints, install, every installed path, the conffile, the system
# user, the binary from /usr/sbin with the packaged config, the units with
# systemd-analyze (the service enabled, the socket unit installed but not),
# a real start with a NOTIFY_SOCKET and an HTTP request, then removal
# (conffile kept) and purge (nothing left). Run as root on a machine where
# preforkd is not installed; it removes what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "man page lints"
for page in man/preforkd.8 man/preforkd.toml.5; do
  out=$(mandoc -Tlint "$page" 2>&1) || fail "mandoc -Tlint $page: $out"
  [ -z "$out" ] || fail "mandoc -Tlint $page: $out"
  out=$(groff -man -ww -z "$page" 2>&1)
  [ -z "$out" ] || fail "groff -ww $page: $out"
  out=$(man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$out" ] || fail "man --warnings $page: $out"
done

step "cargo deb"
cargo deb
deb=$(ls -t target/debian/preforkd_*.deb | head -n 1)

step "lintian $deb"
lint=$(lintian "$deb" 2>&1 | grep -v 'running with root privileges' || true)
echo "$lint"
if echo "$lint" | grep -qE '^(E|W): '; then fail "lintian reported errors or warnings"; fi

if dpkg -s preforkd >/dev/null 2>&1; then fail "preforkd is already installed here"; fi

step "dpkg -i"
dpkg -i "$deb"
for path in /usr/sbin/preforkd /etc/preforkd/preforkd.toml /usr/lib/systemd/system/preforkd.service \
            /usr/lib/systemd/system/preforkd.socket \
            /usr/share/man/man8/preforkd.8.gz /usr/share/man/man5/preforkd.toml.5.gz \
            /usr/share/doc/preforkd/copyright /usr/share/doc/preforkd/changelog.Debian.gz; do
  [ -e "$path" ] || fail "$path is not installed"
done
[ "$(stat -c %a /usr/sbin/preforkd)" = 755 ] || fail "/usr/sbin/preforkd is not 0755"
dpkg-query -W -f='${Conffiles}\n' preforkd | grep -q '/etc/preforkd/preforkd.toml' \
  || fail "/etc/preforkd/preforkd.toml is not a conffile"
user=$(getent passwd preforkd) || fail "no preforkd user"
getent group preforkd >/dev/null || fail "no preforkd group"
shell=$(echo "$user" | cut -d: -f7)
home=$(echo "$user" | cut -d: -f6)
case "$shell" in */nologin|/bin/false) ;; *) fail "preforkd user has login shell $shell" ;; esac
[ ! -e "$home" ] || fail "preforkd user has an existing home $home"
[ "$(stat -c '%U:%G %a' /var/log/preforkd)" = "root:adm 755" ] \
  || fail "/var/log/preforkd is not root:adm 0755 (the workers must not be able to plant a symlink there)"
[ "$(stat -c %a /etc/logrotate.d/preforkd)" = 644 ] || fail "/etc/logrotate.d/preforkd is not installed 0644"
dpkg-query -W -f='${Conffiles}\n' preforkd | grep -q '/etc/logrotate.d/preforkd' \
  || fail "/etc/logrotate.d/preforkd is not a conffile"
if command -v logrotate >/dev/null; then
  logrotate -d /etc/logrotate.d/preforkd >/dev/null 2>&1 || fail "logrotate -d /etc/logrotate.d/preforkd"
fi
man -w preforkd >/dev/null || fail "man preforkd finds no page"
man -w 5 preforkd.toml >/dev/null || fail "man 5 preforkd.toml finds no page"

step "/usr/sbin/preforkd -V and -t"
/usr/sbin/preforkd -V | grep -qx "preforkd $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" \
  || fail "preforkd -V"
/usr/sbin/preforkd -t -c /etc/preforkd/preforkd.toml || fail "preforkd -t on the packaged config"

step "systemd-analyze verify; the service enabled, the socket unit not"
for unit in preforkd.service preforkd.socket; do
  out=$(systemd-analyze verify /usr/lib/systemd/system/$unit 2>&1) || fail "systemd-analyze verify $unit: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
done
[ -L /etc/systemd/system/multi-user.target.wants/preforkd.service ] || fail "preforkd.service is not enabled"
[ ! -e /etc/systemd/system/sockets.target.wants/preforkd.socket ] || fail "preforkd.socket is enabled by default"
systemd-analyze security --offline=true /usr/lib/systemd/system/preforkd.service 2>&1 | tail -n 1

step "start /usr/sbin/preforkd with NOTIFY_SOCKET, GET, TERM"
python3 - <<'PY'
import os, signal, socket, subprocess, sys, tempfile, time
tmp = tempfile.mkdtemp(prefix="preforkd-deb-")
notify = os.path.join(tmp, "notify.sock")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(notify)
ns.settimeout(10)
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
env = dict(os.environ, NOTIFY_SOCKET=notify)
server = subprocess.Popen(
    ["/usr/sbin/preforkd", "-c", "/etc/preforkd/preforkd.toml", "-l", f"127.0.0.1:{port}",
     "-p", os.path.join(tmp, "preforkd.pid"), "-w", "2", "--log-target", "stderr"],
    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
try:
    msg = ns.recv(4096).decode()
    print("notify:", msg.replace("\n", " "))
    if "READY=1" not in msg.split("\n"):
        sys.exit("check-deb: FAIL: no READY=1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(4096):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200 ") or not data.endswith(b"\r\n\r\nHello, World!\n"):
        sys.exit(f"check-deb: FAIL: unexpected response {data!r}")
    print("GET:", data.split(b"\r\n")[0].decode(), "/", data.split(b"\r\n\r\n", 1)[1].decode().strip())
    workers = subprocess.run(["ps", "-o", "user=", "--ppid", str(server.pid)], capture_output=True, text=True).stdout.split()
    if not workers or set(workers) != {"preforkd"}:
        sys.exit(f"check-deb: FAIL: workers run as {workers}, not preforkd")
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=15)
    if code != 0:
        sys.exit(f"check-deb: FAIL: exit status {code} after TERM: {server.stderr.read().decode()}")
    print("TERM: exit 0")
    log = open("/var/log/preforkd/access.log", "rb").read()
    if b'"GET / HTTP/1.1" 200 14 "-" "-"\n' not in log:
        sys.exit(f"check-deb: FAIL: no access log line for the GET: {log!r}")
    st = os.stat("/var/log/preforkd/access.log")
    import pwd
    if pwd.getpwuid(st.st_uid).pw_name != "preforkd" or st.st_mode & 0o777 != 0o640:
        sys.exit(f"check-deb: FAIL: access.log owner uid {st.st_uid} mode {oct(st.st_mode)}")
    print("access log:", log.decode(errors="replace").splitlines()[-1])
finally:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
PY

step "dpkg -r keeps the conffile"
dpkg -r preforkd
[ -f /etc/preforkd/preforkd.toml ] || fail "dpkg -r removed the conffile"
[ ! -e /usr/sbin/preforkd ] || fail "dpkg -r left /usr/sbin/preforkd"

step "dpkg --purge leaves nothing"
dpkg --purge preforkd
[ ! -e /etc/preforkd ] || fail "purge left /etc/preforkd"
[ ! -e /var/log/preforkd ] || fail "purge left /var/log/preforkd"
! getent passwd preforkd >/dev/null || fail "purge left the preforkd user"
! getent group preforkd >/dev/null || fail "purge left the preforkd group"
! pgrep -f '^/usr/sbin/preforkd' >/dev/null || fail "a /usr/sbin/preforkd process is left"
[ ! -e /etc/systemd/system/multi-user.target.wants/preforkd.service ] || fail "purge left the unit enabled"
for unit in preforkd.service preforkd.socket; do
  [ ! -e /etc/systemd/system/$unit ] || fail "purge left a mask of $unit"
done
left=$(dpkg -L preforkd 2>/dev/null || true)
[ -z "$left" ] || fail "dpkg still lists files: $left"
echo "check-deb: ok"
