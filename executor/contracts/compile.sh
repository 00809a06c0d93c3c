#!/bin/sh
# Recompiles the contracts into build/ (or $OUT): NAME.bin (deploy bytecode, constructor
# arguments not included) and NAME.bin-runtime (runtime bytecode), hex without
# 0x and with a trailing newline. Needs vyper 0.4.3 (`pip install vyper==0.4.3`);
# the EVM version is pinned so the output does not follow the compiler's default.
# The test `evm::contracts::tests::evm_contracts_recompile_to_checked_in_bytecode`
# compares this output with the checked-in files when vyper is on PATH.
set -eu
cd "$(dirname "$0")"
VYPER=${VYPER:-vyper}
OUT=${OUT:-build}
mkdir -p "$OUT"
for name in Token Pair Lending Staking; do
    "$VYPER" --evm-version cancun -f bytecode "$name.vy" | sed 's/^0x//' > "$OUT/$name.bin"
    "$VYPER" --evm-version cancun -f bytecode_runtime "$name.vy" | sed 's/^0x//' > "$OUT/$name.bin-runtime"
done
