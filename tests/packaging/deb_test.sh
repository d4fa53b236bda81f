#!/usr/bin/env bash
# Builds the .deb from a build tree (cpack), installs it with dpkg -i, checks the installed
# programs, files, modes, user and unit (systemd-analyze verify), initialises the state directory
# as the service would, then purges the package and checks that nothing is left behind.
# Usage: deb_test.sh BUILD_DIR VERSION. Exit 77 (skipped) when not root.
set -euo pipefail
build=$1
version=$2
if ((EUID != 0)); then
  echo "deb_test: needs root to install a package; skipped"
  exit 77
fi
fail() {
  echo "deb_test: FAIL: $*" >&2
  exit 1
}
expect_mode() { # PATH MODE OWNER:GROUP
  [[ -e $1 ]] || fail "$1 is missing"
  local got
  got=$(stat -c '%a %U:%G' "$1")
  [[ $got == "$2 $3" ]] || fail "$1 is $got, expected $2 $3"
}
installed_paths=(
  /usr/bin/certfleet /usr/bin/certfleetd /usr/bin/certfleet-agent
  /usr/lib/systemd/system/certfleetd.service /etc/certfleet/certfleet.toml
  /usr/share/man/man1/certfleet.1.gz /usr/share/man/man8/certfleetd.8.gz
  /usr/share/man/man1/certfleet-agent.1.gz
  /usr/share/bash-completion/completions/certfleet
  /usr/share/bash-completion/completions/certfleetd
  /usr/share/bash-completion/completions/certfleet-agent
)

# A package left by an interrupted run of this test would hide what this run installs.
if dpkg-query -W certfleet >/dev/null 2>&1; then dpkg --purge certfleet >/dev/null; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== cpack"
cpack --config "$build/CPackConfig.cmake" -B "$out" -G DEB > "$out/cpack.log" 2>&1 ||
  { cat "$out/cpack.log"; fail "cpack failed"; }
deb=$(ls "$out"/certfleet_"$version"_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
# RocksDB links statically (Debian's CMake package), so its compression libraries appear instead.
for lib in libcaf-core libbotan-2 libspdlog libsnappy passwd; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib"
done
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[[ $conffiles == "/etc/certfleet/certfleet.toml" ]] || fail "conffiles: $conffiles"

echo "== dpkg -i"
dpkg -i "$deb"
[[ $(/usr/bin/certfleet --version) == "certfleet $version" ]] || fail "certfleet --version"
[[ $(/usr/bin/certfleetd --version) == "certfleetd $version" ]] || fail "certfleetd --version"
[[ $(/usr/bin/certfleet-agent --version) == "certfleet-agent $version" ]] ||
  fail "certfleet-agent --version"
/usr/bin/certfleetd --help | grep -q -- --config || fail "certfleetd --help"

echo "== files, modes, user"
for f in /usr/bin/certfleet /usr/bin/certfleetd /usr/bin/certfleet-agent; do
  expect_mode "$f" 755 root:root
done
for f in "${installed_paths[@]:3}"; do expect_mode "$f" 644 root:root; done
expect_mode /etc/certfleet 755 root:root
getent passwd certfleet > /dev/null || fail "no certfleet user"
uid=$(id -u certfleet)
((uid < 1000)) || fail "certfleet is not a system user (uid $uid)"
[[ $(getent passwd certfleet | cut -d: -f7) == /usr/sbin/nologin ]] || fail "certfleet has a shell"
expect_mode /var/lib/certfleet 700 certfleet:certfleet
grep -q '^ExecStart=/usr/bin/certfleetd --config /etc/certfleet/certfleet.toml$' \
  /usr/lib/systemd/system/certfleetd.service || fail "ExecStart does not name the installed paths"
# Installed disabled: no WantedBy link.
[[ ! -e /etc/systemd/system/multi-user.target.wants/certfleetd.service ]] ||
  fail "the unit was enabled"

echo "== systemd-analyze verify"
systemd-analyze verify /usr/lib/systemd/system/certfleetd.service > "$out/verify.log" 2>&1 ||
  { cat "$out/verify.log"; fail "systemd-analyze verify"; }
# Lines about the unit itself (not about other units on this machine) are findings.
if grep -i 'certfleetd.service' "$out/verify.log"; then fail "systemd-analyze verify findings"; fi

echo "== the service's own first step, as the service account"
runuser -u certfleet -- /usr/bin/certfleet --config /etc/certfleet/certfleet.toml init > /dev/null
expect_mode /var/lib/certfleet/master.key 600 certfleet:certfleet
man -w certfleet > /dev/null 2>&1 || true

echo "== dpkg --purge"
dpkg --purge certfleet
for f in "${installed_paths[@]}" /etc/certfleet /var/lib/certfleet; do
  [[ ! -e $f ]] || fail "$f is left behind"
done
if getent passwd certfleet > /dev/null; then fail "user certfleet is left behind"; fi
if getent group certfleet > /dev/null; then fail "group certfleet is left behind"; fi
if dpkg-query -W certfleet > /dev/null 2>&1; then fail "dpkg still knows certfleet"; fi
echo "deb_test: passed"
