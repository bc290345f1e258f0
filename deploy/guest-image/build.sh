#!/usr/bin/env bash
# Builds the shellwego guest image (kernel + initramfs) from Debian packages.
#
#   deploy/guest-image/build.sh [--agent PATH] [--kernel-package PKG] [--print-hash] [--check]
#
# Output: ${SHELLWEGO_CACHE:-<repo>/.cache}/guest-image/<hash>/ with
#   vmlinuz            the stock Debian kernel (bzImage; QEMU -kernel)
#   vmlinux            the same kernel as an uncompressed ELF (Firecracker kernel_image_path)
#   initramfs.cpio.gz  busybox, /init, kernel modules, node (+ libs), socat (+ libs), /agent
#   manifest.json      kernel version, files, sizes, sha256s, hash
#   inputs.txt         the exact text the hash was computed over
# The last stdout line is always the output directory (or the hash with --print-hash).
# The kernel command line contract of the image is in deploy/guest-image/README.md.
#
# Exit codes: 0 ok, 1 build error, 2 usage, 3 a host capability is missing (the message on
# stderr, "shellwego-guest-image: missing: ...", says exactly what).
set -euo pipefail
shopt -s nullglob
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
init_script="$here/init"
modules_list="$here/modules.txt"
format_version=1

agent="$repo/services/guest-agent/dist/guest-agent.mjs"
kernel_pkg=""
mode=build

log() { echo "shellwego-guest-image: $*" >&2; }
die() { log "error: $*"; exit 1; }
missing() { log "missing: $*"; exit 3; }
usage() { sed -n '2,18p' "$self" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --agent) [[ $# -ge 2 ]] || usage; agent="$2"; shift 2 ;;
    --agent=*) agent="${1#*=}"; shift ;;
    --kernel-package) [[ $# -ge 2 ]] || usage; kernel_pkg="$2"; shift 2 ;;
    --kernel-package=*) kernel_pkg="${1#*=}"; shift ;;
    --print-hash) mode="hash"; shift ;;
    --check) mode="check"; shift ;;
    -h|--help) usage 0 ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done

cache="${SHELLWEGO_CACHE:-$repo/.cache}"
root="$cache/guest-image"

# ---------------------------------------------------------------------------------------------
# Host capabilities
# ---------------------------------------------------------------------------------------------
check_host() {
  local lacking=() cmd
  # command -> Debian package that provides it (deploy/packages/guest-image.txt)
  local -A pkg_of=(
    [apt-get]=apt [apt-cache]=apt [dpkg-deb]=dpkg [depmod]=kmod [modprobe]=kmod
    [cpio]=cpio [gzip]=gzip [xz]=xz-utils [zstd]=zstd [socat]=socat [busybox]=busybox-static
    [ldd]=libc-bin [ldconfig]=libc-bin [sha256sum]=coreutils [flock]=util-linux [node]=nodejs
  )
  for cmd in "${!pkg_of[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || lacking+=("$cmd (Debian package ${pkg_of[$cmd]})")
  done
  if command -v busybox >/dev/null 2>&1; then
    local applet
    local applets
    applets=" $(busybox --list 2>/dev/null | tr '\n' ' ') "
    for applet in sh mount umount insmod poweroff reboot ip mkdir ln cat sleep tr setsid cttyhack hostname unshare nsenter; do
      [[ "$applets" == *" $applet "* ]] || lacking+=("busybox applet '$applet' (install busybox-static)")
    done
  fi
  if command -v socat >/dev/null 2>&1 && [[ "$(socat -h 2>/dev/null || true)" != *vsock-listen* ]]; then
    lacking+=("socat with VSOCK support (socat >= 1.7.4, Debian 12 or newer)")
  fi
  if [[ ${#lacking[@]} -gt 0 ]]; then
    local joined
    joined="$(printf '%s; ' "${lacking[@]}")"
    missing "${joined%; }"
  fi
  [[ -f "$agent" ]] || missing "agent bundle $agent (build services/guest-agent first, or pass --agent PATH)"
}

kernel_behind_meta_package() {
  apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }' || true
}

# Resolves the real kernel package behind linux-image-amd64 and reads its apt record
# (version, archive file name, sha256) without downloading anything.
resolve_kernel() {
  if [[ -z "$kernel_pkg" ]]; then
    kernel_pkg="$(kernel_behind_meta_package)"
    # A fresh machine may have no package lists yet: refresh them once, as root.
    if [[ -z "$kernel_pkg" && "$(id -u)" -eq 0 ]]; then
      log "no apt metadata for linux-image-amd64; running apt-get update"
      apt-get update -qq >&2 || true
      kernel_pkg="$(kernel_behind_meta_package)"
    fi
    [[ -n "$kernel_pkg" ]] || missing "apt metadata for linux-image-amd64 (run: apt-get update; needs a Debian amd64 host with the main archive configured)"
  fi
  local record
  record="$(apt-cache show --no-all-versions "$kernel_pkg" 2>/dev/null)" \
    || missing "apt metadata for $kernel_pkg (run: apt-get update)"
  kernel_version="$(awk -F': ' '$1 == "Version" { print $2; exit }' <<<"$record")"
  kernel_filename="$(awk -F': ' '$1 == "Filename" { print $2; exit }' <<<"$record")"
  kernel_sha256="$(awk -F': ' '$1 == "SHA256" { print $2; exit }' <<<"$record")"
  [[ -n "$kernel_version" && -n "$kernel_filename" && -n "$kernel_sha256" ]] \
    || die "incomplete apt record for $kernel_pkg"
}

# Prints "<path>" for every shared object a dynamic binary needs (ldd), loader included.
shared_libs() {
  ldd "$1" 2>/dev/null | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }' | sort -u
}

resolve_binaries() {
  node_bin="$(readlink -f "$(command -v node)")"
  socat_bin="$(readlink -f "$(command -v socat)")"
  busybox_bin="$(readlink -f "$(command -v busybox)")"
}

hash_inputs() {
  {
    echo "format $format_version"
    echo "kernel-package $kernel_pkg $kernel_version $kernel_filename sha256:$kernel_sha256"
    local f
    for f in "$self" "$init_script" "$modules_list"; do
      echo "file ${f#"$repo"/} sha256:$(sha256sum <"$f" | cut -d' ' -f1)"
    done
    echo "agent sha256:$(sha256sum <"$agent" | cut -d' ' -f1)"
    for f in "$busybox_bin" "$node_bin" "$socat_bin"; do
      echo "binary $f sha256:$(sha256sum <"$f" | cut -d' ' -f1)"
    done
    for f in $( { shared_libs "$node_bin"; shared_libs "$socat_bin"; shared_libs "$busybox_bin"; } | sort -u); do
      echo "library $f sha256:$(sha256sum <"$(readlink -f "$f")" | cut -d' ' -f1)"
    done
  }
}

# ---------------------------------------------------------------------------------------------
# extract-vmlinux (after linux/scripts/extract-vmlinux): find each known compression magic in
# the bzImage, decompress from there, keep the first result that is an ELF file.
# ---------------------------------------------------------------------------------------------
is_elf() { [[ "$(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" == '177ELF' ]]; }

try_decompress() { # <magic as tr octal escapes> <placeholder> <decompressor...>; uses $img $out
  local magic="$1" marker="$2"; shift 2
  local pos
  for pos in $(tr "$magic\n$marker" "\n$marker=" <"$img" | grep -abo "^$marker" | cut -d: -f1); do
    # grep's offset points at the byte after the "\n" that replaced the first magic byte,
    # which is the 1-based position of that first magic byte: what tail -c+N wants.
    command -v "$1" >/dev/null 2>&1 || { log "skipping a $1 candidate: $1 not installed"; return 1; }
    tail -c+"$pos" "$img" | "$@" >"$out" 2>/dev/null || true
    if is_elf "$out"; then return 0; fi
  done
  return 1
}

extract_vmlinux() { # <bzImage> <out>
  local img="$1" out="$2"
  try_decompress '\037\213\010' xy gunzip ||
    try_decompress '\3757zXZ\000' abcde unxz ||
    try_decompress 'BZh' xy bunzip2 ||
    try_decompress '\135\0\0\0' xxx unlzma ||
    try_decompress '\211\114\132' xy lzop -d ||
    try_decompress '\002!L\030' xxx lz4 -d ||
    try_decompress '(\265/\375' xxx unzstd ||
    die "no compressed ELF kernel found in $img (extract-vmlinux failed; is the matching decompressor installed?)"
}

# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------
fetch_kernel_deb() { # -> prints path of the verified .deb (kept in $root/debs)
  local debs="$root/debs" name deb
  name="$(basename "$kernel_filename")"
  deb="$debs/$name"
  mkdir -p "$debs"
  if [[ -f "$deb" ]] && [[ "$(sha256sum <"$deb" | cut -d' ' -f1)" == "$kernel_sha256" ]]; then
    echo "$deb"; return
  fi
  local dl
  dl="$(mktemp -d "$debs/.download.XXXXXX")"
  chmod 0755 "$dl"
  local apt_opts=()
  [[ "$(id -u)" -eq 0 ]] && apt_opts+=(-o APT::Sandbox::User=root)
  log "downloading $kernel_pkg=$kernel_version (apt-get download)"
  if ! (cd "$dl" && apt-get download -q "${apt_opts[@]}" "$kernel_pkg=$kernel_version" >&2); then
    rm -rf "$dl"
    missing "download of $kernel_pkg=$kernel_version from the Debian archive (apt-get download failed: no network or apt source?)"
  fi
  local got=("$dl"/*.deb)
  [[ ${#got[@]} -eq 1 ]] || die "apt-get download produced ${#got[@]} files"
  [[ "$(sha256sum <"${got[0]}" | cut -d' ' -f1)" == "$kernel_sha256" ]] \
    || die "sha256 of downloaded ${got[0]} does not match the apt record"
  mv -f "${got[0]}" "$deb"
  rm -rf "$dl"
  echo "$deb"
}

copy_with_libs() { # <binary> <dest path inside stage>
  install -D -m 0755 "$1" "$stage$2"
  local lib
  for lib in $(shared_libs "$1"); do
    [[ -e "$stage$lib" ]] && continue
    install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
  done
}

build() {
  local t0 work deb kdir kver
  t0=$(date +%s.%N)
  work="$(mktemp -d "${TMPDIR:-/tmp}/shellwego-guest-image.XXXXXX")"
  out_tmp="$(mktemp -d "$root/.build.$hash.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: the trap must remove exactly these directories
  trap "rm -rf '$work' '$out_tmp'" EXIT
  stage="$work/stage"
  kdir="$work/kernel"

  deb="$(fetch_kernel_deb)"
  log "unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$kdir"
  local vmlinuz=("$kdir"/boot/vmlinuz-*)
  [[ ${#vmlinuz[@]} -eq 1 ]] || die "expected one /boot/vmlinuz-* in $deb, found ${#vmlinuz[@]}"
  kver="${vmlinuz[0]##*/vmlinuz-}"
  [[ -d "$kdir/lib/modules/$kver" ]] || die "no lib/modules/$kver in $deb"

  cp "${vmlinuz[0]}" "$out_tmp/vmlinuz"
  log "extracting vmlinux"
  extract_vmlinux "$out_tmp/vmlinuz" "$out_tmp/vmlinux"
  if command -v file >/dev/null 2>&1; then
    file -b "$out_tmp/vmlinux" | grep -q '^ELF 64-bit LSB executable, x86-64' \
      || die "extracted vmlinux is not an x86-64 ELF executable: $(file -b "$out_tmp/vmlinux")"
  fi

  # --- root skeleton ---
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,mnt,root,var,agent}
  chmod 1777 "$stage/tmp"
  chmod 0700 "$stage/root"
  ln -s ../run "$stage/var/run"
  install -m 0755 "$init_script" "$stage/init"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$stage/etc/nsswitch.conf"

  # --- busybox + applets (never overriding a real binary) ---
  copy_with_libs "$busybox_bin" /bin/busybox
  local applet
  while read -r applet; do
    [[ -n "$applet" && ! -e "$stage/$applet" && ! -L "$stage/$applet" ]] || continue
    mkdir -p "$stage/$(dirname "$applet")"
    ln -s /bin/busybox "$stage/$applet"
  done < <(busybox --list-full)

  # --- node, socat, their shared libraries and the loader ---
  copy_with_libs "$node_bin" /usr/bin/node
  copy_with_libs "$socat_bin" /usr/bin/socat
  local libdirs
  libdirs="$(cd "$stage" && find . -name '*.so*' -printf '%h\n' | sed 's|^\.||' | sort -u)"
  printf '%s\n' "$libdirs" >"$stage/etc/ld.so.conf"
  ldconfig -r "$stage" 2>/dev/null || log "warning: ldconfig -r failed; relying on the loader's default paths"

  # --- kernel modules, resolved with the package's own metadata ---
  log "resolving kernel modules"
  depmod -b "$kdir" "$kver"
  local mods=() line name
  while read -r name _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    local shown
    shown="$(modprobe -d "$kdir" -S "$kver" --show-depends "$name" 2>&1)" \
      || die "kernel $kver has no module '$name' (modules.txt): $shown"
    while read -r line; do
      case "$line" in
        insmod\ *) line="${line#insmod }"; line="${line%% *}"; mods+=("${line#"$kdir/lib/modules/$kver/"}") ;;
        builtin\ *) ;;
        *) die "unexpected modprobe output for $name: $line" ;;
      esac
    done <<<"$shown"
  done <"$modules_list"
  local moddir="$stage/lib/modules/$kver" rel seen=" " dst
  mkdir -p "$moddir"
  : >"$moddir/shellwego.modules"
  for rel in "${mods[@]}"; do
    [[ "$seen" == *" $rel "* ]] && continue
    seen+="$rel "
    dst="$moddir/${rel%.xz}"; dst="${dst%.zst}"; dst="${dst%.gz}"
    mkdir -p "$(dirname "$dst")"
    case "$rel" in
      *.ko) cp "$kdir/lib/modules/$kver/$rel" "$dst" ;;
      *.ko.xz) xz -dc "$kdir/lib/modules/$kver/$rel" >"$dst" ;;
      *.ko.zst) zstd -qdc "$kdir/lib/modules/$kver/$rel" >"$dst" ;;
      *.ko.gz) gzip -dc "$kdir/lib/modules/$kver/$rel" >"$dst" ;;
      *) die "unknown module file type: $rel" ;;
    esac
    echo "${dst#"$moddir/"}" >>"$moddir/shellwego.modules"
  done
  cp "$moddir/shellwego.modules" "$moddir/modules.order"
  cp "$kdir/lib/modules/$kver"/modules.builtin{,.modinfo} "$moddir/"
  depmod -b "$stage" "$kver"

  # --- the agent ---
  install -m 0644 "$agent" "$stage/agent/guest-agent.mjs"
  printf '{"hash":"%s","kernelRelease":"%s","kernelPackage":"%s","kernelVersion":"%s"}\n' \
    "$hash" "$kver" "$kernel_pkg" "$kernel_version" >"$stage/etc/shellwego-image.json"

  # --- pack ---
  log "packing initramfs"
  local uncompressed
  uncompressed="$(du -sb "$stage" | cut -f1)"
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
    | gzip -6 -n >"$out_tmp/initramfs.cpio.gz"

  printf '%s\n' "$inputs" >"$out_tmp/inputs.txt"
  local t1
  t1=$(date +%s.%N)
  # shellcheck disable=SC2016  # the single-quoted text is JavaScript
  HASH="$hash" KPKG="$kernel_pkg" KVER="$kernel_version" KREL="$kver" KFILE="$kernel_filename" \
    NODE_BIN="$node_bin" DIR="$out_tmp" UNCOMPRESSED="$uncompressed" \
    SECONDS_TAKEN="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" \
    MODULES="$(cat "$moddir/shellwego.modules")" \
    node --input-type=module -e '
      import { createHash } from "node:crypto";
      import { readFileSync, statSync, writeFileSync } from "node:fs";
      const e = process.env;
      const files = {};
      for (const f of ["vmlinuz", "vmlinux", "initramfs.cpio.gz", "inputs.txt"]) {
        const p = `${e.DIR}/${f}`;
        files[f] = { size: statSync(p).size, sha256: createHash("sha256").update(readFileSync(p)).digest("hex") };
      }
      const manifest = {
        format: 1,
        hash: e.HASH,
        kernel: { package: e.KPKG, version: e.KVER, release: e.KREL, debFilename: e.KFILE },
        files,
        initramfs: {
          uncompressedSize: Number(e.UNCOMPRESSED),
          node: { path: e.NODE_BIN, version: process.version },
          modules: e.MODULES.split("\n").filter(Boolean),
          agentPath: "/agent/guest-agent.mjs",
        },
        buildSeconds: Number(e.SECONDS_TAKEN),
        builtAt: new Date().toISOString(),
      };
      writeFileSync(`${e.DIR}/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
    '
  chmod 0755 "$out_tmp"
  if ! mv -T "$out_tmp" "$out" 2>/dev/null; then
    [[ -f "$out/manifest.json" ]] || die "could not move the build into $out"
    log "another build finished $out first; using it"
  fi
  trap - EXIT
  rm -rf "$work"
  log "built $out in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s" \
    "(initramfs $(stat -c %s "$out/initramfs.cpio.gz") bytes, kernel $kver)"
}

complete() { # <dir>
  local f
  for f in manifest.json vmlinuz vmlinux initramfs.cpio.gz; do [[ -s "$1/$f" ]] || return 1; done
}

# ---------------------------------------------------------------------------------------------
check_host
resolve_kernel
resolve_binaries
inputs="$(hash_inputs)"
hash="$(sha256sum <<<"$inputs" | cut -c1-32)"
case "$mode" in
  check) log "host ok: kernel $kernel_pkg $kernel_version, hash $hash"; echo "ok"; exit 0 ;;
  hash) echo "$hash"; exit 0 ;;
esac

out="$root/$hash"
if complete "$out"; then
  log "cache hit $out"
  echo "$out"
  exit 0
fi
mkdir -p "$root"
exec 9>"$root/.build.lock" # one build at a time per cache; a waiting run usually gets a hit
flock 9
if complete "$out"; then
  log "cache hit $out (built by a concurrent run)"
else
  [[ -e "$out" ]] && rm -rf "$out" # an incomplete leftover (never produced by this script)
  build
fi
echo "$out"
