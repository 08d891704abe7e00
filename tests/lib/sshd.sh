# An sshd of the test's own, for builds through qemu+ssh:// (issue 21).
# Source after common.sh. sshd_start DIR: host key, client key, config and
# authorized_keys in DIR (0700), sshd on a free port of 127.0.0.1 only,
# public-key login for root only. Sets SSH_PORT and puts DIR/bin first in
# PATH: an `ssh` there runs /usr/bin/ssh with the test's client
# configuration (its key, its known_hosts with the host key it made, strict
# host key checking), so that libvirt's ssh transport reaches this sshd
# without the test touching root's ~/.ssh. The sshd is stopped at exit.
sshd_start() {
	local d=$1 i
	mkdir -p "$d/bin" /run/sshd
	chmod 700 "$d"
	ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey" || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$d/client" || return 1
	cp "$d/client.pub" "$d/authorized_keys"
	SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$d/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/hostkey
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile $d/sshd.pid
# The keys live under the test's scratch directory in /tmp (mode 1777), which
# StrictModes refuses as a path to authorized_keys; DIR itself is 0700.
StrictModes no
CONF
	echo "[localhost]:$SSH_PORT $(cut -d' ' -f1,2 "$d/hostkey.pub")" >"$d/known_hosts"
	cat >"$d/ssh_config" <<CONF
Host *
  IdentityFile $d/client
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
CONF
	printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$d/ssh_config" >"$d/bin/ssh"
	chmod 755 "$d/bin/ssh"
	/usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || return 1
	for ((i = 0; i < 50; i++)); do
		[ -s "$d/sshd.pid" ] && break
		sleep 0.1
	done
	_sshd_pid=$(cat "$d/sshd.pid" 2>/dev/null)
	[ -n "$_sshd_pid" ] || return 1
	at_exit_kill "$_sshd_pid"
	export PATH="$d/bin:$PATH"
}

# volumes_matching REGEX: how many volumes of libvirt's "amiforge" pool have
# a name matching ^REGEX; 0 when the pool does not exist; "virsh failed: ..."
# when virsh fails otherwise.
volumes_matching() {
	local names
	if ! names=$(virsh -c qemu:///system pool-list --all --name 2>&1); then
		echo "virsh failed: $(head -n 1 <<<"$names")"
		return 1
	fi
	# virsh pads the names with blanks.
	if ! awk '{ print $1 }' <<<"$names" | grep -qx amiforge; then
		echo 0
		return 0
	fi
	if ! names=$(virsh -c qemu:///system vol-list amiforge 2>&1); then
		echo "virsh failed: $(head -n 1 <<<"$names")"
		return 1
	fi
	awk 'NR > 2 && NF { print $1 }' <<<"$names" | grep -c "^$1"
}
