# The shutdown model (model.mjs) in the x86 VM, and the kernel's removal of 100 l2tpeth tunnels
# traced (kdel.sh: function_graph durations, variants):
#   VM_NAME=shutdown-model test/vm/run-vm.sh bench/shutdown-model/vm-model.sh [kdel]
# Not part of make test; figures in docs/performance.md.
D=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = kdel ]; then exec sh "$D/kdel.sh"; fi
ip link add v0 type veth peer name v1; ip addr add 198.51.100.1/24 dev v0; ip link set v0 up; ip link set v1 up
echo "MODEL nproc $(nproc)"
node "$D/model.mjs"
