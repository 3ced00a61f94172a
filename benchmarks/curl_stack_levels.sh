#!/usr/bin/env bash
# Against a running server (`make serve`): for each noise level, make a seeded synthetic
# 100x271x271 uint16 stack, submit it with curl, poll until it ends, download the result and print
# its PSNR against ground truth next to the plain temporal mean's. Also submits the same stack
# frames-last and checks that the result is the same.
#   bash benchmarks/curl_stack_levels.sh [http://127.0.0.1:8000]
set -euo pipefail
server=${1:-http://127.0.0.1:8000}
bin=${RESTORA_BIN:-.venv/bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

submit_and_fetch() {  # file -> result path
  local id status
  id=$(curl -sf -F "file=@$1" "$server/v1/jobs" | "$bin/python" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  while :; do
    status=$(curl -sf "$server/v1/jobs/$id" | "$bin/python" -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], j["noise"] and j["noise"]["level"], j["model"] and j["model"]["name"], j["input"]["layout"])')
    case $status in succeeded*) break ;; failed*|canceled*) echo "job $id: $status" >&2; exit 1 ;; esac
    sleep 0.5
  done
  curl -sf -o "$1.out.npy" "$server/v1/jobs/$id/result"
  echo "$status" > "$1.job"
}

printf '%-7s %-10s %-18s %-6s %12s %12s %s\n' level classified model layout "PSNR mean" "PSNR restora" "same-as-thw"
for level in low medium high; do
  "$bin/restora" synth stack "$work/$level.npy" --level "$level" --seed 7 --truth "$work/$level.truth.npy" >/dev/null 2>&1
  "$bin/restora" synth stack "$work/$level.hwt.npy" --level "$level" --seed 7 --layout hwt >/dev/null 2>&1
  submit_and_fetch "$work/$level.npy"
  submit_and_fetch "$work/$level.hwt.npy"
  read -r _ classified model layout < "$work/$level.npy.job"
  "$bin/python" - "$work/$level" "$level" "$classified" "$model" "$layout" <<'PY'
import sys
import numpy as np
base, level, classified, model, layout = sys.argv[1:]
stack, truth = np.load(base + ".npy"), np.load(base + ".truth.npy")
restored, restored_hwt = np.load(base + ".npy.out.npy"), np.load(base + ".hwt.npy.out.npy")
psnr = lambda x: 10 * np.log10(4095**2 / np.mean((x.astype(np.float64) - truth) ** 2))
same = np.allclose(restored, restored_hwt, atol=1e-3)
print(f"{level:<7} {classified:<10} {model:<18} {layout:<6} {psnr(stack.mean(0)):12.2f} {psnr(restored):12.2f} {same}")
PY
done
