#!/usr/bin/env bash
# A throw-away Samba Active Directory domain controller for syncprep's integration tests.
# Loopback only (127.0.0.1), run as root on Debian 12.
#
#   tests/servers/samba.sh up         # make sure it runs: provision + seed if needed, start, kinit, export
#   tests/servers/samba.sh stop       # stop it (the data stays; `up` starts again from the seeded state)
#   tests/servers/samba.sh start      # start it on its data as it is (after a stop, keeping what tests wrote)
#   tests/servers/samba.sh reset      # back to the pristine seeded state: stop, copy the saved copy back, start
#   tests/servers/samba.sh status     # exit 0 if running and answering LDAP
#   tests/servers/samba.sh provision  # a new domain from scratch (stops it first), seeded and saved
#   tests/servers/samba.sh export     # write the seeded objects to export.ldif (ldapsearch over LDAPS; also ldbsearch)
#   tests/servers/samba.sh kinit      # a fresh Kerberos ticket for Administrator in the private cache
#   tests/servers/samba.sh env        # shell exports for kinit/ldapsearch (eval "$(... env)")
#
# Domain: realm EXAMPLE.TEST, NetBIOS EXAMPLE, base DC=example,DC=test, DC dc1.example.test.
# Administrator / $SAMBA_ADMIN_PASSWORD (default Syncprep-Test-1).
# Ports on 127.0.0.1: 389 LDAP (StartTLS), 636 LDAPS, 3268 GC, 3269 GC over TLS, 88 Kerberos, 464 kpasswd.
# Simple binds need TLS (LDAPS or StartTLS), as on a hardened AD; SASL GSSAPI works on 389 with
# signing/sealing (ldapsearch -Y GSSAPI) and, without them, over TLS (ldap3).
# The seed: src/syncprep/data/demo.ldif, moved under OU=Contoso,DC=example,DC=test (its child domain
# emea under OU=emea,OU=Contoso,...); what Samba refused is listed in $SAMBA_DIR/seed-report.json.
# State: $SYNCPREP_SERVERS_DIR/samba (default /tmp/syncprep-test-servers/samba):
#   dc/ the live domain, pristine/ the saved seeded copy, seed-report.json, krb5.conf, krb5cc,
#   export.ldif (+ export-ldapsearch.ldif, ldapsearch's raw output, and export-ldbsearch.ldif,
#   Samba's ldbsearch on the database), samba.log
set -euo pipefail
LOG_TAG=samba
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SAMBA_DIR="$SERVERS_DIR/samba"
DC="$SAMBA_DIR/dc"
PRISTINE="$SAMBA_DIR/pristine"
CONF="$DC/etc/smb.conf"
PIDFILE="$SAMBA_DIR/samba.pid"
REALM=EXAMPLE.TEST
DOMAIN=EXAMPLE
BASE_DN="DC=example,DC=test"
SEED_BASE="OU=Contoso,$BASE_DN"
ADMIN_PASSWORD=${SAMBA_ADMIN_PASSWORD:-Syncprep-Test-1}
# Any AD-shaped LDIF can seed the domain instead of the sample: SYNCPREP_SAMBA_SEED=FILE (a new seed
# provisions a new domain; the integration tests that look for the sample's own objects then skip).
SEED_LDIF="$(realpath "${SYNCPREP_SAMBA_SEED:-$REPO/src/syncprep/data/demo.ldif}")"
EXPORT="$SAMBA_DIR/export.ldif"
LDB_EXPORT="$SAMBA_DIR/export-ldbsearch.ldif"
PORTS=(389 636 3268 3269 88)
# the attributes the README's export recipe asks for
EXPORT_ATTRS=(objectClass cn sAMAccountName userPrincipalName mail mailNickname proxyAddresses targetAddress
  displayName givenName sn isCriticalSystemObject msExchRecipientTypeDetails msExchHideFromAddressLists
  groupType homeMDB msExchMailboxGuid msRTCSIP-PrimaryUserAddress mS-DS-ConsistencyGuid objectGUID
  userCertificate userSMIMECertificate thumbnailPhoto member)

# Whatever makes the seeded domain: a new stamp means a new domain.
want_stamp() {
  { declare -f provision write_krb5_conf; echo "$ADMIN_PASSWORD $(hostname)"
    cat "$SEED_LDIF" "$HERE/adschema.py" "$HERE/seed_samba.py" "$HERE/ldifrecords.py"; } | sha256sum | cut -c1-16
}

running() { pid_alive "$PIDFILE" samba; }

healthy() {
  running && timeout 10 ldapsearch -LLL -x -H "ldap://$LOOPBACK:389" -s base -b "" dnsHostName >/dev/null 2>&1
}

provision() {
  need_root
  need_packages
  ensure_tls
  stop_server
  local t0=$SECONDS
  rm -rf "$DC" "$PRISTINE" "$SAMBA_DIR/pristine.stamp" "$EXPORT"
  mkdir -p "$DC/run"
  : > "$SAMBA_DIR/empty.conf"   # never read /etc/samba/smb.conf
  log "provisioning $REALM in $DC"
  if ! samba-tool domain provision -s "$SAMBA_DIR/empty.conf" --targetdir="$DC" \
      --realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=NONE \
      --host-name=dc1 --host-ip="$LOOPBACK" --adminpass="$ADMIN_PASSWORD" --backend-store=mdb \
      --option="interfaces=$LOOPBACK" --option="bind interfaces only=yes" \
      --option="server services=ldap kdc" \
      --option="log file=$SAMBA_DIR/samba.log" --option="log level=1" \
      --option="pid directory=$DC/run" \
      --option="winbindd socket directory=$DC/run/winbindd" \
      --option="ntp signd socket directory=$DC/run/ntp_signd" \
      --option="ldb:nosync=true" \
      --option="dsdb:schema update allowed=true" \
      --option="ldap server require strong auth=allow_sasl_over_tls" \
      --option="tls enabled=yes" \
      --option="tls keyfile=$TLS_DIR/server.key" \
      --option="tls certfile=$TLS_DIR/server.pem" \
      --option="tls cafile=$TLS_DIR/ca.pem" \
      > "$SAMBA_DIR/provision.log" 2>&1; then
    tail -30 "$SAMBA_DIR/provision.log" >&2
    die "provision failed (log: $SAMBA_DIR/provision.log)"
  fi
  log "provisioned in $((SECONDS - t0)) s; adding the Exchange attributes to the schema"
  local schema="CN=Schema,CN=Configuration,$BASE_DN"
  "$SYS_PYTHON" "$HERE/adschema.py" samba-attributes "$schema" > "$SAMBA_DIR/schema-attributes.ldif"
  "$SYS_PYTHON" "$HERE/adschema.py" samba-classes "$schema" > "$SAMBA_DIR/schema-classes.ldif"
  # two runs: offline ldbmodify applies a file in one transaction, and the class can only name
  # attributes that an earlier transaction committed
  for f in schema-attributes schema-classes; do
    ldbmodify -H "$DC/private/sam.ldb" --option='dsdb:schema update allowed=true' "$SAMBA_DIR/$f.ldif" \
      > "$SAMBA_DIR/$f.log" 2>&1 || { cat "$SAMBA_DIR/$f.log" >&2; die "schema extension failed"; }
  done
  log "seeding from ${SEED_LDIF#"$REPO"/}"
  "$SYS_PYTHON" "$HERE/seed_samba.py" --smb-conf "$CONF" --ldif "$SEED_LDIF" --seed-base "$SEED_BASE" \
    --report "$SAMBA_DIR/seed-report.json" \
    --spn ldap/localhost --spn "ldap/$(hostname)" --spn "ldap/$LOOPBACK" >&2
  write_krb5_conf
  # the pristine copy: `reset` and every fresh `up` start from it
  cp -a --sparse=always "$DC" "$PRISTINE"
  want_stamp > "$SAMBA_DIR/pristine.stamp"
  log "domain ready in $((SECONDS - t0)) s"
}

write_krb5_conf() {
  cat > "$SAMBA_DIR/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
	dns_canonicalize_hostname = false
	udp_preference_limit = 1
[realms]
	$REALM = {
		kdc = $LOOPBACK:88
		admin_server = $LOOPBACK
	}
[domain_realm]
	localhost = $REALM
	$LOOPBACK = $REALM
	$(hostname) = $REALM
	.example.test = $REALM
	example.test = $REALM
EOF
}

start_server() {
  need_root
  running && return 0
  for port in "${PORTS[@]}"; do
    port_open "$port" && die "port $port on $LOOPBACK is taken by another program; stop it first"
  done
  mkdir -p "$DC/run"
  # -i: foreground, so $! is samba itself; -M single: one process; --no-process-group: ends with its PID
  setsid samba -s "$CONF" -i -M single --no-process-group >> "$SAMBA_DIR/samba.out" 2>&1 < /dev/null 9>&- &
  echo $! > "$PIDFILE"
  wait_ready 600 "$SAMBA_DIR/samba.out"
  log "running (pid $(cat "$PIDFILE")): ldap://$LOOPBACK:389 ldaps://$LOOPBACK:636 gc 3268/3269 kdc 88"
}

ready() { port_open 636 && port_open 3268 && port_open 88 && healthy; }

restore_pristine() {
  [ -d "$PRISTINE" ] || die "no pristine copy: run $0 provision"
  rm -rf "$DC"
  cp -a --sparse=always "$PRISTINE" "$DC"
}

do_kinit() {
  KRB5_CONFIG="$SAMBA_DIR/krb5.conf" KRB5CCNAME="FILE:$SAMBA_DIR/krb5cc" \
    kinit "Administrator@$REALM" <<< "$ADMIN_PASSWORD" > /dev/null \
    || die "kinit Administrator@$REALM failed"
}

do_export() {
  # export.ldif: -LLL, plain content records. export-ldapsearch.ldif: the README's recipe as it is,
  # with ldapsearch's comments and its paged-results trailer ("control:", "pagedresults:" lines).
  local args=(-H "ldaps://localhost:636" -x -D "Administrator@${REALM,,}" -w "$ADMIN_PASSWORD" -b "$SEED_BASE"
    -E pr=1000/noprompt -o ldif-wrap=no '(|(objectClass=user)(objectClass=contact)(objectClass=group))'
    "${EXPORT_ATTRS[@]}")
  LDAPTLS_CACERT="$TLS_DIR/ca.pem" ldapsearch -LLL "${args[@]}" > "$EXPORT.tmp"
  LDAPTLS_CACERT="$TLS_DIR/ca.pem" ldapsearch "${args[@]}" > "$SAMBA_DIR/export-ldapsearch.ldif"
  # export-ldbsearch.ldif: Samba's own ldbsearch on the database (objectGUID as text, "# record" comments).
  ldbsearch -H "$DC/private/sam.ldb" -b "$SEED_BASE" '(|(objectClass=user)(objectClass=contact)(objectClass=group))' \
    "${EXPORT_ATTRS[@]}" > "$LDB_EXPORT" 2>> "$SAMBA_DIR/samba.log"
  mv "$EXPORT.tmp" "$EXPORT"
  log "exported $(grep -c '^dn' "$EXPORT") objects to $EXPORT"
}

up() {
  need_root
  need_packages
  ensure_tls
  if [ ! -d "$PRISTINE" ] || [ "$(cat "$SAMBA_DIR/pristine.stamp" 2>/dev/null)" != "$(want_stamp)" ]; then
    provision
  fi
  if healthy; then
    log "already running (pid $(cat "$PIDFILE"))"
  else
    stop_server
    restore_pristine
    start_server
  fi
  do_kinit
  { [ -s "$EXPORT" ] && [ -s "$LDB_EXPORT" ]; } || do_export
}

print_env() {
  cat <<EOF
export KRB5_CONFIG=$SAMBA_DIR/krb5.conf
export KRB5CCNAME=FILE:$SAMBA_DIR/krb5cc
export LDAPTLS_CACERT=$TLS_DIR/ca.pem
export LDAPSASL_NOCANON=on
EOF
}

# One command at a time per state directory (pytest sessions and people may race).
mkdir -p "$SAMBA_DIR"
exec 9> "$SAMBA_DIR/.lock"
flock 9

case "${1:-}" in
  up) up ;;
  start) start_server ;;
  stop | down) stop_server ;;
  status)
    if healthy; then echo "running pid $(cat "$PIDFILE")"; else echo "not running"; exit 3; fi ;;
  reset)
    t0=$(date +%s%N)
    stop_server; restore_pristine; start_server
    log "reset in $(( ($(date +%s%N) - t0) / 1000000 )) ms" ;;
  provision) provision ;;
  export) do_export ;;
  kinit) do_kinit ;;
  env) print_env ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
