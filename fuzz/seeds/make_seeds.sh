#!/usr/bin/env bash
# Writes the hand-made seed corpus, one directory per target, from the repository's test
# fixtures (golden wire bytes, share vectors, small images) and a few hand-built messages.
# Run from anywhere; needs bash, xxd and python3 (for the deflate seed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fx="$here/../../tests/fixtures"
cd "$here"
hexfile() { xxd -r -p > "$1"; }   # stdin hex -> file

# DKG messages, (t, n) = (2, 3): THRESHOLDS index 1, so the selector byte is 0x01.
mkdir -p dkg_message vss_commitment
while read -r name hex; do
  { printf '\x01'; echo "$hex" | xxd -r -p; } > "dkg_message/$name"
done < "$fx/vectors/wire/dkg-2-of-3.hex"
# The deal's Pedersen commitment (bytes 4..68) as a VSS seed: selector 2 (Feldman) / 3 (Pedersen), t = 2.
deal=$(awk '$1 == "deal" {print $2}' "$fx/vectors/wire/dkg-2-of-3.hex")
{ printf '\x02'; echo "${deal:8:128}" | xxd -r -p; } > vss_commitment/feldman-t2
{ printf '\x03'; echo "${deal:8:128}" | xxd -r -p; } > vss_commitment/pedersen-t2

# Shares: one file per line of the vectors.
mkdir -p share
for f in "$fx"/vectors/share/*.hex; do
  i=0
  while read -r line; do
    hex=${line##* }
    i=$((i + 1))
    echo "$hex" | hexfile "share/$(basename "$f" .hex)-$i"
  done < "$f"
done

# Images: the small synthetic fixtures, every format.
mkdir -p decode_luma
for ext in png gif bmp tif webp; do
  # The six smallest files of each format.
  ls -S "$fx"/synthetic/*."$ext" | tail -n 6 | while read -r f; do cp "$f" decode_luma/; done
done

zeros() { head -c "$1" /dev/zero | xxd -p | tr -d '\n'; }
s=$(printf 'ab%.0s' $(seq 32))                                   # a 32-byte session id
mkdir -p candidate_request candidate_response distance_request distance_response \
  mask_commitment mask_deal mask_check hash_bit_shares token_index searchable_index \
  unframe_payload node_public_keys token_request partial_evaluation node_requests
# CandidateRequest: session, min_band_votes u32, count u16, one token.
echo "0133${s}00000002""0001$(zeros 32)" | hexfile candidate_request/one-token
# CandidateResponse: session, node, count u32, (id u64, votes u32)*.
echo "0134${s}01""00000002""0000000000000001""00000003""0000000000000007""00000001" | hexfile candidate_response/two
# DistanceRequest: session, server, count u32, ids u64 ascending, 64 shares of 8 bytes.
echo "0141${s}02""00000001""0000000000000005$(zeros 512)" | hexfile distance_request/one
# DistanceResponse: session, server, count u32, shares.
echo "0142${s}02""00000001""0100000000000000" | hexfile distance_response/one
# MaskCommitment: session, dealer, count u32, servers u16, (node, digest 32)*.
echo "0143${s}01""00000004""0002""01$(zeros 32)""02$(zeros 32)" | hexfile mask_commitment/two-servers
# MaskDeal: session, dealer, recipient, salt 32, count u32, (count + 3) points.
echo "0144${s}0102$(zeros 32)""00000001$(zeros 32)" | hexfile mask_deal/one
# MaskCheck: session, dealer, node, 3 values.
echo "0145${s}0102$(zeros 24)" | hexfile mask_check/zeros
# HashBitShares: 64 zero field elements.
head -c 512 /dev/zero > hash_bit_shares/zeros
# TokenIndex: PHRTOK, version 1, count u64 LE, (id u64 LE, n u16 LE, tokens)*.
{ printf 'PHRTOK\x01'; echo "0100000000000000""0700000000000000""0100$(zeros 32)" | xxd -r -p; } > token_index/one
# SearchableSISIndex: PHRIDX, version 1, bands 8, bits 8, count u64 LE, (id, hash)*.
{ printf 'PHRIDX\x01\x08\x08'; echo "0100000000000000""0300000000000000""efcdab8967452301" | xxd -r -p; } > searchable_index/one
# Framed payloads: raw and deflated.
printf '\x00hello' > unframe_payload/raw
python3 -c 'import sys, zlib; c = zlib.compressobj(6, zlib.DEFLATED, -15); sys.stdout.buffer.write(b"\x01" + c.compress(b"hello hello hello hello") + c.flush())' > unframe_payload/deflate
# Public keys / signature: the deal's first commitment point twice (a valid ristretto point).
echo "${deal:8:64}${deal:8:64}" | hexfile node_public_keys/point-twice
# TokenRequest: bands 4, images 1, four blinded elements (the same valid point).
p=${deal:8:64}
echo "013204""0001${p}${p}${p}${p}" | hexfile token_request/four
# PartialEvaluation: node, count u16, elements, proof c, s (zero scalars are canonical).
echo "013101""0001${p}$(zeros 64)" | hexfile partial_evaluation/one
# node_requests: selector byte then protobuf; an empty message of each of the 11 types.
for i in $(seq 0 10); do printf "\\x$(printf %02x "$i")" > "node_requests/empty-$i"; done
