"""Each library under src/ may include only its own layer and the layers below it
(core -> tensor -> kernels -> llama -> generate -> serve; llama + tokenizer -> train;
tokenizer depends only on core).
An upward include is a layering bug: this test lists every one it finds."""
import os
import re
import sys

ALLOWED = {
    "core": {"core"},
    "tensor": {"core", "tensor"},
    "kernels": {"core", "tensor", "kernels"},
    "llama": {"core", "tensor", "kernels", "llama"},
    "tokenizer": {"core", "tokenizer"},
    "generate": {"core", "tensor", "kernels", "llama", "tokenizer", "generate"},
    "train": {"core", "tensor", "kernels", "llama", "tokenizer", "train"},
    "serve": {"core", "tensor", "kernels", "llama", "tokenizer", "generate", "serve"},
    "eval": {"core", "tensor", "kernels", "llama", "tokenizer", "generate", "train", "eval"},
    "demo": {"core", "tensor", "kernels", "llama", "tokenizer", "generate", "train", "eval",
             "demo"},
}
INCLUDE = re.compile(r'#\s*include\s+"([a-z_]+)/')

src = os.path.join(os.environ.get("TULU_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")), "src")
violations, checked = [], 0
for layer in sorted(os.listdir(src)):
    folder = os.path.join(src, layer)
    if not os.path.isdir(folder):
        continue
    if layer not in ALLOWED:
        violations.append(f"src/{layer}: a layer this test does not know; add it to ALLOWED")
        continue
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.search(line)
                if m and m.group(1) in ALLOWED and m.group(1) not in ALLOWED[layer]:
                    violations.append(f"src/{layer}/{name}:{lineno}: includes {m.group(1)}/ (above {layer})")
        checked += 1
print(f"checked {checked} files in {len(ALLOWED)} layers")
if violations:
    print("upward includes:\n  " + "\n  ".join(violations))
    sys.exit(1)
