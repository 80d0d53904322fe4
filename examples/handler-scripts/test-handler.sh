#! /bin/bash
# The original docker-glue demo script: Glue calls it as `test-handler.sh INI_PATH EVENT CONTAINER_ID`.
# Set GLUE_TEST_LOG to write elsewhere than /tmp/docker-glue-test.log.

cd "$(dirname "$0")"

function error() {
    echo "$@"
    exit 1
}

[ $# -ne 3 ] && error "Usage $(basename "$0") config.ini status container_id"
ini=$1
status=$2
container_id=$3
ini_demo_option=$( crudini --get "$ini" params demo-option 2>/dev/null || : )
echo "$(date +%F) container_id=[$container_id] status=[$status] ini_demo_option=[$ini_demo_option]" >> "${GLUE_TEST_LOG:-/tmp/docker-glue-test.log}"
