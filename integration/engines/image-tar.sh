#!/bin/bash
# image-tar.sh ROOTFS OUT.tar NAME FORMAT CMD: an image of the directory
# ROOTFS, one layer, running CMD (a JSON array): an OCI layout tarball with
# FORMAT `oci`, or with `docker` the archive `docker load` (20.10) reads.
# No registry is reachable here, so the engine tests build their images.
set -euo pipefail
rootfs=$1; out=$2; name=$3; format=$4; cmd=$5
d=$(mktemp -d /tmp/estiba-img.XXXXXX)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/blobs/sha256"
tar -C "$rootfs" --owner=0 --group=0 -cf "$d/layer.tar" .
gzip -n -c "$d/layer.tar" > "$d/layer.tar.gz"
blob() { local s; s=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$d/blobs/sha256/$s"; echo "$s $(stat -c %s "$1")"; }
read -r lsha lsize < <(blob "$d/layer.tar.gz")
diffid=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$cmd" "$diffid" > "$d/config.json"
if [ "$format" = docker ]; then
    printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$name" > "$d/manifest.json"
    tar -C "$d" -cf "$out" manifest.json config.json layer.tar
    exit 0
fi
read -r csha csize < <(blob "$d/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$csha" "$csize" "$lsha" "$lsize" > "$d/manifest.json"
read -r msha msize < <(blob "$d/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest","io.containerd.image.name":"%s"}}]}' "$msha" "$msize" "$name" > "$d/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$d/oci-layout"
tar -C "$d" -cf "$out" oci-layout index.json blobs
