#!/usr/bin/env bash
# Installs ser-edge on a gateway (Raspberry Pi OS, Debian, Ubuntu/JetPack) from its bundle
# (`npm run bundle` → dist/bundle/, which carries a copy of this script), under systemd.
# Usage and layout: --help below, and docs/installing.md.
set -euo pipefail

readonly PROG=install-gateway.sh
readonly SERVICE_USER=ser-edge
readonly OPT_DIR=/opt/ser-edge
readonly ETC_DIR=/etc/ser-edge
readonly STATE_DIR=/var/lib/ser-edge
readonly UNIT_FILE=/etc/systemd/system/ser-edge.service
readonly SYSUSERS_FILE=/etc/sysusers.d/ser-edge.conf
readonly PATH_LINK=/usr/local/bin/ser-edge
readonly NODE_MAJOR_MIN=20

usage() {
  cat <<'EOF'
Usage:
  install-gateway.sh --profile NAME|FILE --site S --gateway G --broker URL
                     [--ca FILE] [--cert FILE --key FILE]
                     [--username-file FILE] [--password-file FILE]
                     [--bundle DIR] [--node PATH] [--reconfigure] [--no-start] [--root DIR]
  install-gateway.sh [--bundle DIR] [--no-start] [--root DIR]     upgrade: the program only
  install-gateway.sh --rollback [--no-start] [--root DIR]         back to the previous release
  install-gateway.sh --uninstall [--purge] [--root DIR]

Installs the ser-edge bundle as a systemd service:
  /opt/ser-edge/releases/VERSION-HASH/   the bundle; /opt/ser-edge/current links to the active one,
                                         /opt/ser-edge/previous to the one before (kept for --rollback)
  /opt/ser-edge/bin/ser-edge             runs the active bundle with this machine's Node.js
  /usr/local/bin/ser-edge                a link to it, for `ser-edge doctor` and `ser-edge devices`
  /etc/ser-edge/config.json              written from the options (kept on upgrade)
  /etc/ser-edge/{ca.pem,gateway.pem,gateway.key,mqtt-username,mqtt-password}
                                         copies of the files given, root:ser-edge 0640
  /var/lib/ser-edge/                     state: the outbox and the flag counter (never touched)
  /etc/systemd/system/ser-edge.service   the hardened unit, running as system user ser-edge
  /etc/sysusers.d/ser-edge.conf          that account: group ser-edge, member of audio

Options:
  --profile NAME|FILE  a profile of the bundle's firmware-config/ (raspberry-pi-4, raspberry-pi-5,
                       jetson-nano, jetson-orin, generic-linux) or your own profile file (copied to
                       /etc/ser-edge/profiles/)
  --site S, --gateway G  the MQTT topic levels ser/v1/S/G (letters, digits, '.', '-', '_')
  --broker URL         mqtts://host:8883 (TLS) or mqtt://host:1883
  --ca FILE            the CA that signed the broker's certificate (mqtts only)
  --cert FILE --key FILE   the gateway's client certificate and key (mqtts only)
  --username-file FILE --password-file FILE   the broker login, one line each
  --bundle DIR         the bundle to install (default: this script's folder when it holds
                       ser-edge.mjs, else ../dist/bundle of the checkout it is in)
  --node PATH          the Node.js (20 or newer) the service runs (default: `node` on the PATH)
  --reconfigure        rewrite /etc/ser-edge/config.json from the options given, keeping its
                       other settings (the old file is kept as config.json.TIMESTAMP.bak)
  --no-start           install, but do not enable or (re)start the service
  --rollback           make the previous release the active one again and restart
  --uninstall          stop and remove the service and the program; keep the config, the
                       state (outbox) and the account
  --purge              with --uninstall: also remove /etc/ser-edge, /var/lib/ser-edge and the account
  --root DIR           lay everything out under DIR (created if missing) and change nothing on
                       this machine: the commands that would change it (account, packages,
                       ownership, systemd) are printed as "would run: …" instead
  -h, --help           this text

Exit status: 0 done, 1 a step failed, 2 a wrong option or input (nothing was changed).
EOF
}

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
# Usage and input errors exit 2, before anything is written.
die_usage() {
  printf '%s: %s\n' "$PROG" "$1" >&2
  shift
  local line
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 2
}
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

# A command that changes this machine (account, packages, ownership, systemd): run and
# shown, or with --root only shown, so a --root run leaves the host as it was.
host() {
  local shown
  shown=$(printf '%q ' "$@")
  if [[ -n $ROOT ]]; then
    say "would run: ${shown% }"
  else
    say "+ ${shown% }"
    "$@"
  fi
}

# Where a target path is written: under --root DIR, or the path itself.
at() { printf '%s%s' "$ROOT" "$1"; }

# ---------------------------------------------------------------------------------------
# options

ROOT=''
BUNDLE=''
PROFILE=''
SITE=''
GATEWAY=''
BROKER=''
CA_FILE=''
CERT_FILE=''
KEY_FILE=''
USERNAME_FILE=''
PASSWORD_FILE=''
NODE_BIN=''
RECONFIGURE=0
NO_START=0
ACTION=install
PURGE=0

parse_options() {
  local opt
  while [[ $# -gt 0 ]]; do
    opt=$1
    case $opt in
      -h | --help) usage; exit 0 ;;
      --reconfigure) RECONFIGURE=1; shift; continue ;;
      --no-start) NO_START=1; shift; continue ;;
      --uninstall) ACTION=uninstall; shift; continue ;;
      --rollback) ACTION=rollback; shift; continue ;;
      --purge) PURGE=1; shift; continue ;;
      --root | --bundle | --profile | --site | --gateway | --broker | --ca | --cert | --key | --username-file | --password-file | --node)
        [[ $# -ge 2 && -n $2 ]] || die_usage "$opt needs a value" "see $PROG --help"
        ;;
      --*=*) die_usage "write '${opt%%=*} ${opt#*=}' (a space, not '=')" ;;
      *) die_usage "unknown option '$opt'" "see $PROG --help" ;;
    esac
    case $opt in
      --root) ROOT=$2 ;;
      --bundle) BUNDLE=$2 ;;
      --profile) PROFILE=$2 ;;
      --site) SITE=$2 ;;
      --gateway) GATEWAY=$2 ;;
      --broker) BROKER=$2 ;;
      --ca) CA_FILE=$2 ;;
      --cert) CERT_FILE=$2 ;;
      --key) KEY_FILE=$2 ;;
      --username-file) USERNAME_FILE=$2 ;;
      --password-file) PASSWORD_FILE=$2 ;;
      --node) NODE_BIN=$2 ;;
    esac
    shift 2
  done

  if [[ $PURGE -eq 1 && $ACTION != uninstall ]]; then die_usage "--purge goes with --uninstall"; fi
  if [[ $ACTION != install ]]; then
    local given
    given=$(config_options_given)
    [[ -z $given && $RECONFIGURE -eq 0 ]] || die_usage "--$ACTION takes no install options (got: ${given:---reconfigure})"
    [[ -z $BUNDLE && -z $NODE_BIN ]] || die_usage "--$ACTION takes no --bundle or --node"
  fi
  if [[ -n $ROOT ]]; then
    mkdir -p -- "$ROOT" 2>/dev/null || die_usage "--root $ROOT: cannot create this directory"
    ROOT=$(cd "$ROOT" && pwd -P)
    [[ $ROOT != / ]] || die_usage "--root / would be this machine: leave --root out to install here"
  elif [[ $(id -u) -ne 0 ]]; then
    die_usage "installing on this machine needs root: run it with sudo (or try it first with --root DIR)"
  fi
}

# The options that end up in config.json, as given (for messages).
config_options_given() {
  local out=''
  [[ -z $PROFILE ]] || out+=' --profile'
  [[ -z $SITE ]] || out+=' --site'
  [[ -z $GATEWAY ]] || out+=' --gateway'
  [[ -z $BROKER ]] || out+=' --broker'
  [[ -z $CA_FILE ]] || out+=' --ca'
  [[ -z $CERT_FILE ]] || out+=' --cert'
  [[ -z $KEY_FILE ]] || out+=' --key'
  [[ -z $USERNAME_FILE ]] || out+=' --username-file'
  [[ -z $PASSWORD_FILE ]] || out+=' --password-file'
  printf '%s' "${out# }"
}

# ---------------------------------------------------------------------------------------
# checks: everything is validated before the first file is written

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

find_bundle() {
  if [[ -z $BUNDLE ]]; then
    if [[ -f $SCRIPT_DIR/ser-edge.mjs ]]; then
      BUNDLE=$SCRIPT_DIR
    elif [[ -f $SCRIPT_DIR/../package.json ]]; then
      BUNDLE=$SCRIPT_DIR/../dist/bundle
      [[ -f $BUNDLE/ser-edge.mjs ]] || die_usage "no bundle in $(cd "$SCRIPT_DIR/.." && pwd -P)/dist/bundle" \
        "build it first: npm ci && npm run bundle (in the checkout), or pass --bundle DIR"
    else
      die_usage "no ser-edge.mjs beside this script: pass --bundle DIR (the folder \`npm run bundle\` writes)"
    fi
  fi
  [[ -d $BUNDLE ]] || die_usage "--bundle $BUNDLE: no such directory"
  BUNDLE=$(cd "$BUNDLE" && pwd -P)
  local need
  for need in ser-edge.mjs firmware-config/ser-edge.service models/default/manifest.json schemas/config.schema.json; do
    [[ -f $BUNDLE/$need ]] || die_usage "$BUNDLE is not a complete ser-edge bundle: $need is missing" \
      "rebuild it with npm run bundle and copy the whole folder"
  done
}

glibc_version() { getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}'; }

# What to run to get Node.js 20+, for the machine this runs on. docs/installing.md shows
# the same commands (a test keeps them in step).
node_help() {
  local found=$1
  printf '%s: Node.js %s or newer is needed (%s).\n' "$PROG" "$NODE_MAJOR_MIN" "$found"
  cat <<'EOF'
  Install it, then run this script again (or pass --node PATH):
    Raspberry Pi OS 64-bit, Debian 12, Ubuntu 20.04 or newer (JetPack 5 and 6), on arm64 or amd64:
      curl -fsSL https://deb.nodesource.com/setup_22.x -o nodesource_setup.sh
      sudo bash nodesource_setup.sh
      sudo apt-get install -y nodejs
    Debian 13 (trixie) and newer ship Node.js 20 or newer:
      sudo apt-get install -y nodejs
EOF
  local glibc arch
  glibc=$(glibc_version)
  arch=$(uname -m)
  if [[ -n $glibc ]] && version_lt "$glibc" 2.28; then
    printf '  This system has glibc %s; Node.js 20 release builds need 2.28 or newer. JetPack 4\n' "$glibc"
    printf '  (Ubuntu 18.04) is too old for them: the gateway needs Ubuntu 20.04 or newer first\n'
    printf '  (JetPack 5 or 6 on a Jetson Xavier or Orin).\n'
  fi
  case $arch in
    armv6l | armv7l)
      printf '  This is a 32-bit ARM system (%s): install the 64-bit Raspberry Pi OS (Pi 3 and newer),\n' "$arch"
      printf '  or Node.js 22 for armv7l from https://nodejs.org/dist/latest-v22.x/ (Node.js 24 has no 32-bit builds).\n'
      ;;
  esac
}

version_lt() { [[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$1" ]]; }

check_node() {
  if [[ -z $NODE_BIN ]]; then
    NODE_BIN=$(command -v node || true)
    if [[ -z $NODE_BIN ]]; then node_help 'there is no node on the PATH' >&2; exit 2; fi
  fi
  [[ -x $NODE_BIN && ! -d $NODE_BIN ]] || die_usage "--node $NODE_BIN: not an executable file"
  [[ $NODE_BIN == /* ]] || NODE_BIN=$(cd "$(dirname "$NODE_BIN")" && pwd -P)/$(basename "$NODE_BIN")
  local version
  version=$("$NODE_BIN" -p 'process.versions.node' 2>/dev/null) || die_usage "$NODE_BIN does not run (is it Node.js?)"
  if [[ ! $version =~ ^[0-9]+\. ]] || ((${version%%.*} < NODE_MAJOR_MIN)); then
    node_help "$NODE_BIN is version $version" >&2
    exit 2
  fi
  # The unit has ProtectHome=yes, and the service account cannot enter home directories
  # anyway: a Node from nvm or a tarball under /home or /root would not start.
  local real
  real=$(readlink -f "$NODE_BIN")
  case "$NODE_BIN:$real" in
    /home/* | /root/* | *:/home/* | *:/root/*)
      die_usage "$NODE_BIN ($real) is inside a home directory, which the service cannot reach" \
        "install a system Node.js (see below), or pass --node with one under /usr or /opt" \
        "curl -fsSL https://deb.nodesource.com/setup_22.x -o nodesource_setup.sh && sudo bash nodesource_setup.sh && sudo apt-get install -y nodejs"
      ;;
  esac
  [[ $NODE_BIN != *[\'\"\\$'\n']* ]] || die_usage "--node $NODE_BIN: quotes, backslashes or newlines in the path are not supported"
  NODE_VERSION=$version
}

readonly TOPIC_LEVEL_RE='^[A-Za-z0-9_.-]+$'
readonly PROFILE_NAME_RE='^[A-Za-z0-9_-]+$'

# A profile name of the bundle, or a profile file of the user's.
check_profile() {
  [[ -n $PROFILE ]] || return 0
  if [[ $PROFILE =~ $PROFILE_NAME_RE ]]; then
    if [[ ! -f $BUNDLE/firmware-config/$PROFILE.json ]]; then
      local names
      names=$(cd "$BUNDLE/firmware-config" && for f in *.json; do [[ $f == site-example.json ]] || printf '%s ' "${f%.json}"; done)
      die_usage "--profile $PROFILE: no such profile in the bundle" "use one of: ${names% }, or a path to your own profile file"
    fi
    PROFILE_FILE=''
  else
    [[ -f $PROFILE && -r $PROFILE ]] || die_usage "--profile $PROFILE: cannot read this file" "give a profile name (raspberry-pi-4, …) or a readable profile file"
    [[ $(basename "$PROFILE") =~ ^[A-Za-z0-9_.-]+\.json$ ]] || die_usage "--profile $PROFILE: a profile file's name must end in .json (letters, digits, '.', '-', '_')"
    "$NODE_BIN" -e 'JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"))' "$PROFILE" 2>/dev/null ||
      die_usage "--profile $PROFILE: not valid JSON" "check it with: node -e 'JSON.parse(require(\"fs\").readFileSync(process.argv[1]))' $PROFILE"
    PROFILE_FILE=$PROFILE
  fi
}

check_readable() {
  local opt=$1 file=$2
  [[ -z $file ]] && return 0
  [[ -f $file && -r $file ]] || die_usage "$opt $file: cannot read this file"
  [[ -s $file ]] || die_usage "$opt $file: the file is empty"
}

check_config_options() {
  local config_exists=$1
  if [[ $config_exists -eq 0 ]]; then
    local missing=''
    [[ -n $PROFILE ]] || missing+=' --profile'
    [[ -n $SITE ]] || missing+=' --site'
    [[ -n $GATEWAY ]] || missing+=' --gateway'
    [[ -n $BROKER ]] || missing+=' --broker'
    [[ -z $missing ]] || die_usage "a first install needs${missing} (there is no $ETC_DIR/config.json yet)" \
      "for example: $PROG --profile raspberry-pi-4 --site lyon-2 --gateway desk-row-a --broker mqtts://mqtt.example:8883 --ca ca.pem"
  fi
  [[ -z $SITE || $SITE =~ $TOPIC_LEVEL_RE ]] || die_usage "--site $SITE: use letters, digits, '.', '-' or '_' (it becomes an MQTT topic level)"
  [[ -z $GATEWAY || $GATEWAY =~ $TOPIC_LEVEL_RE ]] || die_usage "--gateway $GATEWAY: use letters, digits, '.', '-' or '_' (it becomes an MQTT topic level)"
  if [[ -n $BROKER ]]; then
    if [[ ! $BROKER =~ ^(mqtts?|wss?)://[^[:space:]]+$ ]]; then
      if [[ $BROKER =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]]; then
        die_usage "--broker $BROKER: add the scheme: mqtts://$BROKER (TLS) or mqtt://$BROKER (plain)"
      fi
      die_usage "--broker $BROKER: use mqtts://host:8883 (TLS) or mqtt://host:1883"
    fi
  fi
  [[ -n $CERT_FILE || -z $KEY_FILE ]] || die_usage "--key needs --cert (the client certificate it belongs to)"
  [[ -z $CERT_FILE || -n $KEY_FILE ]] || die_usage "--cert needs --key (the certificate's private key)"
  local scheme=''
  if [[ -n $BROKER ]]; then
    scheme=${BROKER%%://*}
  elif [[ $config_exists -eq 1 ]]; then
    scheme=$(config_broker_scheme)
  fi
  if [[ -n $CA_FILE$CERT_FILE && ( $scheme == mqtt || $scheme == ws ) ]]; then
    die_usage "--ca/--cert/--key are for a TLS broker, but the broker is $scheme://: use mqtts:// (or wss://)"
  fi
  check_readable --ca "$CA_FILE"
  check_readable --cert "$CERT_FILE"
  check_readable --key "$KEY_FILE"
  check_readable --username-file "$USERNAME_FILE"
  check_readable --password-file "$PASSWORD_FILE"
}

config_broker_scheme() {
  "$NODE_BIN" -e '
    const url = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).mqtt?.url ?? "";
    process.stdout.write(url.split("://")[0]);' "$(at "$ETC_DIR/config.json")" 2>/dev/null || true
}

# The version the bundle reports, which also proves it runs on this Node.js.
bundle_version() {
  local out
  out=$("$NODE_BIN" "$BUNDLE/ser-edge.mjs" --version 2>&1) || die_usage "$BUNDLE/ser-edge.mjs does not run on $NODE_BIN (Node.js $NODE_VERSION):" "$out"
  out=$(printf '%s\n' "$out" | tail -n 1)
  [[ $out =~ ^[0-9A-Za-z.+-]+$ ]] || die_usage "$BUNDLE/ser-edge.mjs --version printed '$out', not a version"
  printf '%s' "$out"
}

# A release is named by its version and its content, so a rebuilt bundle of the same
# version is a release of its own and installing the same bundle twice changes nothing.
bundle_hash() {
  (cd "$BUNDLE" && find -L . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12
}

# ---------------------------------------------------------------------------------------
# writing

# Ownership needs the service account, which exists only on the target: chown is a host
# command, run once per owner after the files are in place (they are 0640/0750 root-owned
# until then, so nobody else reads them in between).
declare -a OWNERS=()
declare -A OWNED=()
own() {
  local owner=$1 path=$2
  [[ -n ${OWNED[$owner]+set} ]] || { OWNERS+=("$owner"); OWNED[$owner]=''; }
  OWNED[$owner]+="$path"$'\n'
}

apply_ownership() {
  local owner paths
  for owner in "${OWNERS[@]}"; do
    mapfile -t paths < <(printf '%s' "${OWNED[$owner]}")
    host chown "$owner" "${paths[@]}"
  done
}

make_dir() {
  local mode=$1 owner=$2 path=$3
  mkdir -p "$(at "$path")"
  chmod "$mode" "$(at "$path")"
  own "$owner" "$path"
}

# A credential or profile: copied whole, then moved into place, so the service never reads half a file.
put_file() {
  local mode=$1 owner=$2 src=$3 dest=$4 target
  target=$(at "$dest")
  if [[ -e $target && $(readlink -f "$src") == $(readlink -f "$target") ]]; then
    chmod "$mode" "$target"
  else
    cp "$src" "$target.new"
    chmod "$mode" "$target.new"
    mv -f "$target.new" "$target"
  fi
  own "$owner" "$dest"
}

ensure_alsa_utils() {
  if [[ -n $ROOT ]]; then
    [[ -x $ROOT/usr/bin/arecord ]] || host apt-get install -y --no-install-recommends alsa-utils
    return 0
  fi
  command -v arecord >/dev/null && return 0
  if ! command -v apt-get >/dev/null; then
    warn "arecord is missing and there is no apt-get here: install alsa-utils (arecord) with this system's package manager; the headset channels cannot record without it"
    return 0
  fi
  # A fresh image may have no package lists yet: update once, then try again.
  export DEBIAN_FRONTEND=noninteractive
  if host apt-get install -y --no-install-recommends alsa-utils || { host apt-get update && host apt-get install -y --no-install-recommends alsa-utils; }; then
    return 0
  fi
  warn "could not install alsa-utils; the headset channels cannot record without it: run 'sudo apt-get update && sudo apt-get install -y alsa-utils' when the network is up"
}

ensure_account() {
  mkdir -p "$(at "${SYSUSERS_FILE%/*}")"
  cat >"$(at "$SYSUSERS_FILE")" <<'EOF'
# The ser-edge service account (written by install-gateway.sh): a system user with its own
# group, which may read /etc/ser-edge and owns /var/lib/ser-edge, and a member of audio,
# which may open the ALSA capture devices.
u ser-edge - "ser-edge speech-emotion daemon" /var/lib/ser-edge
m ser-edge audio
EOF
  chmod 0644 "$(at "$SYSUSERS_FILE")"
  if [[ -z $ROOT ]] && ! command -v systemd-sysusers >/dev/null; then
    die "systemd-sysusers is missing, so the account cannot be created from $SYSUSERS_FILE; create it by hand, then run this again:
  sudo useradd --system --user-group --home-dir $STATE_DIR --no-create-home --shell /usr/sbin/nologin $SERVICE_USER
  sudo usermod -a -G audio $SERVICE_USER"
  fi
  host systemd-sysusers "$SYSUSERS_FILE"
}

# Writes config.json from the options: a fresh file, or (--reconfigure) the existing one
# with the given settings replaced and the rest kept. JSON is written by Node.js so that
# no value needs shell quoting.
write_config() {
  local base=$1 extends=$2 dest tmp
  dest=$(at "$ETC_DIR/config.json")
  tmp=$dest.new
  SE_BASE=$base SE_EXTENDS=$extends SE_SITE=$SITE SE_GATEWAY=$GATEWAY SE_BROKER=$BROKER \
    SE_CA=${CA_FILE:+$ETC_DIR/ca.pem} SE_CERT=${CERT_FILE:+$ETC_DIR/gateway.pem} SE_KEY=${KEY_FILE:+$ETC_DIR/gateway.key} \
    SE_USERNAME=${USERNAME_FILE:+$ETC_DIR/mqtt-username} SE_PASSWORD=${PASSWORD_FILE:+$ETC_DIR/mqtt-password} \
    SE_SCHEMA=$OPT_DIR/current/schemas/config.schema.json SE_STATE=$STATE_DIR \
    "$NODE_BIN" - "$tmp" <<'EOF'
const fs = require('node:fs');
const e = process.env;
const fresh = e.SE_BASE === '';
const config = fresh ? {} : JSON.parse(fs.readFileSync(e.SE_BASE, 'utf8'));
const set = (obj, key, value) => { if (value) obj[key] = value; };
if (fresh) config.$schema = e.SE_SCHEMA;
set(config, 'extends', e.SE_EXTENDS);
set(config, 'site', e.SE_SITE);
set(config, 'gateway', e.SE_GATEWAY);
if (fresh) config.stateDir = e.SE_STATE;
const mqtt = (config.mqtt ??= {});
if (e.SE_BROKER) {
  mqtt.url = e.SE_BROKER;
  // A TLS broker: refuse a plain link even if the URL is later overridden (SER_EDGE_MQTT_URL).
  if (/^(mqtts|wss):/.test(e.SE_BROKER)) mqtt.requireTls = true;
  else { delete mqtt.requireTls; delete mqtt.tls; }
}
if (e.SE_CA || e.SE_CERT) {
  const tls = (mqtt.tls ??= {});
  set(tls, 'ca', e.SE_CA);
  set(tls, 'cert', e.SE_CERT);
  set(tls, 'key', e.SE_KEY);
}
set(mqtt, 'usernameFile', e.SE_USERNAME);
set(mqtt, 'passwordFile', e.SE_PASSWORD);
fs.writeFileSync(process.argv[2], JSON.stringify(config, null, 2) + '\n', { mode: 0o640 });
EOF
  chmod 0640 "$tmp"
  mv -f "$tmp" "$dest"
  own "root:$SERVICE_USER" "$ETC_DIR/config.json"
}

install_config() {
  local config_exists=$1 extends=''
  make_dir 0750 "root:$SERVICE_USER" "$ETC_DIR"
  [[ -z $CA_FILE ]] || put_file 0640 "root:$SERVICE_USER" "$CA_FILE" "$ETC_DIR/ca.pem"
  [[ -z $CERT_FILE ]] || put_file 0640 "root:$SERVICE_USER" "$CERT_FILE" "$ETC_DIR/gateway.pem"
  [[ -z $KEY_FILE ]] || put_file 0640 "root:$SERVICE_USER" "$KEY_FILE" "$ETC_DIR/gateway.key"
  [[ -z $USERNAME_FILE ]] || put_file 0640 "root:$SERVICE_USER" "$USERNAME_FILE" "$ETC_DIR/mqtt-username"
  [[ -z $PASSWORD_FILE ]] || put_file 0640 "root:$SERVICE_USER" "$PASSWORD_FILE" "$ETC_DIR/mqtt-password"

  if [[ $config_exists -eq 1 && $RECONFIGURE -eq 0 ]]; then
    local given
    given=$(config_options_given)
    say "kept $ETC_DIR/config.json${given:+ as it is, without $given (add --reconfigure to write the options into it)}"
    return 0
  fi
  if [[ -n $PROFILE ]]; then
    if [[ -n $PROFILE_FILE ]]; then
      make_dir 0750 "root:$SERVICE_USER" "$ETC_DIR/profiles"
      put_file 0640 "root:$SERVICE_USER" "$PROFILE_FILE" "$ETC_DIR/profiles/$(basename "$PROFILE_FILE")"
      # Relative to config.json, so it resolves the same under --root and on the gateway.
      extends=profiles/$(basename "$PROFILE_FILE")
    else
      extends=$PROFILE
    fi
  fi
  if [[ $config_exists -eq 1 ]]; then
    local backup
    backup=$ETC_DIR/config.json.$(date -u +%Y%m%dT%H%M%SZ).bak
    cp -p "$(at "$ETC_DIR/config.json")" "$(at "$backup")"
    write_config "$(at "$backup")" "$extends"
    say "rewrote $ETC_DIR/config.json (the old one is $backup)"
  else
    write_config '' "$extends"
    say "wrote $ETC_DIR/config.json"
  fi
}

# The bundle under /opt/ser-edge/releases/ID, made the current release.
install_release() {
  local version=$1 id
  id=$version-$(bundle_hash)
  local releases
  releases=$(at "$OPT_DIR/releases")
  mkdir -p "$releases"
  chmod 0755 "$(at "$OPT_DIR")" "$releases"
  if [[ -d $releases/$id ]]; then
    say "release $id is already in $OPT_DIR/releases"
  else
    local partial=$releases/.$id.partial
    rm -rf "$partial"
    cp -RL "$BUNDLE/." "$partial/"
    # Root-owned and read-only to everyone else, whatever the copied folder's modes were.
    find "$partial" -type d -exec chmod 0755 {} +
    find "$partial" -type f -exec chmod 0644 {} +
    [[ ! -f $partial/$PROG ]] || chmod 0755 "$partial/$PROG"
    mv -T "$partial" "$releases/$id"
    say "installed release $id in $OPT_DIR/releases/$id"
  fi
  local current
  current=$(current_release)
  if [[ -n $current && $current != "$id" ]]; then
    swap_link "$OPT_DIR/previous" "releases/$current"
  fi
  swap_link "$OPT_DIR/current" "releases/$id"
  prune_releases
  RELEASE_ID=$id
}

current_release() {
  local link
  link=$(at "$OPT_DIR/current")
  [[ -L $link ]] || return 0
  basename "$(readlink "$link")"
}

previous_release() {
  local link
  link=$(at "$OPT_DIR/previous")
  [[ -L $link ]] || return 0
  basename "$(readlink "$link")"
}

# Replaces a symlink in one rename, so the unit never sees it missing.
swap_link() {
  local link target=$2
  link=$(at "$1")
  ln -sfn "$target" "$link.new"
  mv -Tf "$link.new" "$link"
}

# Keeps the current release and the previous one (for --rollback); older ones go.
prune_releases() {
  local dir keep_current keep_previous name
  keep_current=$(current_release)
  keep_previous=$(previous_release)
  for dir in "$(at "$OPT_DIR/releases")"/* "$(at "$OPT_DIR/releases")"/.*.partial; do
    [[ -e $dir ]] || continue
    name=$(basename "$dir")
    [[ $name == "$keep_current" || $name == "$keep_previous" ]] && continue
    rm -rf "$dir"
    say "removed old release $name"
  done
}

write_wrapper() {
  local bin
  bin=$(at "$OPT_DIR/bin")
  mkdir -p "$bin"
  chmod 0755 "$bin"
  cat >"$bin/ser-edge.new" <<EOF
#!/bin/sh
# ser-edge as installed by install-gateway.sh: the active release (/opt/ser-edge/current)
# run by the Node.js found at install time. After moving Node.js, run the installer again.
node='$NODE_BIN'
if [ ! -x "\$node" ]; then
  echo "ser-edge: \$node is gone: install Node.js $NODE_MAJOR_MIN or newer and run install-gateway.sh again (docs/installing.md)" >&2
  exit 127
fi
here=\$(dirname "\$(readlink -f "\$0")")
exec "\$node" "\$here/../current/ser-edge.mjs" "\$@"
EOF
  chmod 0755 "$bin/ser-edge.new"
  mv -f "$bin/ser-edge.new" "$bin/ser-edge"
}

# `ser-edge` on the PATH for technicians, unless another ser-edge (an npm install) is there.
link_on_path() {
  local link
  link=$(at "$PATH_LINK")
  if [[ -L $link && $(readlink "$link") == "$OPT_DIR/bin/ser-edge" ]]; then return 0; fi
  if [[ -e $link || -L $link ]]; then
    warn "$PATH_LINK is another ser-edge (an npm install?), left as it is; the service runs $OPT_DIR/bin/ser-edge"
    return 0
  fi
  mkdir -p "$(dirname "$link")"
  ln -s "$OPT_DIR/bin/ser-edge" "$link"
}

make_state_dir() {
  local dir
  dir=$(at "$STATE_DIR")
  # A symlink here is systemd's DynamicUser layout (/var/lib/private/ser-edge) from an
  # older unit: systemd moves it back and hands it to the account at the next start.
  if [[ -L $dir ]]; then
    say "kept $STATE_DIR (systemd moves it out of /var/lib/private at the next start)"
    return 0
  fi
  if [[ -d $dir ]]; then
    say "kept $STATE_DIR and everything in it (the outbox and the flag counter)"
    return 0
  fi
  mkdir -p "$dir"
  chmod 0750 "$dir"
  own "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
}

install_unit() {
  mkdir -p "$(at "${UNIT_FILE%/*}")"
  cp "$BUNDLE/firmware-config/ser-edge.service" "$(at "$UNIT_FILE").new"
  chmod 0644 "$(at "$UNIT_FILE").new"
  mv -f "$(at "$UNIT_FILE").new" "$(at "$UNIT_FILE")"
}

systemd_running() { [[ -n $ROOT || -d /run/systemd/system ]]; }

start_service() {
  if ! systemd_running; then
    warn "systemd is not running on this machine, so the service was not started; on the gateway: sudo systemctl daemon-reload && sudo systemctl enable --now ser-edge"
    return 0
  fi
  host systemctl daemon-reload
  if [[ $NO_START -eq 1 ]]; then
    say "not started (--no-start); when the config is ready: sudo systemctl enable --now ser-edge"
    return 0
  fi
  host systemctl enable ser-edge
  # restart rather than start: an upgrade must replace the running program.
  host systemctl restart ser-edge
  [[ -n $ROOT ]] || check_started
}

# The daemon exits 2 on a config it cannot use, and the unit does not restart it then:
# a few seconds tell whether it came up.
check_started() {
  sleep 5
  if systemctl is-active --quiet ser-edge && [[ $(systemctl show -p NRestarts --value ser-edge 2>/dev/null || echo 0) == 0 ]]; then
    say "ser-edge is running: journalctl -u ser-edge -f shows its log, sudo -u ser-edge ser-edge doctor --config $ETC_DIR/config.json checks it"
    return 0
  fi
  journalctl -u ser-edge -n 20 --no-pager >&2 || true
  die "ser-edge did not stay up (its last log lines are above): fix what they name in $ETC_DIR/config.json, then sudo systemctl restart ser-edge"
}

# ---------------------------------------------------------------------------------------
# actions

do_install() {
  find_bundle
  check_node
  local config_exists=0
  [[ -f $(at "$ETC_DIR/config.json") ]] && config_exists=1
  check_profile
  check_config_options "$config_exists"
  local version
  version=$(bundle_version)
  [[ -z $ROOT ]] || say "laying out ser-edge $version under $ROOT; nothing on this machine is changed"

  ensure_alsa_utils
  ensure_account
  install_config "$config_exists"
  make_state_dir
  install_release "$version"
  write_wrapper
  link_on_path
  install_unit
  apply_ownership
  start_service
  say "ser-edge $version installed ($OPT_DIR/current -> releases/$RELEASE_ID)"
}

do_rollback() {
  local current previous
  current=$(current_release)
  previous=$(previous_release)
  [[ -n $current ]] || die_usage "nothing is installed in $OPT_DIR"
  [[ -n $previous && -d $(at "$OPT_DIR/releases/$previous") ]] || die_usage "there is no previous release in $OPT_DIR to go back to"
  swap_link "$OPT_DIR/current" "releases/$previous"
  swap_link "$OPT_DIR/previous" "releases/$current"
  BUNDLE=$(at "$OPT_DIR/current")
  install_unit
  say "rolled back to release $previous (release $current is kept as $OPT_DIR/previous)"
  start_service
}

do_uninstall() {
  if [[ -e $(at "$UNIT_FILE") ]]; then
    if systemd_running; then host systemctl disable --now ser-edge; fi
    rm -f "$(at "$UNIT_FILE")"
    if systemd_running; then host systemctl daemon-reload; fi
  fi
  local link
  link=$(at "$PATH_LINK")
  if [[ -L $link && $(readlink "$link") == "$OPT_DIR/bin/ser-edge" ]]; then rm -f "$link"; fi
  rm -rf "$(at "$OPT_DIR")"
  say "removed the service and $OPT_DIR"
  if [[ $PURGE -eq 0 ]]; then
    say "kept $ETC_DIR (config and credentials), $STATE_DIR (the outbox and the flag counter) and the account $SERVICE_USER; $PROG --uninstall --purge removes them"
    return 0
  fi
  rm -rf "$(at "$ETC_DIR")" "$(at "$STATE_DIR")" "$(at /var/lib/private/ser-edge)"
  rm -f "$(at "$SYSUSERS_FILE")"
  if [[ -n $ROOT ]] || getent passwd "$SERVICE_USER" >/dev/null; then host userdel "$SERVICE_USER"; fi
  if [[ -z $ROOT ]] && getent group "$SERVICE_USER" >/dev/null; then host groupdel "$SERVICE_USER"; fi
  say "purged $ETC_DIR, $STATE_DIR and the account $SERVICE_USER"
}

main() {
  umask 022
  parse_options "$@"
  case $ACTION in
    install) do_install ;;
    rollback) do_rollback ;;
    uninstall) do_uninstall ;;
  esac
}

# Called last, so bash has read the whole file before --uninstall deletes the copy it runs from.
main "$@"
exit
