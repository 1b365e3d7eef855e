#!/bin/sh
# Checks every WORD-encoded arm64 instruction of the generator against
# llvm-mc's encoding. Run from quant/_gen; needs llvm-mc.
set -e
go run . -check-neon | sort -u > /tmp/neon-words.txt
cut -d/ -f1 /tmp/neon-words.txt | llvm-mc -triple=aarch64 -mattr=+dotprod -show-encoding 2>&1 |
	sed -n 's/.*encoding: \[\(0x..\),\(0x..\),\(0x..\),\(0x..\)\].*/\4\3\2\1/p' | sed 's/0x//g' > /tmp/neon-llvm.txt
sed 's/.*\/\/ 0x//' /tmp/neon-words.txt > /tmp/neon-ours.txt
if ! paste -d' ' /tmp/neon-ours.txt /tmp/neon-llvm.txt | awk '$1 != $2 { bad=1; print "mismatch:", NR, $0 } END { exit bad }'; then
	echo "encodings differ (line numbers refer to /tmp/neon-words.txt)"
	exit 1
fi
echo "$(wc -l < /tmp/neon-ours.txt) encodings agree with llvm-mc"
