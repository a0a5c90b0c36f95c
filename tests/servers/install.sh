#!/usr/bin/env bash
# Debian packages for the integration-test directory servers (Samba AD DC, OpenLDAP slapd, Kerberos
# client) and for building the Python packages `gssapi` and `python-ldap` of the test extra. Idempotent: when every package is already
# installed it only runs `dpkg -s` (well under a second). Needs root.
#
#   tests/servers/install.sh          # install what is missing
#   tests/servers/install.sh --check  # exit 0 if everything is installed, 1 if not (installs nothing)
set -euo pipefail

PACKAGES=(
  # Samba as an Active Directory domain controller, and the ldb tools to edit its database offline
  samba samba-dsdb-modules samba-vfs-modules samba-ad-provision ldb-tools python3-samba
  # OpenLDAP server and the ldapsearch/ldapadd clients
  slapd ldap-utils
  # Kerberos: kinit/klist, and the Cyrus SASL GSSAPI plugin so ldapsearch -Y GSSAPI works
  krb5-user libsasl2-modules-gssapi-mit
  # the test CA and certificates
  openssl
  # to compile the test extra's `gssapi` (no Linux wheels on PyPI) and `python-ldap`
  libkrb5-dev libldap2-dev libsasl2-dev gcc
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "missing packages: ${missing[*]}"
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: root needed to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Debian's maintainer scripts start smbd/nmbd/slapd/krb5 daemons bound to every interface unless
# policy-rc.d forbids it (exit 101). Keep an existing policy; otherwise install ours for good:
# these servers are only ever started by tests/servers/*.sh, on 127.0.0.1.
if [ ! -x /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# installed by syncprep tests/servers/install.sh: no daemon starts from a package install\nexit 101\n' \
    > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi
# Answer the questions krb5-config and slapd would ask (realm, no slapd domain set-up).
debconf-set-selections <<'SEL'
krb5-config krb5-config/default_realm string EXAMPLE.TEST
krb5-config krb5-config/add_servers_realm string EXAMPLE.TEST
krb5-config krb5-config/read_conf boolean true
slapd slapd/no_configuration boolean true
SEL
echo "installing: ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
