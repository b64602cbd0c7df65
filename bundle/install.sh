#!/usr/bin/env bash
# Offline installer of the ward alarm gateway, shipped in its bundle (docs/install.md).
# Installs from the bundle's wheels only (pip --no-index): the Pi needs no internet.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install.sh [install|upgrade|rollback|uninstall|status] [--root DIR] [--python PY]

  install    first installation: the alarm-gateway user and groups, folders and modes, a
             virtualenv from the bundled wheels, the systemd unit, a config to edit
  upgrade    install this bundle beside the running version, check the site's config with
             it, switch to it and restart; the previous version is kept
  rollback   back to the previous version and restart (no bundle needed:
             sudo /opt/alarm-gateway/install.sh rollback)
  uninstall  remove the program and the unit; keeps /etc/alarm-gateway (config, secrets)
             and /var/lib/alarm-gateway (journal, registry) and the user
  status     which versions are installed, which one runs

  --root DIR   install under DIR (a scratch root: no user, no chown, no systemctl)
  --python PY  the Python to build the virtualenv with (default python3)
EOF
}

HERE=$(cd "$(dirname "$0")" && pwd)
ACTION=install
ROOT=""
PY=python3
while [ $# -gt 0 ]; do
    case "$1" in
        install|upgrade|rollback|uninstall|status) ACTION=$1 ;;
        --root) ROOT=$(mkdir -p "$2" && cd "$2" && pwd); shift ;;
        --python) PY=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

PREFIX="$ROOT/opt/alarm-gateway"
ETC="$ROOT/etc/alarm-gateway"
STATE="$ROOT/var/lib/alarm-gateway"
UNITDIR="$ROOT/etc/systemd/system"
BINDIR="$ROOT/usr/local/bin"
USER_NAME=alarm-gateway
UNIT=alarm-gateway.service

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
scratch() { [ -n "$ROOT" ]; }
with_systemd() { ! scratch && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }
own() { scratch || chown "$@"; }

need_root() {
    scratch && return 0
    [ "$(id -u)" = 0 ] || die "run it as root (sudo ./install.sh $ACTION), or with --root DIR"
}

# -- the bundle ------------------------------------------------------------------------
VERSION=""
EXTRAS="[sim]"
SYSTEM_SITE=""
check_bundle() {
    [ -f "$HERE/VERSION" ] && [ -d "$HERE/wheels" ] ||
        die "$HERE is not a bundle (no VERSION, no wheels/): run the install.sh inside the unpacked bundle"
    VERSION=$(cat "$HERE/VERSION")
    local want have
    want=$(cat "$HERE/PYTHON")
    have=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) ||
        die "no $PY on this machine (Raspberry Pi OS bookworm has python3 3.11)"
    [ "$want" = "$have" ] ||
        die "this bundle's wheels are for Python $want, $PY is $have: use the bundle for this machine"
    (cd "$HERE" && sha256sum --quiet --strict -c SHA256SUMS) ||
        die "the bundle is damaged (checksums differ): copy it again"
    if [ -s "$HERE/MISSING-WHEELS.txt" ]; then
        say "PyPI has no wheel for this machine for: $(tr '\n' ' ' < "$HERE/MISSING-WHEELS.txt")"
        say "using Debian's packages for them (apt-get install python3-cffi python3-argon2 python3-psutil python3-yaml)"
        SYSTEM_SITE=--system-site-packages
    fi
}

# -- user, groups, folders ---------------------------------------------------------------
make_user() {
    scratch && return 0
    local group
    for group in gpio dialout; do
        getent group "$group" >/dev/null || groupadd --system "$group"
    done
    if ! getent passwd "$USER_NAME" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /var/lib/alarm-gateway \
            --shell /usr/sbin/nologin "$USER_NAME"
        say "created the system user $USER_NAME"
    fi
    usermod -a -G gpio,dialout "$USER_NAME"
}

make_folders() {
    install -d -m 0755 "$PREFIX" "$PREFIX/releases" "$BINDIR" "$UNITDIR"
    install -d -m 0755 "$ETC"
    install -d -m 0700 "$ETC/secrets" "$STATE"
    own "$USER_NAME:$USER_NAME" "$ETC/secrets" "$STATE"
}

# -- a release: its own virtualenv under releases/<version> --------------------------------
make_release() {
    local rel="$PREFIX/releases/$VERSION" pipwhl
    rm -rf "$rel"
    mkdir -p "$rel"
    # --without-pip: no ensurepip needed (python3-venv may be absent); pip runs from its wheel
    "$PY" -m venv --without-pip $SYSTEM_SITE "$rel/venv"
    pipwhl=$(ls "$HERE"/wheels/pip-*.whl | head -n 1)
    if ! offline_pip "$rel" "$pipwhl" "ward-alarm-gateway${EXTRAS}==$VERSION"; then
        [ -n "$SYSTEM_SITE" ] || { rm -rf "$rel"; die "installing the wheels failed (above)"; }
        say "installing without the simulator (its wheels are missing here)"
        offline_pip "$rel" "$pipwhl" "ward-alarm-gateway==$VERSION" ||
            { rm -rf "$rel"; die "installing the wheels failed (above)"; }
    fi
    mkdir -p "$rel/venv/share/alarm-gateway"
    cp -R "$HERE/examples" "$rel/venv/share/alarm-gateway/examples"
    cp -R "$HERE/docs" "$rel/docs"
    cp "$HERE/VERSION" "$rel/VERSION"
}

offline_pip() {
    # only the bundle's wheels: no index, no configured find-links, no cache
    env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
        PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$1/venv/bin/python" "$2/pip" install --quiet --no-index --no-cache-dir \
        --find-links "$HERE/wheels" "$3" pip
}

install_config() {
    [ -f "$ETC/site.toml" ] && return 0
    sed "s|^path = \"var/alarm-gateway\"|path = \"$STATE\"|" "$HERE/examples/site.toml" \
        > "$ETC/site.toml"
    chmod 0640 "$ETC/site.toml"
    own "root:$USER_NAME" "$ETC/site.toml"
    say "installed the example config $ETC/site.toml: edit it for this site"
}

check_config() {
    local bin="$PREFIX/releases/$1/venv/bin/alarm-gateway"
    if scratch; then
        "$bin" check-config -c "$ETC/site.toml"
    else
        runuser -u "$USER_NAME" -- "$bin" check-config -c "$ETC/site.toml"
    fi
}

# -- switching ---------------------------------------------------------------------------
link() {  # link TARGET NAME: atomically
    ln -sfn "$1" "$2.new" && mv -Tf "$2.new" "$2"
}

switch_to() {
    local old
    old=$(readlink "$PREFIX/current" 2>/dev/null || true)
    link "releases/$1" "$PREFIX/current"
    if [ -n "$old" ] && [ "$old" != "releases/$1" ]; then
        link "$old" "$PREFIX/previous"
    fi
    link current/venv "$PREFIX/.venv"  # the unit runs /opt/alarm-gateway/.venv/bin/alarm-gateway
    link "$PREFIX/.venv/bin/alarm-gateway" "$BINDIR/alarm-gateway"
    prune
}

prune() {  # keep the current and the previous release only
    local keep_cur keep_prev rel
    keep_cur=$(basename "$(readlink "$PREFIX/current")")
    keep_prev=$(basename "$(readlink "$PREFIX/previous" 2>/dev/null || echo none)")
    for rel in "$PREFIX"/releases/*; do
        case "$(basename "$rel")" in
            "$keep_cur"|"$keep_prev") ;;
            *) rm -rf "$rel"; say "removed the old release $(basename "$rel")" ;;
        esac
    done
}

install_unit_and_self() {
    install -m 0644 "$HERE/systemd/$UNIT" "$UNITDIR/$UNIT"
    if [ "$HERE" != "$PREFIX" ]; then
        install -m 0755 "$HERE/install.sh" "$PREFIX/install.sh"
    fi
    if with_systemd; then
        systemctl daemon-reload
        systemctl enable "$UNIT" >/dev/null 2>&1
    fi
}

restart() {
    with_systemd || { say "no systemd here: start it yourself ($BINDIR/alarm-gateway run -c $ETC/site.toml)"; return 0; }
    systemctl restart "$UNIT"
    local i
    for i in $(seq 1 30); do
        systemctl is-active --quiet "$UNIT" && { say "alarm-gateway is running ($(current_version))"; return 0; }
        sleep 1
    done
    die "alarm-gateway did not start: journalctl -u alarm-gateway -n 50; to go back: $PREFIX/install.sh rollback"
}

current_version() { basename "$(readlink "$PREFIX/current" 2>/dev/null || echo none)"; }
previous_version() { basename "$(readlink "$PREFIX/previous" 2>/dev/null || echo none)"; }

# -- actions -----------------------------------------------------------------------------
do_install() {
    need_root
    check_bundle
    [ -e "$PREFIX/current" ] && die "version $(current_version) is installed: use ./install.sh upgrade"
    make_user
    make_folders
    make_release
    install_config
    switch_to "$VERSION"
    install_unit_and_self
    say "installed $VERSION in $PREFIX"
    if check_config "$VERSION"; then
        say "next: edit $ETC/site.toml, check it with: alarm-gateway check-config -c $ETC/site.toml"
        say "then start it: systemctl enable --now alarm-gateway; see it: alarm-gateway status -c $ETC/site.toml"
    else
        say "the config above needs editing before the gateway can start ($ETC/site.toml)"
    fi
}

do_upgrade() {
    need_root
    check_bundle
    [ -e "$PREFIX/current" ] || die "nothing installed yet: use ./install.sh install"
    local cur
    cur=$(current_version)
    [ "$cur" != "$VERSION" ] || die "version $VERSION is already the current one: nothing to do"
    make_folders
    make_release
    if ! check_config "$VERSION"; then
        rm -rf "$PREFIX/releases/$VERSION"
        die "version $VERSION refuses $ETC/site.toml (above): nothing was changed, $cur still runs"
    fi
    switch_to "$VERSION"
    install_unit_and_self
    say "upgraded $cur -> $VERSION (to go back: sudo $PREFIX/install.sh rollback)"
    restart
}

do_rollback() {
    need_root
    local cur prev
    cur=$(current_version)
    prev=$(previous_version)
    [ "$prev" != none ] && [ -d "$PREFIX/releases/$prev" ] || die "no previous version is kept"
    link "releases/$prev" "$PREFIX/current"
    link "releases/$cur" "$PREFIX/previous"
    say "rolled back $cur -> $prev (again to return to $cur)"
    restart
}

do_uninstall() {
    need_root
    if with_systemd; then
        systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
    fi
    rm -f "$UNITDIR/$UNIT"
    with_systemd && systemctl daemon-reload
    [ -L "$BINDIR/alarm-gateway" ] && rm -f "$BINDIR/alarm-gateway"
    rm -rf "$PREFIX"
    say "removed the program and the unit; kept $ETC (config, secrets), $STATE (journal, registry) and the user $USER_NAME"
    say "a decommissioned site removes those too: rm -rf $ETC $STATE; userdel $USER_NAME"
}

do_status() {
    [ -e "$PREFIX/current" ] || { say "not installed under ${ROOT:-/}"; exit 1; }
    say "current $(current_version), previous $(previous_version), in $PREFIX/releases"
    if with_systemd; then
        say "service: $(systemctl is-active "$UNIT" || true)"
    fi
}

case "$ACTION" in
    install) do_install ;;
    upgrade) do_upgrade ;;
    rollback) do_rollback ;;
    uninstall) do_uninstall ;;
    status) do_status ;;
esac
