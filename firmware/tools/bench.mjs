// Figures for the satellite firmware under real MicroPython (WebAssembly, in Node):
// heap used by the running satellite (against the heap before importing it) and the
// cost of one tick (against an empty loop of the same length), printed, never asserted.
//
//   node firmware/tools/bench.mjs        (from the repo root, after npm ci --prefix firmware)
//
// Wasm speed is not ESP32 speed; the heap figure is the comparable one (an ESP32 without
// PSRAM has ~110 kB of MicroPython heap).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const mp = await loadMicroPython({ heapsize: 16 * 1024 * 1024, stdout: (l) => console.log(l) });

function copy(src, dst) {
  try { mp.FS.mkdir(dst); } catch { /* exists */ }
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    if (e.name.startsWith(".") || e.name === "__pycache__") continue;
    if (e.isDirectory()) copy(path.join(src, e.name), dst + "/" + e.name);
    else if (e.name.endsWith(".py")) mp.FS.writeFile(dst + "/" + e.name, fs.readFileSync(path.join(src, e.name)));
  }
}
try { mp.FS.mkdir("/lib"); } catch { /* exists */ }
copy(path.join(repo, "firmware/hsat"), "/lib/hsat");
copy(path.join(repo, "tests/firmware/fw_fakes"), "/lib");
copy(path.join(repo, "tests/firmware/fw_cases"), "/cases");
try { mp.FS.mkdir("/work"); } catch { /* exists */ }

// Each figure is taken in its own runPython call: inside one long call the WebAssembly
// port's gc.collect() cannot free everything, and the heap looks like it only grows.
const py = (code) => mp.runPython(code);
const heap = () => { py("gc.collect(); _h = gc.mem_alloc()"); return mp.globals.get("_h"); };
py(`import sys, gc, time
sys.path[:0] = ["/cases", "/lib"]`);
const base = heap();
py("import hsat.app, hsat.config, hsat.store, hsat.log");
const logic = heap();
py("import machine, onewire, ds18x20, network, umqtt.simple");
const fakes = heap();
py("import hsat.hw");
const hw = heap();
py("import fwharness");
const harness = heap();
py(`fwharness.ROOT = "/work"
rig = fwharness.Rig(cfg=fwharness.config(heartbeat_timeout_s=3600.0))
rig.command(contactor=True)`);
const clearFakes = "rig.broker.log = []; rig.lines[:] = []";  // the fakes keep every message
py("rig.run(5000); " + clearFakes);
const running = heap();
for (let k = 0; k < 6; k++) py("rig.run(5000); " + clearFakes);
const later = heap();
py(`N = 2000
t0 = time.ticks_ms()
for _ in range(N):
    rig.ticks.t += 50
    rig.sat.tick(rig.ticks.update())
t_tick = time.ticks_diff(time.ticks_ms(), t0) / N
t0 = time.ticks_ms()
for _ in range(N):
    rig.ticks.t += 50
    rig.ticks.update()
t_empty = time.ticks_diff(time.ticks_ms(), t0) / N`);
const tick = mp.globals.get("t_tick"), empty = mp.globals.get("t_empty");
const row = (label, value, note) => console.log(label.padEnd(34) + String(value).padStart(8) + " B  " + note);
row("heap before import", base, "(baseline)");
row("firmware logic imported", logic, `+${logic - base} B: app, safety, sensors, heat, link, config, store`);
row("hw.py imported", hw, `+${hw - fakes} B (the fakes before it: +${fakes - logic} B)`);
row("satellite running 5 s", running, `+${running - harness} B live state, fakes included`);
row("satellite running 35 s", later, `${later - running >= 0 ? "+" : ""}${later - running} B since 5 s (a leak would grow here)`);
console.log("one tick".padEnd(34) + tick.toFixed(3).padStart(8) + " ms (empty loop " + empty.toFixed(3) + " ms)");
