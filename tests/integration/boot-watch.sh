#!/bin/bash
# A boot stuck in the guest's kernel is reset once (guest_watch_boot), with
# each driver. A TCG guest here now and then hangs early in its kernel (an
# RCU stall report on the console, then nothing) and the wait for its agent
# used to last the whole boot deadline. The guest is a blank disk (SeaBIOS
# finds nothing to boot: no OS, seconds of CPU); the test writes what such a
# kernel prints into its console log, as the guest would: amiforge says so
# once, resets the guest through its driver (QMP system_reset, virDomainReset)
# and waits on; a console whose boot reached systemd is left alone.
# TMPDIR is too long for a unix socket below it: the guest's sockets (QEMU
# binds them) go in a short private directory of /tmp, removed at the end.
. "$(dirname "$0")/../lib/common.sh"

dir=$(scratch)
chmod 711 "$dir"	# qemu:///system runs QEMU as libvirt-qemu: it must reach the disks
export TMPDIR=$dir/tmp/a-temporary-directory-with-a-name-long-enough-that-no-socket-fits-below-it-0123456789
mkdir -p "$TMPDIR"
chmod 711 "$dir/tmp"
socks_before=$(ls -d /tmp/amiforge-sock-* 2>/dev/null | wc -l)
qemu-img create -q -f raw "$dir/blank.raw" 16M
stuck='[    0.000000] Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org)
[    1.070000] clocksource: Switched to clocksource tsc
[   22.100000] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:
[   22.100100] 	0-...!: (1 GPs behind) idle=c4c/0/0x3'
running='[    0.000000] Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org)
[    3.200000] systemd[1]: Started Journal Service.
[   52.100000] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:'

watch_run() {	# DRIVER TAG TEXT
	local log="" i rc
	"$AMIFORGE" run "$dir/blank.raw" --driver "$1" --accel tcg --cpus 1 --memory 256 \
		--no-net --boot-timeout 30 -- true >"$dir/out$2" 2>"$dir/err$2" &
	local pid=$!
	for ((i = 0; i < 150; i++)); do
		log=$(ls "$TMPDIR"/amiforge-run-*/console.log 2>/dev/null | head -n 1)
		[ -n "$log" ] && break
		sleep 0.2
	done
	# amiforge makes the file before the guest starts; libvirt then opens
	# it afresh: the guest's own lines come some seconds after.
	sleep 8
	[ -n "$log" ] && printf '%s\n' "$3" >>"$log"
	wait $pid
	rc=$?
	check "$1 ($2): the guest's console log was there to write to" test -n "$log"
	check_eq "$1 ($2): the boot still ends at its deadline (no agent on a blank disk)" "$rc" 125
}

for drv in qemu libvirt; do
	[ $drv = libvirt ] && ! have libvirt "boot-watch: the libvirt driver" && continue
	watch_run $drv stuck "$stuck"
	check_eq "$drv: a stall report after the kernel's banner resets the guest, once" \
		"$(grep -c "the guest's kernel is stuck in its boot (console: \"detected stalls on CPUs/tasks:\"): resetting it" "$dir/errstuck")" 1
	check_eq "$drv: ... and the reset went through the driver (no error about it)" \
		"$(grep -c "reset" "$dir/errstuck")" 1
	watch_run $drv running "$running"
	check_eq "$drv: a stall after systemd started is left alone" \
		"$(grep -c "resetting it" "$dir/errrunning")" 0
	rm -rf "$TMPDIR"/amiforge-run-*
done
check_eq "a TMPDIR too long for sockets: their directory in /tmp is gone" \
	"$(ls -d /tmp/amiforge-sock-* 2>/dev/null | wc -l)" "$socks_before"
finish
