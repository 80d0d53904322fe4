#! /bin/bash
# docker-glue's ovs-handler.sh, for the ScriptHandler: `ovs-handler.sh INI_PATH EVENT CONTAINER_ID`.
# Needs ovs-docker (openvswitch-common, which calls uuidgen from uuid-runtime), crudini and the docker CLI
# (DOCKER_HOST is honoured).
# Unlike the original it reports failures (non-zero exit) instead of swallowing them.
# The native @glue/handler-ovs does the same job with validated labels and a start-up sweep.
set -euo pipefail
cd "$(dirname "$0")"

function error() {
    echo "$@" >&2
    exit 1
}

[ $# -ne 3 ] && error "Usage $(basename "$0") config.ini status container_id"
ini="$1"
status="$2"
container_id="$3"
[[ "$container_id" =~ ^[0-9a-f]{12,64}$ ]] || error "not a container id: $container_id"
ovs_options=$( crudini --get "$ini" params ovs-options 2>/dev/null || : )
ovs_bridge=$( crudini --get "$ini" params ovs-bridge 2>/dev/null || : )
ovs_interface=$( crudini --get "$ini" params ovs-interface 2>/dev/null || : )
ovs_interface=${ovs_interface:-eth0}
[ -n "$ovs_bridge" ] || error "$ini: [params] ovs-bridge is missing"

case "$status" in
    create|start)
        # at `create` there is no process (PID 0) yet: nothing to plug until `start`
        pid=$( docker inspect -f '{{.State.Pid}}' "$container_id" )
        [ "$pid" -gt 0 ] || exit 0
        container_net=$( docker inspect -f '{{.HostConfig.NetworkMode}}' "$container_id" )
        if [ "$container_net" == "none" ]; then
            # ovs-options is split into words on purpose: it holds ovs-docker options (--ipaddress=... --mtu=...)
            # shellcheck disable=SC2086
            ovs-docker add-port "$ovs_bridge" "$ovs_interface" "$container_id" $ovs_options
        fi
        ;;
    die|destroy)
        # ovs-docker also fails when the veth already went with the container: check the outcome instead
        ovs-docker del-ports "$ovs_bridge" "$container_id" || :
        left=$( ovs-vsctl --timeout=10 --data=bare --no-heading --columns=name find interface external_ids:container_id="$container_id" )
        [ -z "$left" ] || error "ports of $container_id still on the bridge: $left"
        ;;
esac
