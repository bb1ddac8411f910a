# A private Samba smbd for the forward lab and the benchmark, a private nmbd as master
# browser for the datagram and firmware labs, and samba's installation (also for the WINS lab's
# nmbd): sourced, never run.
# shellcheck shell=bash

# ensure_smbd LOG: installs samba with apt when smbd is missing (apt's output to LOG).
ensure_smbd() {
    command -v smbd >/dev/null && return 0
    echo "installing samba (smbd)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends samba >"$1" 2>&1 ||
        { apt-get update -q >>"$1" 2>&1 &&
          apt-get install -y -q --no-install-recommends samba >>"$1" 2>&1; }
}

# write_smb_conf DIR PORT INTERFACES SHARE [GLOBAL-LINES]: DIR/smb.conf for a standalone smbd
# (LABSRV in LABGRP) on PORT of INTERFACES only, that keeps everything it writes below DIR
# (pid, lock, state, cache, private, log), serves no printers, maps unknown users to the guest,
# and offers DIR/share read-only to guests as SHARE. GLOBAL-LINES (one "key = value" a line)
# are added to [global]. Start it with
#   setsid smbd --foreground --no-process-group -s DIR/smb.conf
# (in a session of its own: smbd signals its whole process group when it shuts down); its pid
# is then in DIR/run/smbd.pid.
write_smb_conf() {
    local dir=$1 port=$2 interfaces=$3 share=$4 extra=${5:-} line
    mkdir -p "$dir"/{run,lock,state,cache,private,ncalrpc,binddns,share,log}
    {
        cat <<CONF
[global]
    netbios name = LABSRV
    workgroup = LABGRP
    server role = standalone server
    smb ports = $port
    interfaces = $interfaces
    bind interfaces only = yes
    pid directory = $dir/run
    lock directory = $dir/lock
    state directory = $dir/state
    cache directory = $dir/cache
    private dir = $dir/private
    ncalrpc dir = $dir/ncalrpc
    binddns dir = $dir/binddns
    passdb backend = tdbsam:$dir/private/passdb.tdb
    log file = $dir/log/smbd.log
    log level = 0
    max log size = 0
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    map to guest = Bad User
CONF
        if [ -n "$extra" ]; then
            while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$extra"
        fi
        cat <<CONF
[$share]
    path = $dir/share
    read only = yes
    guest ok = yes
CONF
    } >"$dir/smb.conf"
}

# write_nmbd_conf DIR WORKGROUP INTERFACE: DIR/smb.conf for an nmbd (NMBDMASTER) that wants to be
# the local master browser of WORKGROUP on INTERFACE (local master, preferred master, os level
# 65; no domain master, no WINS) and keeps everything it writes below DIR (its browse list:
# DIR/cache/browse.dat; its log: DIR/log/nmbd.log, level 2). Start it with
#   setsid nmbd --foreground --no-process-group -s DIR/smb.conf
# It becomes master some 25 s later (the log says "is now a local master browser").
write_nmbd_conf() {
    local dir=$1 workgroup=$2 interface=$3
    mkdir -p "$dir"/{run,lock,state,cache,private,ncalrpc,binddns,log}
    cat >"$dir/smb.conf" <<CONF
[global]
    netbios name = NMBDMASTER
    workgroup = $workgroup
    server string = nmbd master
    interfaces = $interface
    bind interfaces only = yes
    local master = yes
    preferred master = yes
    os level = 65
    domain master = no
    wins support = no
    dns proxy = no
    pid directory = $dir/run
    lock directory = $dir/lock
    state directory = $dir/state
    cache directory = $dir/cache
    private dir = $dir/private
    ncalrpc dir = $dir/ncalrpc
    binddns dir = $dir/binddns
    log file = $dir/log/nmbd.log
    log level = 2
    max log size = 0
    load printers = no
    disable spoolss = yes
CONF
}

# browse_listed DIR NAME: the line of server NAME in the browse list of the nmbd of DIR.
browse_listed() {
    grep -E "^\"$2\" " "$1/cache/browse.dat" 2>/dev/null
}
