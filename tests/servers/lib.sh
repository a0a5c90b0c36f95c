# Shared by samba.sh and slapd.sh (sourced, not run).
# State lives under $SYNCPREP_SERVERS_DIR (default /tmp/syncprep-test-servers):
#   tls/     the test CA and the one server certificate both servers use
#   samba/   the Samba AD DC (see samba.sh)
#   slapd/   the OpenLDAP server (see slapd.sh)

SERVERS_DIR=${SYNCPREP_SERVERS_DIR:-/tmp/syncprep-test-servers}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TLS_DIR="$SERVERS_DIR/tls"
# Samba's Python bindings live in Debian's python3, not in the project's venv.
SYS_PYTHON=/usr/bin/python3
LOOPBACK=127.0.0.1

log() { printf '[%s] %s\n' "${LOG_TAG:-servers}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (directory servers bind ports < 1024 and run as root)"
}

need_packages() {
  "$HERE/install.sh" --check >/dev/null || die "packages missing: run tests/servers/install.sh (as root)"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/$LOOPBACK/$1") 2>/dev/null; }

# pid_alive FILE NAME: the process whose PID is in FILE runs and is NAME (a PID left over from an
# earlier boot or machine may belong to some other program by now: that one is never touched)
pid_alive() {
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# stop_pid FILE NAME: end the process NAME whose PID is in FILE (TERM, then KILL after 10 s)
stop_pid() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if pid_alive "$pidfile" "$2"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; sleep 0.2; fi
  fi
  rm -f "$pidfile"
}

# ensure_tls: a self-signed CA and a server certificate for localhost / 127.0.0.1 (kept once made)
ensure_tls() {
  [ -s "$TLS_DIR/server.pem" ] && [ -s "$TLS_DIR/ca.pem" ] && return 0
  mkdir -p "$TLS_DIR"
  local tmp; tmp=$(mktemp -d "$SERVERS_DIR/tls.XXXXXX")
  local host; host=$(hostname)
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
    -subj "/O=syncprep tests/CN=syncprep test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/O=syncprep tests/CN=localhost" \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:$host,DNS:dc1.example.test,DNS:example.test" \
    > "$tmp/server.ext"
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>/dev/null
  chmod 600 "$tmp/ca.key" "$tmp/server.key"
  rm -f "$tmp/server.csr" "$tmp/server.ext" "$tmp"/*.srl
  # publish all files at once: a half-made directory is never taken for a finished one
  rm -rf "$TLS_DIR"; mv "$tmp" "$TLS_DIR"
  log "made test CA $TLS_DIR/ca.pem and server certificate (localhost, 127.0.0.1, $host)"
}

# wait_ready TRIES LOGFILE: poll the calling script's ready() every 0.1 s until it holds; stop with the
# log's tail when the server exits instead. Needs running() and PIDFILE from the calling script.
wait_ready() {
  local tries=$1 logfile=$2 t0=$SECONDS
  for _ in $(seq 1 "$tries"); do
    ready && return 0
    running || { tail -20 "$logfile" >&2; die "$LOG_TAG exited (log: $logfile)"; }
    sleep 0.1
  done
  die "$LOG_TAG did not answer within $((SECONDS - t0)) s"
}

# stop_server: stop the calling script's server (its PIDFILE; the process must be named $LOG_TAG)
stop_server() {
  if running; then
    stop_pid "$PIDFILE" "$LOG_TAG"
    log "stopped"
  fi
  rm -f "$PIDFILE"
}
