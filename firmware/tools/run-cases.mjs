// Run the firmware test cases under real MicroPython (the WebAssembly port) in Node.
//
//   node firmware/tools/run-cases.mjs --dir firmware/hsat:/lib/hsat \
//        --dir tests/firmware/fw_fakes:/lib --dir tests/firmware/fw_cases:/cases \
//        [--only fwcase_safety.case_boot_is_safe_until_the_controller_commands] ...
//
// Each --dir copies a host folder's .py/.json files (recursively) onto MicroPython's
// in-memory filesystem. Every `case_*` function of every /cases/fwcase_*.py module runs in a
// fresh directory; one JSON line per case goes to stdout, prefixed with "@@CASE ".
// Exit code: 0 all passed, 1 a case failed, 2 the runner itself failed.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const args = process.argv.slice(2);
const dirs = [];
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--dir") dirs.push(args[++i]);
  else if (args[i] === "--only") only.push(args[++i]);
  else {
    console.error(`unknown argument ${args[i]}`);
    process.exit(2);
  }
}

const out = [];
const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024,
  stdout: (line) => out.push(line),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch { /* exists */ }
  }
}

function copyTree(src, dst) {
  mkdirs(dst);
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
    const from = path.join(src, entry.name);
    const to = dst + "/" + entry.name;
    if (entry.isDirectory()) copyTree(from, to);
    else if (/\.(py|json)$/.test(entry.name)) mp.FS.writeFile(to, fs.readFileSync(from));
  }
}

for (const spec of dirs) {
  const [host, target] = spec.split(":");
  copyTree(host, target);
}
mkdirs("/work");

const driver = `
import sys, os, io, json
sys.path[:0] = ["/cases", "/lib"]
import fwharness
ONLY = ${JSON.stringify(only)}
mods = sorted(n[:-3] for n in os.listdir("/cases") if n.startswith("fwcase_") and n.endswith(".py"))
n = 0
for modname in mods:
    mod = __import__(modname)
    for name in sorted(dir(mod)):
        if not name.startswith("case_"):
            continue
        full = modname + "." + name
        if ONLY and full not in ONLY:
            continue
        n += 1
        fwharness.ROOT = "/work/c{}".format(n)
        os.mkdir(fwharness.ROOT)
        rec = {"case": full, "ok": True}
        try:
            getattr(mod, name)()
        except Exception as e:
            buf = io.StringIO()
            sys.print_exception(e, buf)
            rec["ok"] = False
            rec["error"] = buf.getvalue()
        print("@@CASE " + json.dumps(rec))
print("@@DONE {}".format(n))
`;

let failed = 0;
try {
  mp.runPython(driver);
} catch (err) {
  for (const line of out) console.log(line);
  console.error(`runner failed: ${err.message}`);
  process.exit(2);
}
for (const line of out) {
  console.log(line);
  if (line.startsWith("@@CASE ") && !JSON.parse(line.slice(7)).ok) failed++;
}
process.exit(failed ? 1 : 0);
