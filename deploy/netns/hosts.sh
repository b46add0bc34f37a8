#!/usr/bin/env bash
# Builds or removes a small network of three "hosts" on one Linux machine:
# network namespaces joined by a bridge in the root namespace.
#
#   deploy/netns/hosts.sh up ID      # ID is 1..250; needs root and iproute2
#   deploy/netns/hosts.sh down ID
#
# For ID N, `up` creates
#   namespace xmppload-N-server  10.77.N.1   Prosody and the monitor agent
#   namespace xmppload-N-load1   10.77.N.2   bot agent 1
#   namespace xmppload-N-load2   10.77.N.3   bot agent 2
#   bridge    xlbrN (root)       10.77.N.254 the coordinator's side
# Each run gets its own /24 and its own names, so several networks (parallel
# test runs) can exist side by side. `up` fails, and removes what it made,
# when a namespace of that ID already exists; pick another ID then. `down`
# removes whatever of the network exists and never fails on a missing part.
set -euo pipefail

usage() {
    echo "usage: $0 up|down ID   (ID is an integer from 1 to 250)" >&2
    exit 64
}

[ "$#" -eq 2 ] || usage
action=$1
id=$2
[[ "$id" =~ ^[0-9]+$ ]] && [ "$id" -ge 1 ] && [ "$id" -le 250 ] || usage

subnet="10.77.$id"
bridge="xlbr$id"
# Host name suffix, last address byte.
hosts=("server:1" "load1:2" "load2:3")

namespace() { echo "xmppload-$id-$1"; }
# Interface names are limited to 15 characters: "xl250s1h" at most.
veth_root() { echo "xl${id}${1:0:1}${1: -1}r"; }
veth_host() { echo "xl${id}${1:0:1}${1: -1}h"; }

down() {
    for entry in "${hosts[@]}"; do
        name=${entry%%:*}
        ip netns del "$(namespace "$name")" 2>/dev/null || true
        # Deleting the namespace deletes its veth end and so the pair; this
        # covers a pair whose host end never moved into the namespace.
        ip link del "$(veth_root "$name")" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
}

up() {
    # Fail before changing anything when this ID is taken.
    for entry in "${hosts[@]}"; do
        ns=$(namespace "${entry%%:*}")
        if [ -e "/var/run/netns/$ns" ]; then
            echo "error: namespace $ns already exists; use another ID or run: $0 down $id" >&2
            exit 73
        fi
    done
    if ip link show "$bridge" >/dev/null 2>&1; then
        echo "error: bridge $bridge already exists; use another ID or run: $0 down $id" >&2
        exit 73
    fi

    trap 'echo "error: setting up network $id failed; removing it" >&2; down' ERR

    ip link add "$bridge" type bridge
    ip addr add "$subnet.254/24" dev "$bridge"
    ip link set "$bridge" up

    for entry in "${hosts[@]}"; do
        name=${entry%%:*}
        last=${entry##*:}
        ns=$(namespace "$name")
        ip netns add "$ns"
        ip link add "$(veth_root "$name")" type veth peer name "$(veth_host "$name")"
        ip link set "$(veth_root "$name")" master "$bridge" up
        ip link set "$(veth_host "$name")" netns "$ns"
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$subnet.$last/24" dev "$(veth_host "$name")"
        ip -n "$ns" link set "$(veth_host "$name")" up
    done
    trap - ERR
}

case "$action" in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
