#!/bin/sh
# make-busybox-bundle.sh DIR
#
# Builds an OCI bundle in DIR from the host's busybox-static (Debian package
# busybox-static), downloading nothing:
#   DIR/rootfs      /bin/busybox + one symlink per applet, /etc/passwd, /etc/group,
#                   /tmp (1777), /proc /sys /dev /root
#   DIR/config.json runc's default `runc spec` (runc 1.1), with args ["sh"] and
#                   terminal false, written literally so neither runc nor skiff is needed.
# Idempotent: re-running refreshes busybox, the symlinks, /etc files and config.json.
set -eu

BUSYBOX=${BUSYBOX:-/bin/busybox}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
if [ ! -x "$BUSYBOX" ]; then
    echo "$0: $BUSYBOX is missing: install Debian's busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi
if ! "$BUSYBOX" --list-full >/dev/null 2>&1; then
    echo "$0: $BUSYBOX does not support --list-full (need a busybox-static build)" >&2
    exit 1
fi

DIR=$1
ROOTFS=$DIR/rootfs

mkdir -p "$ROOTFS/bin" "$ROOTFS/sbin" "$ROOTFS/usr/bin" "$ROOTFS/usr/sbin" \
    "$ROOTFS/etc" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev" "$ROOTFS/root" \
    "$ROOTFS/tmp"
chmod 1777 "$ROOTFS/tmp"
chmod 0700 "$ROOTFS/root"

# Copy (never hard-link: the bundle may be on another filesystem, and a
# container must not be able to write through to the host's binary).
rm -f "$ROOTFS/bin/busybox.tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox.tmp"
chmod 0755 "$ROOTFS/bin/busybox.tmp"
mv -f "$ROOTFS/bin/busybox.tmp" "$ROOTFS/bin/busybox"

"$BUSYBOX" --list-full | while read -r applet; do
    case "$applet" in
        bin/busybox | "") continue ;;
    esac
    mkdir -p "$ROOTFS/$(dirname "$applet")"
    ln -sfn /bin/busybox "$ROOTFS/$applet"
done

cat > "$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
skiff:x:1000:1000:skiff:/tmp:/bin/sh
PASSWD

cat > "$ROOTFS/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
skiff:x:1000:
extra:x:1001:skiff
nogroup:x:65534:
GROUP

printf 'skiff\n' > "$ROOTFS/etc/hostname"

cat > "$DIR/config.json" <<'CONFIG'
{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": false,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"ambient": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}
CONFIG

echo "bundle ready: $DIR (rootfs: $ROOTFS)"
